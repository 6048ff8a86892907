// Orthonormal 2-D DCT-II of B x B blocks (SPEC section 3): the cosine tables.
// The transforms themselves are kernels (dct_kernels.inl), dispatched per CPU.
#pragma once
#include <vector>

#include "common.hpp"

namespace dcts {

class DctTable {
public:
    explicit DctTable(int block);
    int block() const { return b_; }
    // c[u * B + x] = a(u) sqrt(2/B) cos((2x + 1) u pi / 2B)
    const float* c() const { return c_.data(); }

private:
    int b_;
    std::vector<float> c_;
};

}  // namespace dcts
