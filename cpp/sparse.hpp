// The DCT image and the coordinate list (SPEC sections 5 and 6): channel
// sequences of the orders, and conversions between per-plane coefficients,
// the dense DCT image and the (channel, position, value) list.
#pragma once
#include <cstdint>
#include <vector>

#include "common.hpp"

namespace dcts {

enum class NamedOrder : int { Frequency = 0, LumaFirst = 1 };

// The sequence of channel ids a named order visits, (P*B*B,).
std::vector<int32_t> channel_sequence(NamedOrder order, int planes, int block);
// Throws unless seq is a permutation of 0 .. channels-1.
void check_permutation(const int32_t* seq, int64_t n, int64_t channels);

// Per-plane coefficients -> coordinate list: counting sort by channel in the
// sequence's order; positions ascend within a channel because blocks are
// visited in raster order.
SparseList planes_to_list(const std::vector<PlaneCoeffs>& coeffs, const Geometry& g,
                          const int32_t* seq);

// Coordinate list -> per-plane coefficients. Every triple is validated:
// channel in [0, P*B*B), position in [0, Hb*Wb), chroma positions on even
// rows and columns under 4:2:0, value non-zero with |value| <= vmax, and no
// (channel, position) pair twice.
std::vector<PlaneCoeffs> list_to_planes(const int32_t* channel, const int32_t* position,
                                        const int32_t* value, int64_t n, const Geometry& g,
                                        int32_t vmax);

// Per-plane coefficients <-> dense DCT image (Hb, Wb, P*B*B) int32.
void planes_to_dense(const std::vector<PlaneCoeffs>& coeffs, const Geometry& g, int32_t* dense);
// Validates: |value| <= vmax, and zeros at odd chroma positions under 4:2:0.
std::vector<PlaneCoeffs> dense_to_planes(const int32_t* dense, const Geometry& g, int32_t vmax);

}  // namespace dcts
