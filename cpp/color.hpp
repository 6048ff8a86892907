// Colour conversion, edge padding and 4:2:0 chroma resampling (SPEC sections
// 2 and 7). Planes are float32, row-major, NOT level-shifted.
#pragma once
#include <cstdint>

#include "common.hpp"

namespace dcts {

// uint8 (height, width, planes) interleaved -> planes[p] of size
// plane_h(p) x plane_w(p). The image is padded by edge replication to
// (hp, wp) first; under 4:2:0 the chroma planes are 2x2 box means of the
// padded full-resolution chroma.
void image_to_planes(const uint8_t* image, const Geometry& g, float* const planes[3]);

// Inverse: planes -> uint8 (height, width, planes), chroma replicated 2x2,
// JFIF YCbCr -> RGB, rounded half away from zero, clipped to [0, 255],
// cropped to the image size.
void planes_to_image(const float* const planes[3], const Geometry& g, uint8_t* image);

}  // namespace dcts
