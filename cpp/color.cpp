#include "color.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace dcts {
namespace {

inline float luma(float r, float g, float b) { return 0.299f * r + 0.587f * g + 0.114f * b; }
inline float cb_of(float r, float g, float b) {
    return 128.0f - 0.168736f * r - 0.331264f * g + 0.5f * b;
}
inline float cr_of(float r, float g, float b) {
    return 128.0f + 0.5f * r - 0.418688f * g - 0.081312f * b;
}

// Round half away from zero, then clip to the 8-bit range.
inline uint8_t to_u8(float x) {
    return uint8_t(std::min(255.0f, std::max(0.0f, std::round(x))));
}

}  // namespace

void image_to_planes(const uint8_t* image, const Geometry& g, float* const planes[3]) {
    const int64_t W = g.width, H = g.height, hp = g.hp, wp = g.wp;
    if (g.planes == 1) {
        for (int64_t y = 0; y < hp; ++y) {
            const uint8_t* row = image + std::min(y, H - 1) * W;
            float* out = planes[0] + y * wp;
            for (int64_t x = 0; x < W; ++x) out[x] = float(row[x]);
            std::fill(out + W, out + wp, float(row[W - 1]));
        }
        return;
    }
    // Full-resolution chroma rows are only needed two at a time under 4:2:0.
    std::vector<float> cb_full, cr_full;
    if (g.sub420) {
        cb_full.resize(size_t(2 * wp));
        cr_full.resize(size_t(2 * wp));
    }
    for (int64_t y = 0; y < hp; ++y) {
        const uint8_t* row = image + std::min(y, H - 1) * W * 3;
        float* Y = planes[0] + y * wp;
        float* Cb = g.sub420 ? cb_full.data() + (y & 1) * wp : planes[1] + y * wp;
        float* Cr = g.sub420 ? cr_full.data() + (y & 1) * wp : planes[2] + y * wp;
        for (int64_t x = 0; x < wp; ++x) {
            const uint8_t* px = row + std::min(x, W - 1) * 3;
            const float r = px[0], gg = px[1], b = px[2];
            Y[x] = luma(r, gg, b);
            Cb[x] = cb_of(r, gg, b);
            Cr[x] = cr_of(r, gg, b);
        }
        if (g.sub420 && (y & 1)) {
            float* oCb = planes[1] + (y / 2) * (wp / 2);
            float* oCr = planes[2] + (y / 2) * (wp / 2);
            const float* a = cb_full.data();
            const float* c = cr_full.data();
            for (int64_t x = 0; x < wp / 2; ++x) {
                const int64_t i = 2 * x;
                oCb[x] = (a[i] + a[i + 1] + a[wp + i] + a[wp + i + 1]) * 0.25f;
                oCr[x] = (c[i] + c[i + 1] + c[wp + i] + c[wp + i + 1]) * 0.25f;
            }
        }
    }
}

void planes_to_image(const float* const planes[3], const Geometry& g, uint8_t* image) {
    const int64_t W = g.width, H = g.height, wp = g.wp;
    if (g.planes == 1) {
        for (int64_t y = 0; y < H; ++y) {
            const float* in = planes[0] + y * wp;
            uint8_t* out = image + y * W;
            for (int64_t x = 0; x < W; ++x) out[x] = to_u8(in[x]);
        }
        return;
    }
    const int shift = g.sub420 ? 1 : 0;
    const int64_t cw = g.plane_w(1);
    for (int64_t y = 0; y < H; ++y) {
        const float* Y = planes[0] + y * wp;
        const float* Cb = planes[1] + (y >> shift) * cw;
        const float* Cr = planes[2] + (y >> shift) * cw;
        uint8_t* out = image + y * W * 3;
        for (int64_t x = 0; x < W; ++x) {
            const float l = Y[x];
            const float cb = Cb[x >> shift] - 128.0f, cr = Cr[x >> shift] - 128.0f;
            out[3 * x + 0] = to_u8(l + 1.402f * cr);
            out[3 * x + 1] = to_u8(l - 0.344136f * cb - 0.714136f * cr);
            out[3 * x + 2] = to_u8(l + 1.772f * cb);
        }
    }
}

}  // namespace dcts
