#include "dct.hpp"

#include <cmath>
#include <cstring>

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

// Both passes are written as rank-1 updates over contiguous rows so the
// compiler vectorises the inner loop for every B.
void fdct_block(const DctTable& t, const float* in, float* out, float* tmp) {
    const int B = t.block();
    const float* C = t.c();
    const float* CT = t.ct();
    // tmp = C * P
    std::memset(tmp, 0, sizeof(float) * B * B);
    for (int u = 0; u < B; ++u) {
        float* trow = tmp + u * B;
        for (int x = 0; x < B; ++x) {
            const float c = C[u * B + x];
            const float* prow = in + x * B;
            for (int y = 0; y < B; ++y) trow[y] += c * prow[y];
        }
    }
    // out = tmp * C^T
    std::memset(out, 0, sizeof(float) * B * B);
    for (int u = 0; u < B; ++u) {
        float* orow = out + u * B;
        const float* trow = tmp + u * B;
        for (int y = 0; y < B; ++y) {
            const float v = trow[y];
            const float* crow = CT + y * B;
            for (int w = 0; w < B; ++w) orow[w] += v * crow[w];
        }
    }
}

void idct_block(const DctTable& t, const float* in, float* out, float* tmp) {
    const int B = t.block();
    const float* C = t.c();
    // tmp = C^T * D
    std::memset(tmp, 0, sizeof(float) * B * B);
    for (int u = 0; u < B; ++u) {
        const float* drow = in + u * B;
        for (int x = 0; x < B; ++x) {
            const float c = C[u * B + x];
            float* trow = tmp + x * B;
            for (int v = 0; v < B; ++v) trow[v] += c * drow[v];
        }
    }
    // out = tmp * C
    std::memset(out, 0, sizeof(float) * B * B);
    for (int x = 0; x < B; ++x) {
        float* orow = out + x * B;
        const float* trow = tmp + x * B;
        for (int v = 0; v < B; ++v) {
            const float d = trow[v];
            const float* crow = C + v * B;
            for (int y = 0; y < B; ++y) orow[y] += d * crow[y];
        }
    }
}

}  // namespace dcts
