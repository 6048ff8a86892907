// Colour conversion, edge padding and 4:2:0 chroma resampling (SPEC sections
// 2 and 7). Planes are float32, row-major and centred (value - 128), the
// level shift of section 3 folded in.
#pragma once
#include <cstdint>

#include "common.hpp"

namespace dcts {

// Padded row y (0 <= y < hp) of the image -> centred full-resolution rows
// (wp samples each; chroma rows ignored for greyscale). The image is padded
// by edge replication: row min(y, H-1), columns past W repeat the last one.
void image_row_to_planes(const uint8_t* image, const Geometry& g, int64_t y, float* Y, float* Cb,
                         float* Cr);

// 4:2:0 colour images: padded rows y and y + 1 (y even) -> their centred luma
// rows (wp samples) and one row of each chroma plane (wp / 2 samples), the
// 2x2 box mean of the padded full-resolution chroma.
void image_rows_to_planes420(const uint8_t* image, const Geometry& g, int64_t y, float* Y0,
                             float* Y1, float* Cb, float* Cr);

// uint8 (height, width, planes) -> centred planes[p] of plane_h(p) x plane_w(p);
// under 4:2:0 chroma is the 2x2 box mean of the padded full-resolution chroma.
void image_to_planes(const uint8_t* image, const Geometry& g, float* const planes[3]);

// Image rows [y0, y0 + n) (< height) from centred planes whose first rows
// are those of row y0 (planes[p] at plane row y0, or y0 / 2 for 4:2:0 chroma,
// y0 even then; rows wp floats apart, chroma plane_w(p)): chroma replicated
// 2x2 under 4:2:0, JFIF YCbCr -> RGB, rounded half away from zero, clipped,
// cropped to width.
void planes_to_image_rows(const float* const planes[3], const Geometry& g, int64_t y0, int64_t n,
                          uint8_t* image);

// The same for image columns [x0, x0 + nx) (x0 even, x0 + nx <= width) from
// planes whose first sample is that of column x0 (x0 / 2 for 4:2:0 chroma),
// rows `stride` floats apart (chroma: `cstride`).
void planes_to_image_tile(const float* const planes[3], int64_t stride, int64_t cstride,
                          const Geometry& g, int64_t y0, int64_t n, int64_t x0, int64_t nx,
                          uint8_t* image);

// Centred planes -> uint8 (height, width, planes).
void planes_to_image(const float* const planes[3], const Geometry& g, uint8_t* image);

}  // namespace dcts
