// The .dcts container: header, checksum and the coefficient coder.
//
// What the payload codes is the *set* of non-zero coefficients, block by
// block, like JPEG and its recompressors (Lepton, packJPG): that is where the
// statistics are (a block's coefficients depend on its neighbours'), and the
// list order is then implied by the header's order. A list that is not in
// its canonical order (SparseDCT accepts any order) also stores, after the
// coefficients, each triple's index in the canonical list, so every list
// round-trips exactly.
//
// Coding order: groups of block rows (two luma rows and one row of each
// chroma plane under 4:2:0, one row of each plane under 4:4:4), blocks in
// raster order. Per block, with A the block above and L the block to the
// left in the same plane:
//   1. DC: residual against the MED (LOCO-I) predictor of A, L and the block
//      above-left; contexts: the local gradient, the neighbours' counts.
//   2. the number of non-zero AC coefficients, contexts: A's and L's counts.
//   3. the AC coefficients in zigzag order until that many non-zeros have
//      been coded (no end-of-block symbol): a zero flag, then an Elias-gamma
//      magnitude and a sign, in contexts of the frequency band, the
//      non-zeros still to come, the same coefficient in A and L, and the DC
//      steps to A and L (see Models).
// Luma and chroma have separate models. Only the previous block row's
// non-empty blocks are kept (as a sparse list), so memory is O(N), whatever
// B and the declared width; time is O(blocks), and a payload of S bytes can
// only code so many blocks before it runs out (see container.hpp).
#include "container.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>

#include "rangecoder.hpp"
#include "sparse.hpp"
#include "zigzag.hpp"

