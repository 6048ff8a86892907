#include "quant.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "zigzag.hpp"

namespace dcts {
namespace {

const int kLuma[64] = {16, 11, 10, 16, 24,  40,  51,  61,  12, 12, 14, 19, 26,  58,  60,  55,
                       14, 13, 16, 24, 40,  57,  69,  56,  14, 17, 22, 29, 51,  87,  80,  62,
                       18, 22, 37, 56, 68,  109, 103, 77,  24, 35, 55, 64, 81,  104, 113, 92,
                       49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99};
const int kChroma[64] = {17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
                         24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
                         99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
                         99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99};

}  // namespace

std::vector<int32_t> quant_matrix(int quality, int block, bool chroma) {
    require(quality >= 1 && quality <= 100, [&] {
        return "quality must be in [1, 100], got " + std::to_string(quality);
    });
    require(block >= kMinBlock && block <= kMaxBlock, [&] {
        return "block_size must be in [2, 64], got " + std::to_string(block);
    });
    const int* base = chroma ? kChroma : kLuma;
    const int scale = quality < 50 ? 5000 / quality : 200 - 2 * quality;
    std::vector<int32_t> q(size_t(block) * block);
    for (int i = 0; i < block; ++i) {
        const int si = ((2 * i + 1) * 4) / block;  // nearest neighbour, pixel centres
        for (int j = 0; j < block; ++j) {
            const int sj = ((2 * j + 1) * 4) / block;
            const int v = (scale * base[si * 8 + sj] + 50) / 100;
            q[size_t(i) * block + j] = std::clamp(v, 1, 255);
        }
    }
    return q;
}

BlockPlan::BlockPlan(int quality, int block, bool chroma, int32_t clip_)
    : dct(block), clip(clip_) {
    require(clip_ >= 0, [&] {
        return "clip must be positive (or 0 for none), got " + std::to_string(clip_);
    });
    const std::vector<int32_t> qi = quant_matrix(quality, block, chroma);
    const std::vector<int32_t> zz = zigzag(block);
    const size_t n = qi.size();
    q.assign(qi.begin(), qi.end());
    qt.resize(n);
    rqt.resize(n);
    zz_t.resize(n);
    // The encoder's B = 8 transform leaves D[u][v] scaled by
    // sqrt(8) s(u) sqrt(8) s(v), s(0) = 1, s(k) = sqrt(2) cos(k pi / 16)
    // (fdct8_aan_pass in dct_kernels.inl); its quantiser divides by that too.
    std::vector<double> scale(size_t(block), 1.0);
    if (block == 8)
        for (int k = 0; k < 8; ++k)
            scale[size_t(k)] = std::sqrt(8.0) * (k ? std::sqrt(2.0) * std::cos(k * kPi / 16) : 1.0);
    for (size_t k = 0; k < n; ++k) {
        const size_t u = k / size_t(block), v = k % size_t(block);
        const float qs = float(double(qi[k]) * scale[u] * scale[v]);
        qt[v * size_t(block) + u] = qs;
        rqt[v * size_t(block) + u] = 1.0f / qs;
    }
    for (size_t j = 0; j < n; ++j) {  // zz[j]: natural index of zigzag index j
        const size_t u = size_t(zz[j]) / size_t(block), v = size_t(zz[j]) % size_t(block);
        zz_t[v * size_t(block) + u] = uint32_t(j) << 16;
    }
}

std::shared_ptr<const BlockPlan> block_plan(int quality, int block, bool chroma, int32_t clip) {
    struct Entry {
        std::tuple<int, int, bool, int32_t> key;
        std::shared_ptr<const BlockPlan> plan;
    };
    constexpr size_t kEntries = 8;  // most recent first; a decode of RGB uses 2
    thread_local std::vector<Entry> cache;
    const auto key = std::make_tuple(quality, block, chroma, clip);
    for (size_t i = 0; i < cache.size(); ++i)
        if (cache[i].key == key) {
            std::rotate(cache.begin(), cache.begin() + long(i), cache.begin() + long(i) + 1);
            return cache.front().plan;
        }
    auto plan = std::make_shared<const BlockPlan>(quality, block, chroma, clip);  // validates
    if (cache.size() == kEntries) cache.pop_back();
    cache.insert(cache.begin(), Entry{key, plan});
    return plan;
}

}  // namespace dcts
