// The whole pipeline, composed from the stages: image -> planes -> quantised
// block coefficients -> coordinate list, and back. Both directions work in
// stripes of block rows (2B pixel rows under 4:2:0, B otherwise), so the
// float planes never exist at full size: colour conversion, DCT and
// quantisation of a stripe run while it is in cache.
#pragma once
#include <cstdint>
#include <vector>

#include "common.hpp"
#include "quant.hpp"
#include "workspace.hpp"

namespace dcts {

struct CodecParams {
    int block = 8;
    int quality = 75;
    bool sub420 = true;
    int32_t clip = 0;  // 0: no clipping
};

// uint8 (h, w, planes) -> each block's quantised non-zeros (sections 2-4),
// as records taken while the block is in cache.
void encode_records(const uint8_t* image, const Geometry& g, const CodecParams& prm,
                    BlockRecords& out);
// Per-plane quantised coefficients -> uint8 (h, w, planes) (section 7).
// `rezero`: zero each block once read (keeps a CoeffStore's zero invariant).
void decode_planes(const Coeffs& coeffs, const Geometry& g, const CodecParams& prm,
                   uint8_t* image, bool rezero);

// Decodes one stripe (2B pixel rows under 4:2:0, B otherwise) from its
// coefficients: c.plane[0] holds the stripe's luma block rows, c.plane[1..2]
// its chroma block row; writes the stripe's rows of the image.
struct StripeDecoder {
    const Geometry& g;
    std::shared_ptr<const BlockPlan> luma, chroma;
    std::vector<float> scratch, y, cb, cr;
    int64_t rows;  // pixel rows per stripe
    StripeDecoder(const Geometry& g, const CodecParams& prm);
    void operator()(int64_t stripe, const Coeffs& c, uint8_t* image, bool rezero);
};

// The whole encoder and decoder on this thread's coefficient stores.
SparseList encode(const uint8_t* image, const Geometry& g, const CodecParams& prm,
                  const int32_t* seq);
void decode(const int32_t* channel, const int32_t* position, const int32_t* value, int64_t n,
            const Geometry& g, const CodecParams& prm, uint8_t* image);

}  // namespace dcts
