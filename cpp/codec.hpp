// The whole pipeline, composed from the stages: image -> planes -> quantised
// block coefficients -> coordinate list, and back. Both directions work in
// stripes of block rows (2B pixel rows under 4:2:0, B otherwise), so the
// float planes never exist at full size: colour conversion, DCT and
// quantisation of a stripe run while it is in cache.
#pragma once
#include <cstdint>
#include <vector>

#include "common.hpp"

namespace dcts {

struct CodecParams {
    int block = 8;
    int quality = 75;
    bool sub420 = true;
    int32_t clip = 0;  // 0: no clipping
};

// uint8 (h, w, planes) -> per-plane quantised coefficients (sections 2-4).
std::vector<PlaneCoeffs> encode_planes(const uint8_t* image, const Geometry& g,
                                       const CodecParams& prm);
// Per-plane quantised coefficients -> uint8 (h, w, planes) (section 7).
void decode_planes(const std::vector<PlaneCoeffs>& coeffs, const Geometry& g,
                   const CodecParams& prm, uint8_t* image);

}  // namespace dcts
