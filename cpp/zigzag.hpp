// Zigzag scan for any block size (SPEC section 5).
#pragma once
#include <cstdint>
#include <vector>

namespace dcts {
// zigzag(B)[k] = row * B + col of the k-th coefficient in scan order.
std::vector<int32_t> zigzag(int block);
}  // namespace dcts
