// The .dcts container (issue 4): a versioned binary file holding one
// coordinate list (SPEC section 6) with its header, entropy-coded.
//
// Layout, all integers little-endian:
//
//   offset size
//      0     8  magic  89 'D' 'C' 'T' 'S' 0D 0A 1A  (PNG-style: catches text-mode
//                transfers and 7-bit channels)
//      8     2  format version (1)
//     10     1  flags: bit 0 RGB (else L), bit 1 4:2:0 (else 4:4:4), bit 2 the
//                list is not in its order's canonical sequence (a permutation
//                follows the coefficients in the payload); other bits zero
//     11     1  block size B, 2..64
//     12     1  quality, 1..100
//     13     1  order: 0 frequency, 1 luma_first, 2 explicit permutation
//     14     2  reserved, zero
//     16     4  height            20  4  width
//     24     4  clip (0: none)     28  8  N, the number of triples
//     36     8  payload length in bytes
//     44        order 2 only: the P*B*B channel ids, uint16 each
//      .        payload: the range-coded coefficients (see container.cpp)
//      .     4  CRC-32 (zlib's polynomial) of every byte before it
//
// Reading checks, in this order, before allocating anything that scales with
// the header: magic, version, declared lengths against the actual size, the
// checksum, then every header field (including the caller's pixel limit).
// Nothing is allocated per block or pixel the header declares: decoding
// needs ~1 MB of coder models plus ~40 bytes per coefficient decoded so far
// (the list, grown as the payload proves it, and the previous block row's
// non-zeros; an all-zero block costs nothing), so a hostile header in front
// of a short payload costs ~1 MB before the payload runs out
// (tests/test_codec_container.py holds such reads under 16 MB). Every failure
// is a std::invalid_argument (ValueError in Python) saying what is wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common.hpp"

namespace dcts {

constexpr uint16_t kContainerVersion = 1;
constexpr size_t kContainerFixedHeader = 44;

struct ContainerHeader {
    int64_t height = 0, width = 0;
    int planes = 3;
    int block = 8;
    int quality = 75;
    bool sub420 = true;
    int order_kind = 0;                // 0 frequency, 1 luma_first, 2 explicit
    std::vector<int32_t> permutation;  // order_kind 2: the P*B*B channel ids
    int32_t clip = 0;                  // 0: no clipping
    int64_t count = 0;                 // N
    bool canonical = true;             // read side: the list is in canonical order
    uint64_t payload_bytes = 0;        // read side
    uint64_t file_bytes = 0;           // read side
};

// zlib-compatible CRC-32.
uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0);

// Codes a list with header h (h.count, canonical and sizes are filled in
// here). Validates every triple with TripleCheck (sparse.hpp), as the
// SparseDCT constructor does, and refuses a repeated (channel, position).
std::vector<uint8_t> container_encode(ContainerHeader h, const int32_t* channel,
                                      const int32_t* position, const int32_t* value, int64_t n);

// Validates everything but the payload (including the checksum).
// pixel_limit < 0: no limit beyond the core's own.
ContainerHeader container_read_header(const uint8_t* data, size_t size, int64_t pixel_limit);

// Validates and decodes the whole file; the list comes back in the order it was saved.
SparseList container_decode(const uint8_t* data, size_t size, int64_t pixel_limit,
                            ContainerHeader* header);

}  // namespace dcts
