// IJG quantisation tables for any block size and (de)quantisation of a block
// into / out of zigzag order (SPEC sections 4 and 5).
#pragma once
#include <cstdint>
#include <vector>

#include "common.hpp"

namespace dcts {

// (B*B) row-major table: base table resized by nearest neighbour, IJG scaling.
std::vector<int32_t> quant_matrix(int quality, int block, bool chroma);

// Per-plane constants of the quantiser, in zigzag order so the hot loops
// walk the output contiguously.
struct QuantPlan {
    std::vector<int32_t> zz;       // zigzag(B)
    std::vector<float> q_zz;       // Q[zz[k]]
    int32_t clip = 0;              // 0: no clipping
    QuantPlan(int quality, int block, bool chroma, int32_t clip);
};

// coeffs: B x B natural order -> out[k] = round(D[zz[k]] / Q[zz[k]]), half
// away from zero, clipped to [-clip, clip] when clip > 0.
void quantize_block(const QuantPlan& p, const float* coeffs, int32_t* out);
// in: zigzag-ordered quantised values -> B x B natural-order coefficients.
void dequantize_block(const QuantPlan& p, const int32_t* in, float* coeffs);

}  // namespace dcts