namespace dcts {
namespace {

constexpr uint8_t kMagic[8] = {0x89, 'D', 'C', 'T', 'S', '\r', '\n', 0x1a};
constexpr uint8_t kFlagRGB = 1, kFlag420 = 2, kFlagPermuted = 4;

// ---------------------------------------------------------------- CRC-32

struct CrcTable {
    uint32_t t[256];
    constexpr CrcTable() : t{} {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
    }
};
constexpr CrcTable kCrc{};

// ---------------------------------------------------------------- byte I/O

void put_u16(std::vector<uint8_t>& o, uint32_t v) {
    for (int i = 0; i < 2; ++i) o.push_back(uint8_t(v >> (8 * i)));
}
void put_u32(std::vector<uint8_t>& o, uint32_t v) {
    for (int i = 0; i < 4; ++i) o.push_back(uint8_t(v >> (8 * i)));
}
void put_u64(std::vector<uint8_t>& o, uint64_t v) {
    for (int i = 0; i < 8; ++i) o.push_back(uint8_t(v >> (8 * i)));
}
uint64_t get_le(const uint8_t* p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

// ---------------------------------------------------------------- models

using rc::Bit;

constexpr int kBands = 64;   // frequency bands (the 8x8 grid, scaled for other B)
constexpr int kNzQ = 16;     // buckets of "non-zeros still to come"
constexpr int kNbQ = 10;     // buckets of |A[k]| + |L[k]|
constexpr int kMaxExp = 16;  // Elias-gamma exponents: values < 2^16
constexpr int kGradQ = 12;   // buckets of the DC gradient
constexpr int kNzCtx = 18;   // buckets of the neighbours' non-zero count, 0 = no neighbour

constexpr int kNzQ2 = 6;     // coarser buckets of the same, for magnitudes

// Every decision has one context, or two whose estimates are averaged
// (rc::Encoder::bit2): a fine one and a coarse one that learns faster.
struct Models {
    // AC zero flags: band x non-zeros to come x |A[k]| + |L[k]|;
    // band x previous coefficient non-zero x min(|A[k]|, 2) x min(|L[k]|, 2)
    Bit zero[kBands][kNzQ][kNbQ];
    Bit zero2[kBands][2][3][3];
    // AC magnitudes (Elias gamma): exponent bits by band x non-zeros to come x
    // |A[k]| + |L[k]|, and by band x |A[k]| x |L[k]|; top two mantissa bits by band
    Bit exp[kBands][kNzQ2][kNbQ][kMaxExp];
    Bit exp2[kBands][6][6][kMaxExp];
    Bit mant[kBands][kMaxExp][2];
    // AC signs: band x signs of A[k], L[k]; band x signs of the DC steps to L and A
    Bit sign[kBands][9];
    Bit sign2[kBands][3][3];
    // non-zero AC count: mean of the neighbours' counts; the two counts apart
    Bit nz_exp[kNzCtx][kMaxExp];
    Bit nz_exp2[9][9][kMaxExp];
    Bit nz_mant[kNzCtx][kMaxExp][kMaxExp];
    // DC residual: gradient; neighbours' non-zero counts
    Bit dc_zero[kGradQ];
    Bit dc_zero2[kNzCtx];
    Bit dc_sign[kGradQ];
    Bit dc_exp[kGradQ][kMaxExp];
    Bit dc_exp2[kNzCtx][kMaxExp];
    Bit dc_mant[kMaxExp][2];
};

inline int bitlen(uint64_t v) {
    int n = 0;
    while (v) {
        ++n;
        v >>= 1;
    }
    return n;
}

// 0, 1, 2, 3 exactly, then two buckets per octave; capped at cap - 1.
inline int log_bucket(uint64_t v, int cap) {
    if (v < 4) return int(v) < cap ? int(v) : cap - 1;
    const int e = bitlen(v) - 1;
    const int b = 4 + (e - 2) * 2 + int((v >> (e - 1)) & 1);
    return b < cap ? b : cap - 1;
}

inline int sign3(int32_t v) { return v > 0 ? 1 : (v < 0 ? 2 : 0); }

// Codes v in [0, vmax] as Elias gamma of v + 1: the exponent in unary with
// adaptive bits exp[i] (no terminating zero once the exponent reaches the
// largest a valid value can have), then the bits below the leading one, the
// first `adaptive` of them with contexts mant[e * stride + i].
template <class C>
uint32_t code_uint(C& c, uint32_t v, Bit* exp, Bit* mant, int stride, int adaptive,
                   uint32_t vmax, Bit* exp2 = nullptr) {
    const int emax = bitlen(uint64_t(vmax) + 1) - 1;
    const int e_in = C::kEncoding ? bitlen(uint64_t(v) + 1) - 1 : 0;
    int e = 0;
    while (e < emax && (exp2 ? c.bit2(exp[e], exp2[e], e < e_in) : c.bit(exp[e], e < e_in))) ++e;
    const uint64_t x_in = uint64_t(v) + 1;
    uint64_t x = 1;
    for (int j = e - 1; j >= 0; --j) {
        const int i = e - 1 - j;
        const int b = C::kEncoding ? int((x_in >> j) & 1) : 0;
        x = (x << 1) | uint64_t(i < adaptive ? c.bit(mant[e * stride + i], b) : c.bypass(b));
    }
    if (x - 1 > vmax) fail("corrupt .dcts payload: a coded value is out of range");
    return uint32_t(x - 1);
}

struct Tables {
    int bb = 0;
    std::vector<uint8_t> band;  // zigzag index -> frequency band
};

Tables make_tables(int block) {
    Tables t;
    t.bb = block * block;
    const std::vector<int32_t> zz = zigzag(block);
    t.band.resize(size_t(t.bb));
    for (int k = 0; k < t.bb; ++k) {
        const int row = zz[size_t(k)] / block, col = zz[size_t(k)] % block;
        // Small blocks keep one band per coefficient; larger ones map onto
        // the 8x8 grid of frequencies, so every B has at most 64 bands.
        t.band[size_t(k)] = uint8_t(block <= 8 ? row * 8 + col : (row * 8 / block) * 8 + col * 8 / block);
    }
    return t;
}

struct Neighbours {
    const int32_t* above;  // zigzag-ordered B*B, zeros where there is no block
    const int32_t* left;
    bool has_above, has_left;
    int32_t nz_above, nz_left;
    int32_t dc_above, dc_left, dc_above_left;
};

// Codes one block, blk in zigzag order (the encoder's input, the decoder's
// output, which must come in zeroed). nz_ac: the encoder's count of non-zero
// AC coefficients; *nz_out gets the coded count. Returns an extent: every
// non-zero lies at an index below it.
template <class C>
int code_block(C& c, Models& m, const Tables& t, const Neighbours& n, int32_t* blk,
               int32_t nz_ac, int32_t vmax, int32_t* nz_out) {
    const int bb = t.bb;
    // neighbours' non-zero counts: texture, for the DC and the count
    int nzc = 0;
    if (n.has_above && n.has_left)
        nzc = 1 + log_bucket(uint64_t(n.nz_above + n.nz_left + 1) / 2, kNzCtx - 1);
    else if (n.has_above || n.has_left)
        nzc = 1 + log_bucket(uint64_t(n.has_above ? n.nz_above : n.nz_left), kNzCtx - 1);
    // 1. DC
    int64_t pred = 0, grad = 0;
    if (n.has_above && n.has_left) {
        const int64_t a = n.dc_above, l = n.dc_left, d = n.dc_above_left;
        const int64_t lo = std::min(a, l), hi = std::max(a, l);
        pred = d >= hi ? lo : (d <= lo ? hi : a + l - d);
        grad = std::abs(a - d) + std::abs(l - d);
    } else if (n.has_above) {
        pred = n.dc_above;
    } else if (n.has_left) {
        pred = n.dc_left;
    }
    const int gq = log_bucket(uint64_t(grad), kGradQ);
    const int64_t r_in = C::kEncoding ? int64_t(blk[0]) - pred : 0;
    int64_t r = 0;
    if (c.bit2(m.dc_zero[gq], m.dc_zero2[nzc], r_in != 0)) {
        const int neg = c.bit(m.dc_sign[gq], r_in < 0);
        const uint32_t mag = code_uint(c, uint32_t(std::abs(r_in) - 1), m.dc_exp[gq], &m.dc_mant[0][0],
                                       2, 2, uint32_t(2 * int64_t(vmax) - 1), m.dc_exp2[nzc]) + 1;
        r = neg ? -int64_t(mag) : int64_t(mag);
    }
    if constexpr (!C::kEncoding) {
        const int64_t dc = pred + r;
        if (dc < -vmax || dc > vmax)
            fail("corrupt .dcts payload: a DC coefficient is out of range");
        blk[0] = int32_t(dc);
    }

    // 2. number of non-zero AC coefficients
    const int32_t nz = int32_t(code_uint(
        c, uint32_t(nz_ac), m.nz_exp[nzc], &m.nz_mant[nzc][0][0], kMaxExp, kMaxExp, uint32_t(bb - 1),
        m.nz_exp2[n.has_above ? 1 + log_bucket(uint64_t(n.nz_above), 8) : 0]
                 [n.has_left ? 1 + log_bucket(uint64_t(n.nz_left), 8) : 0]));
    *nz_out = nz;

    // 3. AC coefficients until all non-zeros are placed
    const int32_t* A = n.above;
    const int32_t* L = n.left;
    const int both = n.has_above && n.has_left;
    int32_t left = nz;
    int k = 1;
    // Signs of AC coefficients follow the DC steps to the neighbours (an edge
    // between blocks shows up in the low frequencies of both).
    const int dc_step_l = sign3(n.has_left ? blk[0] - n.dc_left : 0);
    const int dc_step_a = sign3(n.has_above ? blk[0] - n.dc_above : 0);
    for (; left > 0; ++k) {
        const int band = t.band[size_t(k)];
        const int32_t a = std::abs(A[k]), l = std::abs(L[k]);
        const int nbq = log_bucket(both ? uint32_t(a + l) : 2u * uint32_t(a + l), kNbQ);
        const int32_t v_in = C::kEncoding ? blk[k] : 0;
        // Known non-zero when the remaining positions must all hold one.
        const int nonzero =
            (bb - k == left) ||
            c.bit2(m.zero[band][log_bucket(uint64_t(left), kNzQ)][nbq],
                   m.zero2[band][blk[k - 1] != 0][std::min(a, 2)][std::min(l, 2)], v_in != 0);
        if (!nonzero) continue;
        const uint32_t mag =
            code_uint(c, uint32_t(std::abs(v_in)) - 1u,
                      m.exp[band][log_bucket(uint64_t(left - 1), kNzQ2)][nbq], &m.mant[band][0][0],
                      2, 2, uint32_t(vmax - 1),
                      m.exp2[band][log_bucket(uint64_t(a), 6)][log_bucket(uint64_t(l), 6)]) + 1;
        const int neg = c.bit2(m.sign[band][sign3(A[k]) * 3 + sign3(L[k])],
                               m.sign2[band][dc_step_l][dc_step_a], v_in < 0);
        if constexpr (!C::kEncoding) blk[k] = neg ? -int32_t(mag) : int32_t(mag);
        --left;
    }
    return k;
}

// The non-empty blocks of one block row of a plane, in column order, kept
// for the next row's contexts. An all-zero block is not stored (its context
// is all zeros, as for a missing one): a header may declare 2^27 blocks in a
// row that a few payload bytes code as empty, and a row with an entry per
// block allocated that (16 bytes each, 2 GB) before the payload ran out.
// Memory is O(non-zeros of the row), whatever the declared width.
struct Row {
    struct Block {
        int64_t col;     // ascending
        int64_t end;     // its non-zeros are k, v from the previous block's end to this
        int32_t nz, dc;  // its coded AC count and DC
    };
    std::vector<Block> blocks;
    std::vector<int32_t> k, v;  // zigzag index and value of each non-zero
    void reset() {
        blocks.clear();
        k.clear();
        v.clear();
    }
};

// Walks every block of every plane in coding order. `source(p, r, col, blk)`
// fills the encoder's block (zigzag order, blk zeroed) and returns its
// non-zero AC count; `sink(p, r, col, k, v)` receives every non-zero coded.
template <class C, class Source, class Sink>
void code_planes(C& c, const Geometry& g, int32_t vmax, Source&& source, Sink&& sink) {
    const Tables t = make_tables(g.block);
    const int bb = t.bb;
    auto models = std::make_unique<Models[]>(g.planes > 1 ? 2 : 1);
    std::vector<Row> prev(size_t(g.planes)), cur(size_t(g.planes));
    std::vector<int32_t> zeros(size_t(bb), 0), A(size_t(bb), 0), L(size_t(bb), 0), X(size_t(bb), 0);
    const int64_t groups = g.sub420 ? g.hb / 2 : g.hb;
    for (int64_t grp = 0; grp < groups; ++grp) {
        for (int p = 0; p < g.planes; ++p) {
            Models& m = models[p == 0 ? 0 : 1];
            const int64_t pw = g.plane_wb(p);
            const int rows = (g.sub420 && p == 0) ? 2 : 1;
            for (int rr = 0; rr < rows; ++rr) {
                const int64_t r = grp * rows + rr;
                Row& up = prev[size_t(p)];
                Row& row = cur[size_t(p)];
                row.reset();
                int ext_l = 0;  // L holds the previous block of this row up to ext_l
                std::fill(L.begin(), L.end(), 0);
                int32_t nz_l = 0, dc_l = 0;  // the previous block's (zeros if it was empty)
                size_t u = 0;                // up's first stored block at or right of col
                const size_t ups = r > 0 ? up.blocks.size() : 0;
                for (int64_t col = 0; col < pw; ++col) {
                    Neighbours n{};
                    n.has_above = r > 0;
                    n.has_left = col > 0;
                    int ext_a = 0;
                    while (u < ups && up.blocks[u].col < col) ++u;
                    if (u > 0 && up.blocks[u - 1].col == col - 1)
                        n.dc_above_left = up.blocks[u - 1].dc;
                    if (u < ups && up.blocks[u].col == col) {
                        const Row::Block& a = up.blocks[u];
                        for (int64_t i = u > 0 ? up.blocks[u - 1].end : 0; i < a.end; ++i) {
                            A[size_t(up.k[size_t(i)])] = up.v[size_t(i)];
                            ext_a = std::max(ext_a, up.k[size_t(i)] + 1);
                        }
                        n.nz_above = a.nz;
                        n.dc_above = a.dc;
                    }
                    n.nz_left = nz_l;
                    n.dc_left = dc_l;
                    n.above = n.has_above ? A.data() : zeros.data();
                    n.left = n.has_left ? L.data() : zeros.data();
                    int32_t nz_ac = 0;
                    if constexpr (C::kEncoding) nz_ac = source(p, r, col, X.data());
                    int32_t nz = 0;
                    const int ext = code_block(c, m, t, n, X.data(), nz_ac, vmax, &nz);
                    nz_l = nz;
                    dc_l = X[0];
                    const size_t before = row.k.size();
                    for (int k = 0; k < ext; ++k) {
                        if (X[size_t(k)] == 0) continue;
                        row.k.push_back(k);
                        row.v.push_back(X[size_t(k)]);
                        sink(p, r, col, k, X[size_t(k)]);
                    }
                    if (row.k.size() > before)
                        row.blocks.push_back({col, int64_t(row.k.size()), nz, X[0]});
                    std::fill(A.begin(), A.begin() + ext_a, 0);
                    std::fill(L.begin(), L.begin() + ext_l, 0);
                    std::swap(L, X);  // this block is the next one's left neighbour
                    ext_l = ext;
                }
                std::swap(up, row);
            }
        }
    }
}

// Position of block (r, col) of plane p in the luma grid.
inline int64_t luma_position(const Geometry& g, int p, int64_t r, int64_t col) {
    return g.subsampled(p) ? (2 * r) * g.wb + 2 * col : r * g.wb + col;
}

std::vector<int32_t> order_sequence(const ContainerHeader& h) {
    if (h.order_kind == 2) return h.permutation;
    return channel_sequence(NamedOrder(h.order_kind), h.planes, h.block);
}

// Names the second triple holding (ch, pos): the writer finds a repeat
// block by block, and the message names triples in list order, as
// list_to_planes does.
[[noreturn]] void fail_repeat(const int32_t* channel, const int32_t* position, int64_t n,
                              int32_t ch, int32_t pos) {
    bool seen = false;
    for (int64_t i = 0; i < n; ++i) {
        if (channel[i] != ch || position[i] != pos) continue;
        if (seen) TripleCheck::fail_repeated(i, ch, pos);
        seen = true;
    }
    fail("internal error: a repeat the list does not hold");
}

int64_t coefficient_slots(const Geometry& g) {
    int64_t blocks = 0;
    for (int p = 0; p < g.planes; ++p) blocks += g.plane_blocks(p);
    return blocks * g.bb();
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc) {
    crc = ~crc;
    for (size_t i = 0; i < size; ++i) crc = kCrc.t[(crc ^ data[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

// ---------------------------------------------------------------- encode

std::vector<uint8_t> container_encode(ContainerHeader h, const int32_t* channel,
                                      const int32_t* position, const int32_t* value, int64_t n) {
    const Geometry g = make_geometry(h.height, h.width, h.planes, h.block, h.sub420);
    require(h.quality >= 1 && h.quality <= 100, [&] {
        return "quality must be in [1, 100], got " + std::to_string(h.quality);
    });
    require(h.clip >= 0, "clip must be >= 0 (0: none)");
    require(h.order_kind >= 0 && h.order_kind <= 2, "order kind must be 0, 1 or 2");
    if (h.order_kind == 2)
        check_permutation(h.permutation.data(), int64_t(h.permutation.size()), g.channels());
    require(n >= 0, "negative list length");
    const int bb = g.bb();
    const int32_t vmax = max_abs_value(h.block, h.clip);
    const int64_t nch = g.channels(), npos = g.positions();

    // Bucket the triples by block (counting sort), validating as we go.
    std::vector<int64_t> base(size_t(g.planes) + 1, 0);
    for (int p = 0; p < g.planes; ++p) base[size_t(p) + 1] = base[size_t(p)] + g.plane_blocks(p);
    std::vector<int64_t> start(size_t(base.back()) + 1, 0);
    std::vector<int64_t> block_of(static_cast<size_t>(n));
    const TripleCheck check(g, vmax);
    for (int64_t i = 0; i < n; ++i) {
        const TripleSlot t = check(i, channel[i], position[i], value[i]);
        const int64_t b = base[size_t(t.plane)] + t.block;
        block_of[size_t(i)] = b;
        ++start[size_t(b) + 1];
    }
    for (size_t b = 1; b < start.size(); ++b) start[b] += start[b - 1];
    std::vector<int32_t> bk(static_cast<size_t>(n)), bv(static_cast<size_t>(n));
    {
        std::vector<int64_t> fill(start.begin(), start.end() - 1);
        for (int64_t i = 0; i < n; ++i) {
            const int64_t at = fill[size_t(block_of[size_t(i)])]++;
            bk[size_t(at)] = channel[i] % bb;
            bv[size_t(at)] = value[i];
        }
    }
    block_of = {};

    // Is the list in canonical order (by channel rank in the order, then position)?
    const std::vector<int32_t> seq = order_sequence(h);
    std::vector<int64_t> rank(static_cast<size_t>(nch));
    for (int64_t i = 0; i < nch; ++i) rank[size_t(seq[size_t(i)])] = i;
    auto key = [&](int64_t i) { return rank[size_t(channel[i])] * npos + position[i]; };
    h.canonical = true;
    for (int64_t i = 1; i < n && h.canonical; ++i) h.canonical = key(i) > key(i - 1);

    std::vector<uint8_t> out;
    out.reserve(kContainerFixedHeader + 2 * h.permutation.size() + size_t(n) + 64);
    out.insert(out.end(), kMagic, kMagic + 8);
    put_u16(out, kContainerVersion);
    out.push_back(uint8_t((h.planes == 3 ? kFlagRGB : 0) | (h.sub420 ? kFlag420 : 0) |
                          (h.canonical ? 0 : kFlagPermuted)));
    out.push_back(uint8_t(h.block));
    out.push_back(uint8_t(h.quality));
    out.push_back(uint8_t(h.order_kind));
    put_u16(out, 0);
    put_u32(out, uint32_t(h.height));
    put_u32(out, uint32_t(h.width));
    put_u32(out, uint32_t(h.clip));
    put_u64(out, uint64_t(n));
    put_u64(out, 0);  // payload length, patched below
    if (h.order_kind == 2)
        for (int32_t c : h.permutation) put_u16(out, uint32_t(c));
    const size_t payload_at = out.size();

    rc::Encoder enc(out);
    auto source = [&](int p, int64_t r, int64_t col, int32_t* blk) -> int32_t {
        const int64_t b = base[size_t(p)] + r * g.plane_wb(p) + col;
        int32_t nz_ac = 0;
        for (int64_t i = start[size_t(b)]; i < start[size_t(b) + 1]; ++i) {
            const int32_t k = bk[size_t(i)];
            if (blk[k] != 0)
                fail_repeat(channel, position, n, p * bb + k, int32_t(luma_position(g, p, r, col)));
            blk[k] = bv[size_t(i)];
            nz_ac += k > 0;
        }
        return nz_ac;
    };
    code_planes(enc, g, vmax, source, [](int, int64_t, int64_t, int, int32_t) {});

    if (!h.canonical) {
        // Each triple's index in the canonical list, in fixed-width bits.
        std::vector<int64_t> idx(static_cast<size_t>(n));
        std::iota(idx.begin(), idx.end(), int64_t(0));
        std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return key(a) < key(b); });
        std::vector<int64_t> canon(static_cast<size_t>(n));
        for (int64_t j = 0; j < n; ++j) canon[size_t(idx[size_t(j)])] = j;
        const int w = bitlen(uint64_t(n - 1));
        for (int64_t i = 0; i < n; ++i)
            for (int j = w - 1; j >= 0; --j) enc.bypass(int((canon[size_t(i)] >> j) & 1));
    }
    enc.finish();

    const uint64_t payload = out.size() - payload_at;
    for (int i = 0; i < 8; ++i) out[36 + size_t(i)] = uint8_t(payload >> (8 * i));
    put_u32(out, crc32(out.data(), out.size()));
    return out;
}

// ---------------------------------------------------------------- decode

ContainerHeader container_read_header(const uint8_t* data, size_t size, int64_t pixel_limit) {
    const size_t magic_n = std::min<size_t>(size, 8);
    if (std::memcmp(data, kMagic, magic_n) != 0 || size == 0)
        fail("not a .dcts file (the first bytes are not the .dcts magic number)");
    const size_t min_size = kContainerFixedHeader + 4;
    if (size < min_size)
        fail("truncated .dcts file: " + std::to_string(size) + " bytes, a header alone takes " +
             std::to_string(min_size));
    const uint32_t version = uint32_t(get_le(data + 8, 2));
    if (version != kContainerVersion)
        fail("unsupported .dcts format version " + std::to_string(version) +
             " (this dctsparse reads version " + std::to_string(kContainerVersion) + ")");

    ContainerHeader h;
    const uint32_t flags = data[10];
    h.planes = (flags & kFlagRGB) ? 3 : 1;
    h.sub420 = (flags & kFlag420) != 0;
    h.canonical = (flags & kFlagPermuted) == 0;
    h.block = data[11];
    h.quality = data[12];
    h.order_kind = data[13];
    const uint32_t reserved = uint32_t(get_le(data + 14, 2));
    h.height = int64_t(get_le(data + 16, 4));
    h.width = int64_t(get_le(data + 20, 4));
    const uint64_t clip = get_le(data + 24, 4);
    const uint64_t count = get_le(data + 28, 8);
    h.payload_bytes = get_le(data + 36, 8);

    // Fields that decide the file's length come first, so that a damaged
    // one is reported as such rather than as a checksum error.
    require(h.block >= kMinBlock && h.block <= kMaxBlock, [&] {
        return "bad .dcts header: block size " + std::to_string(h.block) + " is not in [2, 64]";
    });
    require(h.order_kind <= 2, [&] {
        return "bad .dcts header: order field " + std::to_string(h.order_kind) +
               " is not 0, 1 or 2";
    });
    const uint64_t perm_bytes = h.order_kind == 2 ? 2ull * uint64_t(h.planes) * uint64_t(h.block * h.block) : 0;
    const uint64_t fixed = kContainerFixedHeader + perm_bytes + 4;
    if (h.payload_bytes > uint64_t(size) || fixed + h.payload_bytes > uint64_t(size))
        fail("truncated .dcts file: the header promises " +
             (h.payload_bytes > (uint64_t(1) << 62) ? std::string("an impossible number of")
                                                     : std::to_string(fixed + h.payload_bytes)) +
             " bytes, the file has " + std::to_string(size));
    h.file_bytes = fixed + h.payload_bytes;
    if (h.file_bytes < size)
        fail("unexpected data after the end of the .dcts file: " + std::to_string(size - h.file_bytes) +
             " extra bytes");
    const uint32_t stored = uint32_t(get_le(data + size - 4, 4));
    if (crc32(data, size - 4) != stored)
        fail("checksum mismatch: the .dcts file is corrupted");

    require((flags & ~uint32_t(kFlagRGB | kFlag420 | kFlagPermuted)) == 0, [&] {
        return "bad .dcts header: unknown flags " + std::to_string(flags);
    });
    require(reserved == 0, "bad .dcts header: reserved field is not zero");
    require(h.quality >= 1 && h.quality <= 100, [&] {
        return "bad .dcts header: quality " + std::to_string(h.quality) + " is not in [1, 100]";
    });
    require(clip <= 0x7fffffffu, [&] {
        return "bad .dcts header: clip " + std::to_string(clip) + " is too large";
    });
    h.clip = int32_t(clip);
    require(h.height >= 1 && h.width >= 1, [&] {
        return "bad .dcts header: image size " + std::to_string(h.height) +
               "x" + std::to_string(h.width) + " is empty";
    });
    check_image_size(h.height, h.width, pixel_limit);
    const Geometry g = make_geometry(h.height, h.width, h.planes, h.block, h.sub420);
    require(count <= uint64_t(coefficient_slots(g)), [&] {
        return "bad .dcts header: " + std::to_string(count) + " coefficients do not fit a " +
               std::to_string(h.height) + "x" + std::to_string(h.width) + " image";
    });
    h.count = int64_t(count);
    require(h.payload_bytes >= 4, "bad .dcts header: the payload is shorter than 4 bytes");
    if (h.order_kind == 2) {
        const int64_t nch = g.channels();
        h.permutation.resize(size_t(nch));
        for (int64_t i = 0; i < nch; ++i)
            h.permutation[size_t(i)] = int32_t(get_le(data + kContainerFixedHeader + 2 * i, 2));
        check_permutation(h.permutation.data(), nch, nch);
    }
    return h;
}

SparseList container_decode(const uint8_t* data, size_t size, int64_t pixel_limit,
                            ContainerHeader* header) {
    ContainerHeader h = container_read_header(data, size, pixel_limit);
    const Geometry g = make_geometry(h.height, h.width, h.planes, h.block, h.sub420);
    const int bb = g.bb();
    const int32_t vmax = max_abs_value(h.block, h.clip);
    const size_t payload_at = kContainerFixedHeader + (h.order_kind == 2 ? 2 * size_t(g.channels()) : 0);
    rc::Decoder dec(data + payload_at, size_t(h.payload_bytes));

    // Coded (block-major) order first; the canonical order is a stable
    // counting sort by channel rank away, since each plane's blocks come in
    // raster order and so positions ascend within a channel.
    struct {
        std::vector<int32_t> channel, position, value;  // grown as the payload proves them
    } coded;
    const int64_t n = h.count;
    auto sink = [&](int p, int64_t r, int64_t col, int k, int32_t v) {
        if (int64_t(coded.value.size()) >= n)
            fail("corrupt .dcts file: the payload holds more than the " + std::to_string(n) +
                 " coefficients the header declares");
        coded.channel.push_back(p * bb + k);
        coded.position.push_back(int32_t(luma_position(g, p, r, col)));
        coded.value.push_back(v);
    };
    code_planes(dec, g, vmax, [](int, int64_t, int64_t, int32_t*) { return int32_t(0); }, sink);
    if (int64_t(coded.value.size()) != n)
        fail("corrupt .dcts file: the header declares " + std::to_string(n) +
             " coefficients, the payload holds " + std::to_string(coded.value.size()));

    const std::vector<int32_t> seq = order_sequence(h);
    const int64_t nch = g.channels();
    std::vector<int64_t> at(size_t(nch) + 1, 0), rank(static_cast<size_t>(nch));
    for (int64_t i = 0; i < nch; ++i) rank[size_t(seq[size_t(i)])] = i;
    for (int32_t c : coded.channel) ++at[size_t(rank[size_t(c)]) + 1];
    for (size_t i = 1; i < at.size(); ++i) at[i] += at[i - 1];
    SparseList out;
    out.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) {
        const int64_t j = at[size_t(rank[size_t(coded.channel[size_t(i)])])]++;
        out.channel()[j] = coded.channel[size_t(i)];
        out.position()[j] = coded.position[size_t(i)];
        out.value()[j] = coded.value[size_t(i)];
    }
    coded = {};

    if (!h.canonical) {
        const int w = bitlen(uint64_t(n > 0 ? n - 1 : 0));
        std::vector<char> seen(size_t(n), 0);
        SparseList perm;
        perm.resize(size_t(n));
        for (int64_t i = 0; i < n; ++i) {
            uint64_t j = 0;
            for (int b = 0; b < w; ++b) j = (j << 1) | uint64_t(dec.bypass(0));
            if (j >= uint64_t(n) || seen[size_t(j)])
                fail("corrupt .dcts payload: the stored list order is not a permutation");
            seen[size_t(j)] = 1;
            perm.channel()[i] = out.channel()[j];
            perm.position()[i] = out.position()[j];
            perm.value()[i] = out.value()[j];
        }
        out = std::move(perm);
    }
    if (dec.consumed() != h.payload_bytes)
        fail("corrupt .dcts payload: " + std::to_string(h.payload_bytes - dec.consumed()) +
             " coded bytes left over after the last coefficient");
    if (header) *header = std::move(h);
    return out;
}

}  // namespace dcts
