#include "zigzag.hpp"

#include "common.hpp"

namespace dcts {

std::vector<int32_t> zigzag(int block) {
    require(block >= kMinBlock && block <= kMaxBlock, [&] {
        return "block_size must be in [2, 64], got " + std::to_string(block);
    });
    std::vector<int32_t> out;
    out.reserve(size_t(block) * block);
    for (int s = 0; s <= 2 * block - 2; ++s) {
        const int lo = s - block + 1 > 0 ? s - block + 1 : 0;
        const int hi = s < block - 1 ? s : block - 1;
        if (s % 2 == 0) {  // even anti-diagonal: from the largest row up
            for (int r = hi; r >= lo; --r) out.push_back(r * block + (s - r));
        } else {
            for (int r = lo; r <= hi; ++r) out.push_back(r * block + (s - r));
        }
    }
    return out;
}

}  // namespace dcts
