#include "dct.hpp"

#include <cmath>

namespace dcts {

DctTable::DctTable(int block) : b_(block) {
    require(block >= kMinBlock && block <= kMaxBlock, [&] {
        return "block_size must be in [2, 64], got " + std::to_string(block);
    });
    c_.resize(size_t(block) * block);
    for (int u = 0; u < block; ++u) {
        const double a = (u == 0 ? std::sqrt(0.5) : 1.0) * std::sqrt(2.0 / block);
        // Computed for the first half and mirrored, so C[u][B-1-x] = (-1)^u C[u][x]
        // holds exactly in float: the kernels' even/odd split relies on it.
        for (int x = 0; x < (block + 1) / 2; ++x) {
            const float v = float(a * std::cos((2 * x + 1) * u * kPi / (2.0 * block)));
            const float mirrored = (u % 2) ? -v : v;
            c_[size_t(u) * block + x] = v;
            c_[size_t(u) * block + (block - 1 - x)] = mirrored;
        }
    }
}

}  // namespace dcts
