#include "color.hpp"

#include <algorithm>
#include <vector>

#include "kernels.hpp"

namespace dcts {

void image_row_to_planes(const uint8_t* image, const Geometry& g, int64_t y, float* Y, float* Cb,
                         float* Cr) {
    const Kernels& k = kernels();
    const int64_t W = g.width, wp = g.wp;
    const int64_t src_row = std::min(y, g.height - 1);
    if (g.planes == 1) {
        k.grey_to_y(image + src_row * W, W, Y);
        std::fill(Y + W, Y + wp, Y[W - 1]);
        return;
    }
    k.rgb_to_ycbcr(image + src_row * W * 3, W, Y, Cb, Cr);
    std::fill(Y + W, Y + wp, Y[W - 1]);
    std::fill(Cb + W, Cb + wp, Cb[W - 1]);
    std::fill(Cr + W, Cr + wp, Cr[W - 1]);
}

void image_to_planes(const uint8_t* image, const Geometry& g, float* const planes[3]) {
    const Kernels& k = kernels();
    const int64_t wp = g.wp;
    if (g.planes == 1 || !g.sub420) {
        for (int64_t y = 0; y < g.hp; ++y)
            image_row_to_planes(image, g, y, planes[0] + y * wp,
                                g.planes > 1 ? planes[1] + y * wp : nullptr,
                                g.planes > 1 ? planes[2] + y * wp : nullptr);
        return;
    }
    // Full-resolution chroma is only needed two rows at a time.
    std::vector<float> cb(size_t(2 * wp)), cr(size_t(2 * wp));
    for (int64_t y = 0; y < g.hp; y += 2) {
        for (int64_t r = 0; r < 2; ++r)
            image_row_to_planes(image, g, y + r, planes[0] + (y + r) * wp, cb.data() + r * wp,
                                cr.data() + r * wp);
        k.downsample2x2(cb.data(), cb.data() + wp, wp / 2, planes[1] + (y / 2) * (wp / 2));
        k.downsample2x2(cr.data(), cr.data() + wp, wp / 2, planes[2] + (y / 2) * (wp / 2));
    }
}

void planes_to_image_row(const float* Y, const float* Cb, const float* Cr, const Geometry& g,
                         int64_t y, uint8_t* image) {
    const Kernels& k = kernels();
    if (g.planes == 1) {
        k.y_to_grey(Y, g.width, image + y * g.width);
        return;
    }
    k.ycbcr_to_rgb(Y, Cb, Cr, g.width, g.sub420 ? 1 : 0, image + y * g.width * 3);
}

void planes_to_image(const float* const planes[3], const Geometry& g, uint8_t* image) {
    const int shift = g.sub420 ? 1 : 0;
    const int64_t cw = g.plane_w(1);
    for (int64_t y = 0; y < g.height; ++y) {
        const int64_t cy = y >> shift;
        planes_to_image_row(planes[0] + y * g.wp, g.planes > 1 ? planes[1] + cy * cw : nullptr,
                            g.planes > 1 ? planes[2] + cy * cw : nullptr, g, y, image);
    }
}

}  // namespace dcts
