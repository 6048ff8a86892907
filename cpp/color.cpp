#include "color.hpp"

#include <algorithm>

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

void image_rows_to_planes420(const uint8_t* image, const Geometry& g, int64_t y, float* Y0,
                             float* Y1, float* Cb, float* Cr) {
    const Kernels& k = kernels();
    const int64_t W = g.width, wp = g.wp, cw = wp / 2, pairs = W / 2;
    const uint8_t* row0 = image + std::min(y, g.height - 1) * W * 3;
    const uint8_t* row1 = image + std::min(y + 1, g.height - 1) * W * 3;
    k.rgb_to_ycbcr420(row0, row1, pairs, Y0, Y1, Cb, Cr);
    // Every box reaching past column W - 1 sees only copies of that column
    // (an odd width's last box included): run the kernel on a box of those
    // copies, so the edge takes the same arithmetic as the rest of the row.
    uint8_t edge[2][6];
    for (int i = 0; i < 6; ++i) {
        edge[0][i] = row0[(W - 1) * 3 + i % 3];
        edge[1][i] = row1[(W - 1) * 3 + i % 3];
    }
    float ey[2][2], ecb, ecr;
    k.rgb_to_ycbcr420(edge[0], edge[1], 1, ey[0], ey[1], &ecb, &ecr);
    if (W % 2) {
        Y0[W - 1] = ey[0][0];
        Y1[W - 1] = ey[1][0];
    }
    std::fill(Y0 + W, Y0 + wp, Y0[W - 1]);
    std::fill(Y1 + W, Y1 + wp, Y1[W - 1]);
    std::fill(Cb + pairs, Cb + cw, ecb);
    std::fill(Cr + pairs, Cr + cw, ecr);
}

void image_to_planes(const uint8_t* image, const Geometry& g, float* const planes[3]) {
    const int64_t wp = g.wp;
    if (g.planes == 1 || !g.sub420) {
        for (int64_t y = 0; y < g.hp; ++y)
            image_row_to_planes(image, g, y, planes[0] + y * wp,
                                g.planes > 1 ? planes[1] + y * wp : nullptr,
                                g.planes > 1 ? planes[2] + y * wp : nullptr);
        return;
    }
    const int64_t cw = wp / 2;
    for (int64_t y = 0; y < g.hp; y += 2)
        image_rows_to_planes420(image, g, y, planes[0] + y * wp, planes[0] + (y + 1) * wp,
                                planes[1] + (y / 2) * cw, planes[2] + (y / 2) * cw);
}

void planes_to_image_tile(const float* const planes[3], int64_t stride, int64_t cstride,
                          const Geometry& g, int64_t y0, int64_t n, int64_t x0, int64_t nx,
                          uint8_t* image) {
    const Kernels& k = kernels();
    const int shift = g.sub420 ? 1 : 0;
    int64_t r = 0;
    if (g.planes == 1) {
        for (; r < n; ++r) k.y_to_grey(planes[0] + r * stride, nx, image + (y0 + r) * g.width + x0);
        return;
    }
    const int64_t row = g.width * 3;
    uint8_t* out = image + y0 * row + x0 * 3;
    if (g.sub420)  // two pixel rows per chroma row: the chroma arithmetic done once
        for (; r + 1 < n; r += 2)
            k.ycbcr420_to_rgb2(planes[0] + r * stride, planes[0] + (r + 1) * stride,
                               planes[1] + (r / 2) * cstride, planes[2] + (r / 2) * cstride, nx,
                               out + r * row, out + (r + 1) * row);
    for (; r < n; ++r) {
        const int64_t crow = (r >> shift) * cstride;
        k.ycbcr_to_rgb(planes[0] + r * stride, planes[1] + crow, planes[2] + crow, nx, shift,
                       out + r * row);
    }
}

void planes_to_image_rows(const float* const planes[3], const Geometry& g, int64_t y0, int64_t n,
                          uint8_t* image) {
    planes_to_image_tile(planes, g.wp, g.plane_w(g.planes - 1), g, y0, n, 0, g.width, image);
}

void planes_to_image(const float* const planes[3], const Geometry& g, uint8_t* image) {
    planes_to_image_rows(planes, g, 0, g.height, image);
}

}  // namespace dcts
