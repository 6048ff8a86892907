// The DCT image and the coordinate list (SPEC sections 5 and 6): channel
// sequences of the orders, and conversions between per-plane coefficients,
// the dense DCT image and the (channel, position, value) list.
#pragma once
#include <cstdint>
#include <vector>

#include "common.hpp"
#include "workspace.hpp"

namespace dcts {

enum class NamedOrder : int { Frequency = 0, LumaFirst = 1 };

// The sequence of channel ids a named order visits, (P*B*B,).
std::vector<int32_t> channel_sequence(NamedOrder order, int planes, int block);
// Throws unless seq is a permutation of 0 .. channels-1.
void check_permutation(const int32_t* seq, int64_t n, int64_t channels);

// Per-plane coefficients -> coordinate list: counting sort by channel in the
// sequence's order; positions ascend within a channel because blocks are
// visited in raster order.
SparseList planes_to_list(const Coeffs& coeffs, const Geometry& g, const int32_t* seq);

// Block records (encode_records) -> coordinate list, as planes_to_list does
// from full coefficients.
SparseList records_to_list(const BlockRecords& rec, const Geometry& g, const int32_t* seq);

// Coordinate list -> per-plane coefficients, scattered into `out`, which
// must be all zero. Every triple is validated: channel in [0, P*B*B),
// position in [0, Hb*Wb), chroma positions on even rows and columns under
// 4:2:0, value non-zero with |value| <= vmax, and no (channel, position)
// pair twice. On an error `out` is left partly written.
void list_to_planes(const int32_t* channel, const int32_t* position, const int32_t* value,
                    int64_t n, const Geometry& g, int32_t vmax, const Coeffs& out);
// Zeroes the entries a validated list was scattered to (cheaper than a memset).
void clear_list(const int32_t* channel, const int32_t* position, int64_t n, const Geometry& g,
                const Coeffs& out);

// list_to_planes into a zeroed CoeffStore; on an error the store is marked
// dirty (so its zero invariant survives) and the error propagates.
Coeffs scatter_to_store(const int32_t* channel, const int32_t* position, const int32_t* value,
                        int64_t n, const Geometry& g, int32_t vmax, CoeffStore& store);
// Validates a list and, if `dense` is given, writes it as the DCT image
// (Hb, Wb, P*B*B) there; uses (and leaves zero) this thread's coefficient store.
void list_to_dense(const int32_t* channel, const int32_t* position, const int32_t* value,
                   int64_t n, const Geometry& g, int32_t vmax, int32_t* dense);
// The DCT image -> the list in the sequence's order (validated like dense_to_planes).
SparseList dense_to_list(const int32_t* dense, const Geometry& g, int32_t vmax, const int32_t* seq);

// A list bucketed by stripe of block rows (the unit the decoder works in:
// 2 luma block rows and 1 chroma block row under 4:2:0, 1 of each otherwise),
// so scattering it touches one small, cache-resident buffer at a time instead
// of the whole image's coefficients. Validates exactly like list_to_planes
// and reports the same first error.
class StripeScatter {
public:
    StripeScatter(const int32_t* channel, const int32_t* position, const int32_t* value,
                  int64_t n, const Geometry& g, int32_t vmax);
    int64_t stripes() const { return int64_t(start_.size()) - 1; }
    // Scatters stripe s into the zeroed stripe buffer: c.plane[0] = its luma
    // block rows, c.plane[1..2] = its chroma block row. Throws on a repeated pair.
    Coeffs scatter(int64_t s);
    // Zeroes what scatter(s) wrote.
    void clear(int64_t s);
    // Whether the bucketed path applies (stripe buffers index with 32 bits).
    static bool fits(const Geometry& g);

private:
    [[noreturn]] void first_error() const;
    const int32_t *channel_, *position_, *value_;
    int64_t n_;
    const Geometry& g_;
    int32_t vmax_;
    int64_t offset_[3] = {0, 0, 0};
    std::vector<int64_t> start_;                       // records of stripe s: [start_[s], start_[s+1])
    std::vector<std::pair<uint32_t, int32_t>> records_;  // (stripe-local index, value)
    std::vector<int32_t> buffer_;
};

template <typename F>
void for_each_stripe(const int32_t* channel, const int32_t* position, const int32_t* value,
                     int64_t n, const Geometry& g, int32_t vmax, F&& f) {
    StripeScatter sc(channel, position, value, n, g, vmax);
    for (int64_t s = 0; s < sc.stripes(); ++s) {
        const Coeffs c = sc.scatter(s);
        f(s, c);
        sc.clear(s);
    }
}

// Per-plane coefficients <-> dense DCT image (Hb, Wb, P*B*B) int32.
void planes_to_dense(const Coeffs& coeffs, const Geometry& g, int32_t* dense);
// Writes every entry of `out`. Validates: |value| <= vmax, and zeros at odd
// chroma positions under 4:2:0.
void dense_to_planes(const int32_t* dense, const Geometry& g, int32_t vmax, const Coeffs& out);

}  // namespace dcts
