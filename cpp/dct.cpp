#include "dct.hpp"

#include <cmath>

namespace dcts {

DctTable::DctTable(int block) : b_(block) {
    require(block >= kMinBlock && block <= kMaxBlock,
            "block_size must be in [2, 64], got " + std::to_string(block));
    c_.resize(size_t(block) * block);
    ct_.resize(size_t(block) * block);
    const double pi = 3.14159265358979323846;
    for (int u = 0; u < block; ++u) {
        const double a = (u == 0 ? std::sqrt(0.5) : 1.0) * std::sqrt(2.0 / block);
        for (int x = 0; x < block; ++x) {
            const float v = float(a * std::cos((2 * x + 1) * u * pi / (2.0 * block)));
            c_[size_t(u) * block + x] = v;
            ct_[size_t(x) * block + u] = v;
        }
    }
}

}  // namespace dcts
