// The DCT image and the coordinate list (SPEC sections 5 and 6): channel
// sequences of the orders, and conversions between per-plane coefficients,
// the dense DCT image and the (channel, position, value) list.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "workspace.hpp"

namespace dcts {

enum class NamedOrder : int { Frequency = 0, LumaFirst = 1 };

// The sequence of channel ids a named order visits, (P*B*B,).
std::vector<int32_t> channel_sequence(NamedOrder order, int planes, int block);
// Throws unless seq is a permutation of 0 .. channels-1.
void check_permutation(const int32_t* seq, int64_t n, int64_t channels);

// Exact x / d for 0 <= x < 2^31 and 1 <= d < 2^31 without a hardware
// division (which costs more than everything else done per triple): one
// multiply-high. With l = ceil(log2 d) and m = ceil(2^(31+l) / d) < 2^32 + 1,
// the error e = m*d - 2^(31+l) is in [0, d), so x*e < 2^31 * d <= 2^(31+l)
// and (x*m) >> (31+l) is floor(x/d) exactly; x*m < 2^63 fits 64 bits.
struct FastDiv {
    uint64_t m;
    int shift;
    explicit FastDiv(int64_t d) {
        int l = 0;
        while ((int64_t(1) << l) < d) ++l;
        shift = 31 + l;
        m = ((uint64_t(1) << shift) + uint64_t(d) - 1) / uint64_t(d);
    }
    int64_t operator()(int64_t x) const { return int64_t((uint64_t(x) * m) >> shift); }
};

// Where a valid triple's coefficient lives: its plane, its block in that
// plane's own grid, and its natural (row-major) index in the block.
struct TripleSlot {
    int plane;
    int32_t nat;
    int64_t block;
};

// The one validator of a list's triples (SPEC section 6), wherever a list
// enters the core (SparseDCT's constructor, the .dcts writer), so every entry
// point checks the same things and names them alike: channel in [0, P*B*B),
// position in [0, Hb*Wb), value non-zero with |value| <= vmax, a chroma
// position on the 4:2:0 grid. A repeated pair needs the coefficients to see;
// the caller that has them reports it with fail_repeated.
class TripleCheck {
public:
    TripleCheck(const Geometry& g, int32_t vmax);
    // Throws std::invalid_argument naming triple t unless it is valid.
    TripleSlot operator()(int64_t t, int32_t ch, int32_t pos, int32_t v) const {
        if (ch < 0 || ch >= nch_ || pos < 0 || pos >= npos_ || !valid_value(v, vmax_))
            fail_at(*this, t, ch, pos, v);
        const TripleSlot s = slot(ch, pos);
        if (s.plane > 0 && sub420_ && s.block < 0) fail_at(*this, t, ch, pos, v);
        return s;
    }
    // The slot of a triple already validated; block < 0 for a chroma position
    // off the 4:2:0 grid.
    TripleSlot slot(int32_t ch, int32_t pos) const {
        const int p = plane_[size_t(ch)];
        int64_t r = div_wb_(pos), c = pos - r * wb_;
        if (p > 0 && sub420_) {
            if ((r | c) & 1) return {p, 0, -1};
            r >>= 1;
            c >>= 1;
        }
        return {p, nat_[size_t(ch)], r * pwb_[p] + c};
    }
    [[noreturn]] static void fail_repeated(int64_t t, int32_t ch, int32_t pos);

private:
    // Messages are built only on failure: operator() runs once per triple.
    [[noreturn]] static void fail_at(const TripleCheck& c, int64_t t, int32_t ch, int32_t pos,
                                     int32_t v);
    int64_t nch_, npos_, wb_, pwb_[3];
    int32_t vmax_;
    int bb_;
    bool sub420_;
    FastDiv div_wb_;
    // Per channel: its plane and natural index (int16: the int32 stores of
    // the loops that call this cannot alias them, so they stay in registers).
    std::vector<int16_t> plane_, nat_;
};

// Per-plane coefficients -> coordinate list: counting sort by channel in the
// sequence's order; positions ascend within a channel because blocks are
// visited in raster order.
SparseList planes_to_list(const Coeffs& coeffs, const Geometry& g, const int32_t* seq);

// Block records (encode_records) -> coordinate list, as planes_to_list does
// from full coefficients.
SparseList records_to_list(const BlockRecords& rec, const Geometry& g, const int32_t* seq);
// The same into caller-owned arrays of list_length(rec, g) entries each.
void records_to_list(const BlockRecords& rec, const Geometry& g, const int32_t* seq,
                     int32_t* channel, int32_t* position, int32_t* value);
int64_t list_length(const BlockRecords& rec, const Geometry& g);

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

// A list split by stripe of block rows (the unit the decoder works in: 2 luma
// block rows and 1 chroma block row under 4:2:0, 1 of each otherwise), and
// each stripe into column tiles of at most kTileCoeffs coefficients, so
// scattering it touches one small, cache-resident buffer at a time instead of
// the whole image's coefficients, and the decoder's working memory does not
// grow with the image's width (whole stripes of a valid 1 x 2^27 greyscale
// file took 2.2 GB at B = 2, 17x the output; 65x at B = 8). A stripe that
// fits the budget is one tile of its full width. Validates exactly like
// list_to_planes and reports the same first error (some errors only when the
// tile holding the bad triple is scattered).
//
// Two ways to find a tile's triples. A list made of few runs of one channel
// at strictly ascending positions (a canonical list has one run per channel)
// is read in place: each run keeps a cursor, and stripe s takes the run's
// triples below the stripe's end (a tile: below the tile's end in each of
// its rows), with no division and no copy. Any other list (e.g. shuffled) is
// bucketed by (stripe, tile) with a counting sort, in memory proportional to
// the list, not to the stripes (a tall, narrow image has far more of them).
class StripeScatter {
public:
    StripeScatter(const int32_t* channel, const int32_t* position, const int32_t* value,
                  int64_t n, const Geometry& g, int32_t vmax);
    int64_t stripes() const { return nstripes_; }
    // Column tiles per stripe, and luma block columns per tile (the last may
    // have fewer: tile_span).
    int64_t tiles() const { return ntiles_; }
    int64_t tile_blocks() const { return tile_wb_; }
    // Tile t's first luma block column and its number of luma block columns.
    std::pair<int64_t, int64_t> tile_span(int64_t t) const {
        const int64_t c0 = t * tile_wb_;
        return {c0, std::min(tile_wb_, g_.wb - c0)};
    }
    // Scatters tile t of stripe s into the zeroed tile buffer: c.plane[0] =
    // its luma block rows (tile_blocks() * c.block_stride entries apart),
    // c.plane[1..2] = its chroma block row. Tiles must be scattered in order
    // (stripe 0 tile 0, stripe 0 tile 1, ...), and the caller zeroes the
    // buffer again before the next (StripeDecoder does, block by block while
    // each is in L1). Throws on a repeated pair or a chroma position off the
    // 4:2:0 grid.
    Coeffs scatter(int64_t s, int64_t t = 0);
    // Coefficients (all planes) of one tile at most (two block columns hold
    // at most 6 x 64^2, far less). With 4 bytes of scatter buffer and 4 of
    // float plane per coefficient: ~4 MB of decoder buffers whatever the width.
    static constexpr int64_t kTileCoeffs = int64_t(1) << 19;
    // Tests: tiles of this many luma block columns (a power of two >= 2)
    // wherever a stripe is wider; 0 restores kTileCoeffs. Process-wide.
    static void set_tile_blocks(int64_t blocks);
    // Entries from one block to the next in the stripe buffer: B*B, plus a
    // cache line where B*B*4 bytes is a multiple of 1 KiB. The scatter writes
    // each channel's run across the blocks, one entry per block, and at such
    // strides (4 KiB at B = 32) every write of a run falls into the same few
    // cache sets: the padding spreads them (scatter 2.4x faster at B = 32).
    static int64_t block_stride(const Geometry& g) {
        return g.bb() % 256 == 0 ? g.bb() + 16 : g.bb();
    }
    // Whether the list is read in place as runs (else it was bucketed).
    bool runs() const { return !run_.empty() || n_ == 0; }

private:
    // Triples [cur, end) of one channel, positions strictly ascending; the
    // tile-local index of the triple at column col of the tile's first
    // luma row is (col >> half) * bb + add.
    struct Run {
        int64_t cur, end, add;
        int half;    // 1: 4:2:0 chroma (even rows and columns only)
        bool check;  // another run has the same channel: slots may be taken
    };
    template <bool Half, bool Check>
    int64_t scatter_run(int64_t i, int64_t end, int64_t base, int64_t lim, int64_t wlim,
                        int64_t bb, int32_t* dst) const;
    void scatter_runs_tiled(int64_t s, int64_t t, int32_t* buf);
    bool find_runs();
    void bucket();
    [[noreturn]] void first_error() const;
    const int32_t *channel_, *position_, *value_;
    int64_t n_;
    const Geometry& g_;
    int32_t vmax_;
    int rows_shift_;  // luma block rows per stripe: 1 << rows_shift_
    int64_t bstride_;  // block_stride(g)
    int64_t nstripes_, next_ = 0;
    // Tiles: tile_wb_ luma block columns each (the whole row when ntiles_ is
    // 1); a column's tile is col >> tile_shift_, its column in the tile
    // col & tile_mask_ (no-ops for one tile).
    int64_t tile_wb_, ntiles_;
    int tile_shift_;
    int64_t tile_mask_;
    int64_t offset_[3] = {0, 0, 0};
    std::vector<Run> run_;
    std::vector<int64_t> from_;               // run cursors before the last scatter
    std::vector<int64_t> row1_;               // tiled, 2-row stripes: cursors in the 2nd row
    int64_t stripe_entries_ = 0;
    // Bucketed: records sorted by tile (key = stripe * ntiles_ + tile), each
    // the tile-local index << vbits_ | (value + vmax), in rec32_ where that
    // fits. Tile k is records [start_[k], start_[k+1]); sparse_ (more tiles
    // than triples): the records whose key_ is k, from cursor_ on.
    bool sparse_ = false;
    std::vector<int64_t> start_;
    std::unique_ptr<uint32_t[]> key_;
    int64_t cursor_ = 0;
    std::unique_ptr<uint32_t[]> rec32_;
    std::unique_ptr<uint64_t[]> rec64_;
    int vbits_ = 32;
    std::vector<int32_t> buffer_;
};

// Calls f(s, t, c) with each stripe's tiles' coefficients in turn; f must
// leave the tile buffer all zero (StripeDecoder with rezero does).
template <typename F>
void for_each_tile(StripeScatter& sc, F&& f) {
    for (int64_t s = 0; s < sc.stripes(); ++s)
        for (int64_t t = 0; t < sc.tiles(); ++t) {
            const Coeffs c = sc.scatter(s, t);
            f(s, t, c);
        }
}

// Per-plane coefficients <-> dense DCT image (Hb, Wb, P*B*B) int32.
void planes_to_dense(const Coeffs& coeffs, const Geometry& g, int32_t* dense);
// Writes every entry of `out`. Validates: |value| <= vmax, and zeros at odd
// chroma positions under 4:2:0.
void dense_to_planes(const int32_t* dense, const Geometry& g, int32_t vmax, const Coeffs& out);

}  // namespace dcts
