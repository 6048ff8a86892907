#include "sparse.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "kernels.hpp"
#include "zigzag.hpp"

namespace dcts {

std::vector<int32_t> channel_sequence(NamedOrder order, int planes, int block) {
    require(planes == 1 || planes == 3, "number of planes must be 1 or 3");
    require(block >= kMinBlock && block <= kMaxBlock, [&] {
        return "block_size must be in [2, 64], got " + std::to_string(block);
    });
    const int n = block * block;
    std::vector<int32_t> seq;
    seq.reserve(size_t(planes) * n);
    if (planes == 1) {
        for (int k = 0; k < n; ++k) seq.push_back(k);
    } else if (order == NamedOrder::Frequency) {
        for (int k = 0; k < n; ++k)
            for (int p = 0; p < planes; ++p) seq.push_back(p * n + k);
    } else if (order == NamedOrder::LumaFirst) {
        for (int k = 0; k < n; ++k) seq.push_back(k);
        for (int k = 0; k < n; ++k)
            for (int p = 1; p < planes; ++p) seq.push_back(p * n + k);
    } else {
        fail("unknown order id " + std::to_string(int(order)));
    }
    return seq;
}

void check_permutation(const int32_t* seq, int64_t n, int64_t channels) {
    require(n == channels, [&] {
        return "order must list all " + std::to_string(channels) +
               " channels, got " + std::to_string(n);
    });
    std::vector<char> seen(size_t(channels), 0);
    for (int64_t i = 0; i < n; ++i) {
        const int32_t c = seq[i];
        require(c >= 0 && c < channels, [&] {
            return "order entry " + std::to_string(i) + " = " +
                   std::to_string(c) + " is not a channel id in [0, " +
                   std::to_string(channels) + ")";
        });
        require(!seen[size_t(c)], [&] {
            return "order is not a permutation: channel " + std::to_string(c) +
                   " appears twice";
        });
        seen[size_t(c)] = 1;
    }
}

namespace {

// Luma-grid position of block i of plane p.
inline int64_t block_position(const Geometry& g, int p, int64_t i) {
    const int64_t pw = g.plane_wb(p);
    const int64_t r = i / pw, c = i % pw;
    return g.subsampled(p) ? (2 * r) * g.wb + 2 * c : r * g.wb + c;
}

// Where each channel's coefficients live: plane and natural index in a block.
struct ChannelMap {
    std::vector<int32_t> plane, nat;
    explicit ChannelMap(const Geometry& g) {
        const std::vector<int32_t> zz = zigzag(g.block);
        const int bb = g.bb();
        for (int p = 0; p < g.planes; ++p)
            for (int k = 0; k < bb; ++k) {
                plane.push_back(p);
                nat.push_back(zz[size_t(k)]);
            }
    }
};

}  // namespace

namespace {

// Offsets of each channel's run in the list (in the sequence's order) from
// the number of non-zeros per channel id; fills the channel array (of the
// total count's length).
std::vector<int64_t> list_layout(const std::vector<int64_t>& count, const Geometry& g,
                                 const int32_t* seq, int32_t* channel) {
    const int64_t nch = g.channels();
    std::vector<int64_t> cursor(size_t(nch), 0);
    int64_t total = 0;
    for (int64_t j = 0; j < nch; ++j) {
        cursor[size_t(seq[j])] = total;
        total += count[size_t(seq[j])];
    }
    for (int64_t ch = 0; ch < nch; ++ch)
        std::fill_n(channel + cursor[size_t(ch)], count[size_t(ch)], int32_t(ch));
    return cursor;
}

}  // namespace

SparseList planes_to_list(const Coeffs& coeffs, const Geometry& g, const int32_t* seq) {
    const int bb = g.bb();
    const std::vector<int32_t> zz = zigzag(g.block);
    std::vector<int32_t> inv(static_cast<size_t>(bb));  // natural index -> zigzag index
    for (int k = 0; k < bb; ++k) inv[size_t(zz[size_t(k)])] = k;

    // Pass 1: non-zeros per (plane, natural index); contiguous, so it vectorises.
    NonzeroCounts counts;
    counts.reset(g);
    for (int p = 0; p < g.planes; ++p) {
        int32_t* cnt = counts.plane[p].data();
        const int32_t* c = coeffs.plane[p];
        const int64_t n = g.plane_blocks(p);
        for (int64_t i = 0; i < n; ++i, c += bb)
            for (int k = 0; k < bb; ++k) cnt[k] += c[k] != 0;
    }
    std::vector<int64_t> count(size_t(g.channels()));
    int64_t total = 0;
    for (int p = 0; p < g.planes; ++p)
        for (int k = 0; k < bb; ++k)
            total += count[size_t(p * bb + k)] = counts.plane[p][size_t(zz[size_t(k)])];
    SparseList out;
    out.resize(size_t(total));
    std::vector<int64_t> cursor = list_layout(count, g, seq, out.channel());

    // Pass 2: visit blocks in raster order (so positions ascend within each
    // channel) and only their non-zeros, found with a bit mask.
    const Kernels& kern = kernels();
    int32_t* position = out.position();
    int32_t* value = out.value();
    for (int p = 0; p < g.planes; ++p) {
        const int32_t* c = coeffs.plane[p];
        int64_t* cur = cursor.data() + int64_t(p) * bb;
        const int64_t n = g.plane_blocks(p);
        for (int64_t i = 0; i < n; ++i, c += bb) {
            const int32_t pos = int32_t(block_position(g, p, i));
            for (int base = 0; base < bb; base += 64) {
                uint64_t mask = kern.nonzero_mask(c + base, std::min(64, bb - base));
                while (mask) {
                    const int nat = base + __builtin_ctzll(mask);
                    mask &= mask - 1;
                    const size_t at = size_t(cur[inv[size_t(nat)]]++);
                    position[at] = pos;
                    value[at] = c[nat];
                }
            }
        }
    }
    return out;
}

namespace {

// Records per window. The cost is in writing the list: each window writes
// one piece of every channel's run, and longer pieces write whole cache
// lines more often (2048 -> 16384 records: encode 0.8 ms faster, of 17, at
// 2048^2 and B=8, though the sorted buffer no longer fits L1); beyond this
// it is flat.
constexpr int64_t kListWindow = 16384;
// Sorted runs are copied in whole chunks of this many entries (see
// records_to_list), so the sorted buffer has this much slack at its end.
constexpr int64_t kChunk = 8;

// A window of consecutive blocks of one plane, counting-sorted as one piece.
struct ListWindow {
    int64_t end_block;  // one past its last block
    int32_t pos0;       // position of its first block
};

// The two halves of a record, each read with one 16-bit load (a 32-bit load
// and a shift or mask cost one more instruction per record and pass).
inline uint32_t record_index(const uint32_t* p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint16_t k;
    std::memcpy(&k, reinterpret_cast<const unsigned char*>(p) + 2, 2);
    return k;
#else
    return *p >> 16;
#endif
}
inline uint32_t record_value(const uint32_t* p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
#else
    return *p & 0xffffu;
#endif
}

// Sorted entries (position offset << 16 | uint16 value) -> the list's
// position and value arrays. copy_chunks writes n rounded up to whole chunks:
// fixed-size chunks vectorise with no scalar tail, which for runs this short
// (tens of entries) costs as much as the rest.
inline void copy_chunks(const uint32_t* __restrict src, int64_t n, int32_t pos0,
                        int32_t* __restrict position, int32_t* __restrict value) {
    for (int64_t i = 0; i < n; i += kChunk)
        for (int64_t l = 0; l < kChunk; ++l) {
            const uint32_t w = src[i + l];
            position[i + l] = pos0 + int32_t(w >> 16);
            value[i + l] = int32_t(w << 16) >> 16;  // sign-extends the low half
        }
}
inline void copy_exact(const uint32_t* src, int64_t n, int32_t pos0, int32_t* position,
                       int32_t* value) {
    for (int64_t i = 0; i < n; ++i) {
        position[i] = pos0 + int32_t(src[i] >> 16);
        value[i] = int32_t(src[i] << 16) >> 16;
    }
}

// Luma-grid position of block i of a plane pw blocks wide, `step` luma-grid
// rows and columns per block.
inline int64_t block_pos(const Geometry& g, int64_t pw, int64_t step, int64_t i) {
    return step * ((i / pw) * g.wb + i % pw);
}

}  // namespace

int64_t list_length(const BlockRecords& rec, const Geometry& g) {
    int64_t n = 0;
    for (int p = 0; p < g.planes; ++p) n += int64_t(rec.size(p));
    return n;
}

SparseList records_to_list(const BlockRecords& rec, const Geometry& g, const int32_t* seq) {
    SparseList out;
    out.resize(size_t(list_length(rec, g)));
    records_to_list(rec, g, seq, out.channel(), out.position(), out.value());
    return out;
}

// Scattering each record straight to its channel's run touches one cache line
// per record among ~2 * P*B*B open write streams, which miss the cache at any
// size that matters (45 cycles a triple at 2048^2). Instead, a window of
// blocks holding a few thousand records is counting-sorted into a small,
// cache-resident buffer, and each channel's part is then copied to its run
// in one contiguous piece. Each window's histogram is taken once, in a first
// pass that also yields the per-channel totals the list layout needs.
void records_to_list(const BlockRecords& rec, const Geometry& g, const int32_t* seq,
                     int32_t* channel, int32_t* position, int32_t* value) {
    const int bb = g.bb();
    const int64_t window = std::max<int64_t>(kListWindow, 4 * int64_t(bb));
    std::vector<ListWindow> windows[3];
    std::vector<int32_t> hist[3];  // per window, records per zigzag index
    std::vector<int64_t> count(size_t(g.channels()), 0);
    for (int p = 0; p < g.planes; ++p) {
        const uint32_t* r = rec.records(p);
        const uint16_t* per_block = rec.counts(p);
        const int64_t pw = g.plane_wb(p), n = g.plane_blocks(p);
        const int64_t step = g.subsampled(p) ? 2 : 1;
        std::vector<ListWindow>& win = windows[p];
        std::vector<int32_t>& h = hist[p];
        win.reserve(size_t(int64_t(rec.size(p)) / window + 2));
        for (int64_t i0 = 0; i0 < n;) {
            int64_t i1 = i0, total = 0;
            while (i1 < n && total < window) total += per_block[i1++];
            // Sorted entries keep the position as a 16-bit offset from the
            // window's first block: end the window sooner where it spans more
            // (sparse blocks in a wide image; positions ascend with i).
            const int64_t pos0 = block_pos(g, pw, step, i0);
            if (block_pos(g, pw, step, i1 - 1) - pos0 >= 65536) {
                int64_t lo = i0 + 1, hi = i1 - 1;  // first block past the span
                while (lo < hi) {
                    const int64_t mid = lo + (hi - lo) / 2;
                    if (block_pos(g, pw, step, mid) - pos0 >= 65536) hi = mid;
                    else lo = mid + 1;
                }
                i1 = lo;
                total = 0;
                for (int64_t i = i0; i < i1; ++i) total += per_block[i];
            }
            win.push_back({i1, int32_t(pos0)});
            h.resize(h.size() + size_t(bb), 0);
            int32_t* hw = h.data() + h.size() - size_t(bb);
            int64_t j = 0;
            for (; j + 4 <= total; j += 4) {
                ++hw[record_index(r + j)];
                ++hw[record_index(r + j + 1)];
                ++hw[record_index(r + j + 2)];
                ++hw[record_index(r + j + 3)];
            }
            for (; j < total; ++j) ++hw[record_index(r + j)];
            r += total;
            i0 = i1;
        }
        int64_t* cnt = count.data() + int64_t(p) * bb;
        for (size_t w = 0; w < win.size(); ++w)
            for (int k = 0; k < bb; ++k) cnt[k] += h[w * size_t(bb) + size_t(k)];
    }
    std::vector<int64_t> cursor = list_layout(count, g, seq, channel);
    std::vector<int32_t> at(static_cast<size_t>(bb));
    std::vector<uint32_t> buf(size_t(window + bb + kChunk));
    for (int p = 0; p < g.planes; ++p) {
        const uint32_t* r = rec.records(p);
        const uint16_t* per_block = rec.counts(p);
        int64_t* cur = cursor.data() + int64_t(p) * bb;
        // End of each channel's run: a chunk may spill past a window's part
        // of a run only into room that later windows overwrite.
        std::vector<int64_t> run_end(static_cast<size_t>(bb));
        for (int k = 0; k < bb; ++k) run_end[size_t(k)] = cur[k] + count[size_t(p * bb + k)];
        const int64_t pw = g.plane_wb(p);
        const int64_t step = g.subsampled(p) ? 2 : 1;
        const int64_t wrap = step * (g.wb - pw);  // added at the end of a block row
        int64_t pos = 0, col = 0;
        const int32_t* hw = hist[p].data();
        int32_t* cursor_k = at.data();
        uint32_t* sorted = buf.data();
        int64_t i = 0;
        for (const ListWindow& w : windows[p]) {
            for (int k = 0, sum = 0; k < bb; ++k) {  // where index k starts in the buffer
                cursor_k[k] = sum;
                sum += hw[k];
            }
            for (; i < w.end_block; ++i) {
                const uint32_t off = uint32_t(pos - w.pos0) << 16;
                for (const uint32_t* end = r + per_block[i]; r < end; ++r)
                    sorted[cursor_k[record_index(r)]++] = record_value(r) | off;
                pos += step;
                if (++col == pw) {
                    col = 0;
                    pos += wrap;
                }
            }
            for (int k = 0, from = 0; k < bb; ++k) {
                const int32_t len = hw[k];
                if (len == 0) continue;
                const int64_t dst = cur[k];
                const int64_t whole = (len + kChunk - 1) & ~(kChunk - 1);
                if (dst + whole <= run_end[size_t(k)])
                    copy_chunks(sorted + from, whole, w.pos0, position + dst, value + dst);
                else
                    copy_exact(sorted + from, len, w.pos0, position + dst, value + dst);
                cur[k] = dst + len;
                from += len;
            }
            hw += bb;
        }
    }
}

void list_to_planes(const int32_t* channel, const int32_t* position, const int32_t* value,
                    int64_t n, const Geometry& g, int32_t vmax, const Coeffs& out) {
    const TripleCheck check(g, vmax);
    const int64_t bb = g.bb();
    for (int64_t t = 0; t < n; ++t) {
        const TripleSlot s = check(t, channel[t], position[t], value[t]);
        int32_t& slot = out.plane[s.plane][s.block * bb + s.nat];
        if (slot != 0) TripleCheck::fail_repeated(t, channel[t], position[t]);
        slot = value[t];
    }
}

void clear_list(const int32_t* channel, const int32_t* position, int64_t n, const Geometry& g,
                const Coeffs& out) {
    const TripleCheck where(g, 1);
    const int64_t bb = g.bb();
    for (int64_t t = 0; t < n; ++t) {
        const TripleSlot s = where.slot(channel[t], position[t]);
        out.plane[s.plane][s.block * bb + s.nat] = 0;
    }
}

TripleCheck::TripleCheck(const Geometry& g, int32_t vmax)
    : nch_(g.channels()),
      npos_(g.positions()),
      wb_(g.wb),
      vmax_(vmax),
      bb_(g.bb()),
      sub420_(g.sub420),
      div_wb_(g.wb) {
    for (int p = 0; p < 3; ++p) pwb_[p] = p < g.planes ? g.plane_wb(p) : 0;
    const std::vector<int32_t> zz = zigzag(g.block);
    for (int p = 0; p < g.planes; ++p)
        for (int k = 0; k < bb_; ++k) {
            plane_.push_back(int16_t(p));
            nat_.push_back(int16_t(zz[size_t(k)]));
        }
}

void TripleCheck::fail_at(const TripleCheck& k, int64_t t, int32_t ch, int32_t pos, int32_t v) {
    const std::string at = "triple " + std::to_string(t) + ": ";
    if (ch < 0 || ch >= k.nch_)
        fail(at + "channel " + std::to_string(ch) + " is out of range [0, " +
             std::to_string(k.nch_) + ")");
    if (pos < 0 || pos >= k.npos_)
        fail(at + "position " + std::to_string(pos) + " is out of range [0, " +
             std::to_string(k.npos_) + ")");
    if (!valid_value(v, k.vmax_))
        fail(at + "value " + std::to_string(v) + " is not a non-zero integer in [-" +
             std::to_string(k.vmax_) + ", " + std::to_string(k.vmax_) + "]");
    const int64_t r = pos / k.wb_, c = pos % k.wb_;
    fail(at + "chroma channel " + std::to_string(ch) + " at position " + std::to_string(pos) +
         " (block row " + std::to_string(r) + ", column " + std::to_string(c) +
         ") is not on the 4:2:0 chroma grid (even rows and columns)");
}

void TripleCheck::fail_repeated(int64_t t, int32_t ch, int32_t pos) {
    fail("triple " + std::to_string(t) + ": (channel " + std::to_string(ch) + ", position " +
         std::to_string(pos) + ") appears twice");
}

void planes_to_dense(const Coeffs& coeffs, const Geometry& g, int32_t* dense) {
    const int bb = g.bb();
    const int64_t nch = g.channels();
    const std::vector<int32_t> zz = zigzag(g.block);
    std::fill(dense, dense + g.positions() * nch, 0);
    for (int p = 0; p < g.planes; ++p) {
        const int32_t* c = coeffs.plane[p];
        const int64_t n = g.plane_blocks(p);
        for (int64_t i = 0; i < n; ++i, c += bb) {
            int32_t* o = dense + block_position(g, p, i) * nch + int64_t(p) * bb;
            for (int k = 0; k < bb; ++k) o[k] = c[zz[size_t(k)]];
        }
    }
}

void dense_to_planes(const int32_t* dense, const Geometry& g, int32_t vmax, const Coeffs& out) {
    const int bb = g.bb();
    const int64_t nch = g.channels();
    const std::vector<int32_t> zz = zigzag(g.block);
    for (int64_t pos = 0; pos < g.positions(); ++pos) {
        const int64_t r = pos / g.wb, c = pos % g.wb;
        const int32_t* px = dense + pos * nch;
        for (int p = 0; p < g.planes; ++p) {
            const int32_t* v = px + int64_t(p) * bb;
            const bool off_grid = g.subsampled(p) && ((r | c) & 1);
            for (int k = 0; k < bb; ++k) {
                if (v[k] == 0) continue;
                auto where = [&] {
                    return "DCT image entry (row " + std::to_string(r) + ", column " +
                           std::to_string(c) + ", channel " + std::to_string(int64_t(p) * bb + k) +
                           ")";
                };
                if (off_grid) fail(where() + " is non-zero off the 4:2:0 chroma grid");
                if (std::abs(int64_t(v[k])) > vmax)
                    fail(where() + " = " + std::to_string(v[k]) + " is outside [-" +
                         std::to_string(vmax) + ", " + std::to_string(vmax) + "]");
            }
            if (off_grid) continue;
            const int64_t i = g.subsampled(p) ? (r / 2) * g.plane_wb(p) + c / 2
                                              : r * g.plane_wb(p) + c;
            int32_t* dst = out.plane[p] + i * bb;
            for (int k = 0; k < bb; ++k) dst[zz[size_t(k)]] = v[k];
        }
    }
}

Coeffs scatter_to_store(const int32_t* channel, const int32_t* position, const int32_t* value,
                        int64_t n, const Geometry& g, int32_t vmax, CoeffStore& store) {
    const Coeffs c = store.acquire(g, true);
    try {
        list_to_planes(channel, position, value, n, g, vmax, c);
    } catch (...) {
        store.dirty();  // partly written: the next acquire re-zeroes it
        throw;
    }
    return c;
}

void list_to_dense(const int32_t* channel, const int32_t* position, const int32_t* value,
                   int64_t n, const Geometry& g, int32_t vmax, int32_t* dense) {
    CoeffStore& store = decode_store();
    StoreGuard guard{store};
    const Coeffs c = scatter_to_store(channel, position, value, n, g, vmax, store);
    if (dense) planes_to_dense(c, g, dense);
    clear_list(channel, position, n, g, c);
}

SparseList dense_to_list(const int32_t* dense, const Geometry& g, int32_t vmax,
                         const int32_t* seq) {
    CoeffStore& store = encode_store();
    StoreGuard guard{store};
    const Coeffs c = store.acquire(g, false);
    dense_to_planes(dense, g, vmax, c);
    return planes_to_list(c, g, seq);
}

namespace {
std::atomic<int64_t> g_tile_blocks{0};  // tests: forced tile width (0: kTileCoeffs)
}  // namespace

void StripeScatter::set_tile_blocks(int64_t blocks) {
    require(blocks == 0 || (blocks >= 2 && (blocks & (blocks - 1)) == 0),
            "tile width must be 0 or a power of two >= 2");
    g_tile_blocks.store(blocks, std::memory_order_relaxed);
}

StripeScatter::StripeScatter(const int32_t* channel, const int32_t* position,
                             const int32_t* value, int64_t n, const Geometry& g, int32_t vmax)
    : channel_(channel), position_(position), value_(value), n_(n), g_(g), vmax_(vmax),
      rows_shift_(g.sub420 ? 1 : 0), bstride_(block_stride(g)), nstripes_(g.hb >> rows_shift_) {
    const int64_t bs = bstride_, rows = int64_t(1) << rows_shift_;
    // Coefficients of two luma block columns of a stripe, all planes (an even
    // number of columns holds whole 4:2:0 chroma blocks).
    const int64_t per_two = g.bb() * (2 * rows + (g.planes - 1) * (g.sub420 ? 1 : 2));
    int64_t tw = g_tile_blocks.load(std::memory_order_relaxed);
    if (tw == 0) {
        tw = 2;
        while (tw * per_two <= kTileCoeffs) tw *= 2;  // doubled, tw * per_two / 2 would still fit
    }
    if (g.wb <= tw) {  // the stripe fits: one tile of its whole width (ordinary images)
        tile_wb_ = g.wb;
        ntiles_ = 1;
        tile_shift_ = 62;
    } else {
        tile_wb_ = tw;
        ntiles_ = (g.wb + tw - 1) / tw;
        tile_shift_ = 0;
        while ((int64_t(1) << tile_shift_) < tw) ++tile_shift_;
    }
    tile_mask_ = (int64_t(1) << tile_shift_) - 1;
    const int64_t tcw = g.sub420 ? tile_wb_ / 2 : tile_wb_;  // chroma blocks per tile
    // Tile buffer: luma block rows, then one chroma block row per chroma plane.
    offset_[0] = 0;
    for (int p = 1; p < g.planes; ++p) offset_[p] = (rows * tile_wb_ + (p - 1) * tcw) * bs;
    stripe_entries_ = (rows * tile_wb_ + (g.planes - 1) * tcw) * bs;
    require(stripe_entries_ < (int64_t(1) << 32), "image too wide for the stripe decoder");
    if (!find_runs()) bucket();
    buffer_.assign(size_t(stripe_entries_), 0);
}

// Splits the list into maximal runs of one channel at strictly ascending
// positions and validates values everywhere, channels and position ranges
// per run (the ends of an ascending run bound it); the scatter checks the
// rest (the 4:2:0 grid and, where two runs share a channel, repeated pairs).
// False (nothing kept) when there are too many runs for reading them in
// place to pay: every stripe visits every run.
bool StripeScatter::find_runs() {
    const int32_t *ch = channel_, *pos = position_, *val = value_;
    const int32_t vmax = vmax_;
    const int64_t n = n_;
    run_.clear();
    if (n == 0) return true;
    // Every tile visits every run: allow about one visit per two triples.
    const int64_t max_runs =
        std::max<int64_t>(1, (n / 2 + 4096) / std::max<int64_t>(1, nstripes_ * ntiles_));
    std::vector<int64_t> starts{0};
    constexpr int64_t kChunk = 256;
    for (int64_t b = 0; b < n; b += kChunk) {
        const int64_t e = std::min(n, b + kChunk);
        // Branch-free over the chunk (vectorises); the rare chunk with a run
        // boundary or a bad value is looked at again.
        int32_t bad = 0, brk = 0;
        const int32_t v0 = val[b];
        bad |= int32_t(!valid_value(v0, vmax));
        for (int64_t t = std::max<int64_t>(b, 1); t < e; ++t) {
            const int32_t v = val[t];
            bad |= int32_t(!valid_value(v, vmax));
            brk |= int32_t(ch[t] != ch[t - 1]) | int32_t(pos[t] <= pos[t - 1]);
        }
        if (bad) first_error();
        if (!brk) continue;
        for (int64_t t = std::max<int64_t>(b, 1); t < e; ++t)
            if (ch[t] != ch[t - 1] || pos[t] <= pos[t - 1]) {
                if (int64_t(starts.size()) >= max_runs) return false;
                starts.push_back(t);
            }
    }
    starts.push_back(n);

    const int64_t nch = g_.channels(), npos = g_.positions();
    for (size_t k = 0; k + 1 < starts.size(); ++k) {
        const int64_t b = starts[k], e = starts[k + 1];
        if (ch[b] < 0 || ch[b] >= nch || pos[b] < 0 || pos[e - 1] >= npos) first_error();
    }
    const ChannelMap map(g_);
    // A pair can repeat only across two runs of one channel (positions
    // strictly ascend within a run): only such runs check their slots.
    std::vector<int32_t> runs_of(size_t(nch), 0);
    for (size_t k = 0; k + 1 < starts.size(); ++k) ++runs_of[size_t(ch[starts[k]])];
    run_.resize(starts.size() - 1);
    for (size_t k = 0; k < run_.size(); ++k) {
        const int32_t c = ch[starts[k]];
        const int p = map.plane[size_t(c)];
        run_[k] = Run{starts[k], starts[k + 1], offset_[p] + map.nat[size_t(c)],
                      g_.subsampled(p) ? 1 : 0, runs_of[size_t(c)] > 1};
    }
    from_.assign(run_.size(), 0);
    if (ntiles_ > 1 && rows_shift_ == 1) row1_.assign(run_.size(), 0);
    return true;
}

// Sorts the triples by tile (key = stripe * ntiles_ + tile): validate every
// triple and tally its key, then place (tile-local index, value) records, 32
// bits each where both fit (tile-local index << vbits_ | value + vmax), else
// 64. With no more tiles than triples (every ordinary image), a counting
// sort with a count per tile. Otherwise (a tall, narrow image has a stripe
// per block row, far more than its triples) counts per tile would grow with
// the declared height, not the file: 24 bytes a stripe, 3 GB for a valid
// 2^28 x 1 greyscale header at B = 2. There, two counting passes over the
// key's low and high halves (an LSD radix sort; ~2 sqrt(tiles) counts)
// order the records and keep each one's key: 8 or 12 bytes a triple
// (twice that while sorting).
void StripeScatter::bucket() {
    const Geometry& g = g_;
    const int64_t bs = bstride_;
    const int64_t nch = g.channels(), npos = g.positions(), wb = g.wb;
    const int32_t vmax = vmax_;
    const int rs = rows_shift_, ts = tile_shift_;
    const int64_t row_mask = (int64_t(1) << rs) - 1, row_entries = tile_wb_ * bs;
    const int64_t tmask = tile_mask_, ntiles = ntiles_;
    // Per channel: the tile-local index of column 0 of the tile's first row,
    // and whether it is 4:2:0 chroma (halved columns, even rows only).
    const ChannelMap map(g);
    std::vector<int64_t> add(static_cast<size_t>(nch));
    std::vector<int32_t> half(static_cast<size_t>(nch));
    for (int64_t c = 0; c < nch; ++c) {
        const int p = map.plane[size_t(c)];
        add[size_t(c)] = offset_[p] + map.nat[size_t(c)];
        half[size_t(c)] = g.subsampled(p) ? 1 : 0;
    }
    const FastDiv div_wb(wb);
    const int64_t nkeys = nstripes_ * ntiles;
    sparse_ = nkeys > n_;
    // Sparse keys: lo_bits low, the rest high (each half <= 2^16 counts: a
    // position is an int32, so keys are below 2^31).
    int key_bits = 0;
    while ((nkeys - 1) >> key_bits) ++key_bits;
    require(key_bits <= 32, "image too large for the stripe decoder");
    const int lo_bits = (key_bits + 1) / 2;
    const uint32_t lo_mask = (uint32_t(1) << lo_bits) - 1;
    std::vector<int64_t> count, lo, hi;
    if (sparse_) {
        lo.assign((size_t(1) << lo_bits) + 1, 0);
        hi.assign((size_t(1) << (key_bits - lo_bits)) + 1, 0);
    } else {
        count.assign(size_t(nkeys) + 1, 0);
    }
    auto validate = [&](auto&& tally) {
        for (int64_t t = 0; t < n_; ++t) {
            const int32_t ch = channel_[t], pos = position_[t], v = value_[t];
            // One predictable branch: failure conditions OR-ed; out-of-range
            // indices are replaced by 0 before they index anything.
            const bool ch_bad = uint32_t(ch) >= uint64_t(nch), pos_bad = uint32_t(pos) >= uint64_t(npos);
            const bool v_bad = !valid_value(v, vmax);
            const size_t ci = ch_bad ? 0 : size_t(ch);
            const int64_t pp = pos_bad ? 0 : pos;
            const int64_t r = div_wb(pp), c = pp - r * wb;
            const bool off_grid = (half[ci] & (r | c) & 1) != 0;
            if (ch_bad | pos_bad | v_bad | off_grid) first_error();
            tally(uint32_t((r >> rs) * ntiles + (c >> ts)));
        }
    };
    if (sparse_) {
        validate([&](uint32_t key) {
            ++lo[(key & lo_mask) + 1];
            ++hi[(key >> lo_bits) + 1];
        });
        for (size_t k = 1; k < lo.size(); ++k) lo[k] += lo[k - 1];
        for (size_t k = 1; k < hi.size(); ++k) hi[k] += hi[k - 1];
    } else {
        validate([&](uint32_t key) { ++count[key]; });
        start_.assign(size_t(nkeys) + 1, 0);
        for (int64_t k = 0; k < nkeys; ++k) start_[size_t(k) + 1] = start_[size_t(k)] + count[size_t(k)];
        count = std::vector<int64_t>();
    }

    int lbits = 0, vbits = 0;
    while ((stripe_entries_ - 1) >> lbits) ++lbits;
    while ((int64_t(2) * vmax) >> vbits) ++vbits;
    const size_t room = size_t(std::max<int64_t>(n_, 1));
    auto place = [&](auto* out, int shift) {
        using Rec = std::remove_pointer_t<decltype(out)>;
        // Triple t's key and record.
        auto record = [&](int64_t t, uint32_t& key) {
            const int32_t ch = channel_[t], pos = position_[t];
            const int64_t r = div_wb(pos), c = pos - r * wb;
            const int64_t local = add[size_t(ch)] + ((c & tmask) >> half[size_t(ch)]) * bs +
                                  (r & row_mask) * row_entries;
            key = uint32_t((r >> rs) * ntiles + (c >> ts));
            return Rec(local) << shift | Rec(uint32_t(int64_t(value_[t]) + vmax));
        };
        if (!sparse_) {
            std::vector<int64_t> cur(start_.begin(), start_.end() - 1);
            uint32_t key;
            for (int64_t t = 0; t < n_; ++t) {
                const Rec x = record(t, key);
                out[cur[key]++] = x;
            }
            return;
        }
        // By the low half of the key (in list order), then stably by the high half.
        std::unique_ptr<uint32_t[]> key1(new uint32_t[room]);
        std::unique_ptr<Rec[]> rec1(new Rec[room]);
        uint32_t key;
        for (int64_t t = 0; t < n_; ++t) {
            const Rec x = record(t, key);
            const int64_t i = lo[key & lo_mask]++;
            key1[size_t(i)] = key;
            rec1[size_t(i)] = x;
        }
        key_.reset(new uint32_t[room]);
        for (int64_t i = 0; i < n_; ++i) {
            const uint32_t k = key1[size_t(i)];
            const int64_t j = hi[k >> lo_bits]++;
            key_[size_t(j)] = k;
            out[j] = rec1[size_t(i)];
        }
    };
    if (lbits + vbits <= 32) {
        vbits_ = vbits;
        rec32_.reset(new uint32_t[room]);  // not zeroed: all written
        place(rec32_.get(), vbits);
    } else {
        vbits_ = 32;
        rec64_.reset(new uint64_t[room]);
        place(rec64_.get(), 32);
    }
}

// Scatters a run's triples [i, end) below position `lim` into dst (the
// run's column 0 of the row that starts at `base`) and returns the new
// cursor. Half: 4:2:0 chroma, where a column at or past `wlim` (an odd row,
// when the stripe's last tile reads on to the stripe's end) or an odd column
// is off the grid. Check: the run shares its channel with another run, so a
// slot may already be taken.
template <bool Half, bool Check>
int64_t StripeScatter::scatter_run(int64_t i, int64_t end, int64_t base, int64_t lim,
                                   int64_t wlim, int64_t bb, int32_t* dst) const {
    const int32_t* pos = position_;
    const int32_t* val = value_;
    for (; i < end && pos[i] < lim; ++i) {
        const int64_t col = pos[i] - base;
        if (Half && ((col >= wlim) | (col & 1))) first_error();
        int32_t& slot = dst[(Half ? col >> 1 : col) * bb];
        if (Check && slot != 0) first_error();
        slot = val[i];
    }
    return i;
}

namespace {
// The first index in [i, end) whose position is >= x (positions ascending),
// searched from i outwards: the answer is usually near.
int64_t gallop(const int32_t* pos, int64_t i, int64_t end, int64_t x) {
    if (i == end || pos[i] >= x) return i;
    int64_t step = 1;  // pos[i] < x
    while (i + step < end && pos[i + step] < x) {
        i += step;
        step *= 2;
    }
    const int64_t hi = std::min(i + step, end);
    return std::lower_bound(pos + i + 1, pos + hi, x) - pos;
}
}  // namespace

// The runs' triples of tile t of stripe s, a luma row at a time: 2-row
// stripes keep a second cursor per luma run (row1_), found at the stripe's
// first tile.
void StripeScatter::scatter_runs_tiled(int64_t s, int64_t t, int32_t* buf) {
    const int64_t wb = g_.wb, bb = bstride_, rows = int64_t(1) << rows_shift_;
    const int64_t sbase = s * rows * wb;
    const auto [c0, nb] = tile_span(t);
    const bool last = t + 1 == ntiles_;
    for (size_t k = 0; k < run_.size(); ++k) {
        Run& r = run_[k];
        int32_t* dst = buf + r.add;
        if (r.half) {
            // 4:2:0 chroma: only the stripe's first luma row is on the grid;
            // the last tile reads to the stripe's end, so anything in the
            // second row fails as off the grid.
            const int64_t lim = last ? sbase + rows * wb : sbase + c0 + nb;
            if (r.cur == r.end) continue;
            r.cur = r.check ? scatter_run<true, true>(r.cur, r.end, sbase + c0, lim, wb - c0, bb, dst)
                            : scatter_run<true, false>(r.cur, r.end, sbase + c0, lim, wb - c0, bb, dst);
            continue;
        }
        if (rows == 2 && t == 0) row1_[k] = gallop(position_, r.cur, r.end, sbase + wb);
        for (int64_t row = 0; row < rows; ++row) {
            int64_t& cur = row == 0 ? r.cur : row1_[k];
            const int64_t base = sbase + row * wb + c0;
            if (cur == r.end || position_[cur] >= base + nb) continue;
            int32_t* d = dst + row * tile_wb_ * bb;
            cur = r.check ? scatter_run<false, true>(cur, r.end, base, base + nb, wb, bb, d)
                          : scatter_run<false, false>(cur, r.end, base, base + nb, wb, bb, d);
        }
        if (rows == 2 && last) r.cur = row1_[k];
    }
}

Coeffs StripeScatter::scatter(int64_t s, int64_t t) {
    require(s * ntiles_ + t == next_ && t < ntiles_,
            "StripeScatter: tiles must be scattered in order");
    next_ = s * ntiles_ + t + 1;
    int32_t* buf = buffer_.data();
    if (!run_.empty() && ntiles_ > 1) {
        scatter_runs_tiled(s, t, buf);
    } else if (!run_.empty()) {
        const int64_t wb = g_.wb, bb = bstride_;
        const int64_t base = (s << rows_shift_) * wb;
        const int64_t lim = base + (int64_t(1) << rows_shift_) * wb;
        for (size_t k = 0; k < run_.size(); ++k) {
            Run& r = run_[k];
            from_[k] = r.cur;
            if (r.cur == r.end) continue;
            int32_t* dst = buf + r.add;
            if (r.half) r.cur = r.check ? scatter_run<true, true>(r.cur, r.end, base, lim, wb, bb, dst)
                                        : scatter_run<true, false>(r.cur, r.end, base, lim, wb, bb, dst);
            else r.cur = r.check ? scatter_run<false, true>(r.cur, r.end, base, lim, wb, bb, dst)
                                 : scatter_run<false, false>(r.cur, r.end, base, lim, wb, bb, dst);
            // The runs are ~2 P*B*B streams read a little per stripe, too many
            // for the hardware prefetcher: fetch what the next stripe will
            // likely take (as much as this one did) while this one decodes.
            const int64_t ahead = std::min<int64_t>(r.end, r.cur + (r.cur - from_[k]) + 16);
            for (int64_t i = (r.cur + 15) & ~int64_t(15); i < ahead; i += 16) {
                __builtin_prefetch(position_ + i, 0, 2);
                __builtin_prefetch(value_ + i, 0, 2);
            }
        }
    } else if (n_ > 0) {
        const int64_t key = s * ntiles_ + t;
        const int64_t vmax = vmax_;
        const int shift = vbits_;
        int64_t b, e;
        if (sparse_) {
            // Tiles come in key order, so this tile's records (if any) are next.
            b = e = cursor_;
            while (e < n_ && key_[size_t(e)] == uint64_t(key)) ++e;
            cursor_ = e;
        } else {
            b = start_[size_t(key)];
            e = start_[size_t(key) + 1];
        }
        auto put = [&](const auto* rec) {
            using Rec = std::remove_cv_t<std::remove_pointer_t<decltype(rec)>>;
            const Rec mask = (Rec(1) << shift) - 1;
            for (int64_t i = b; i < e; ++i) {
                const Rec x = rec[i];
                int32_t& slot = buf[x >> shift];
                if (slot != 0) first_error();
                slot = int32_t(int64_t(x & mask) - vmax);
            }
        };
        if (rec32_) put(rec32_.get());
        else put(rec64_.get());
    }
    Coeffs c;
    for (int p = 0; p < g_.planes; ++p) c.plane[p] = buf + offset_[p];
    c.block_stride = bstride_;
    return c;
}

void StripeScatter::first_error() const {
    // Rare path: rerun the plain validator, which reports the first bad
    // triple in list order, with the exact message.
    std::vector<int32_t> storage;
    Coeffs c;
    size_t total = 0, off[3] = {0, 0, 0};
    for (int p = 0; p < g_.planes; ++p) {
        off[p] = total;
        total += size_t(g_.plane_blocks(p) * g_.bb());
    }
    storage.assign(total, 0);
    for (int p = 0; p < g_.planes; ++p) c.plane[p] = storage.data() + off[p];
    list_to_planes(channel_, position_, value_, n_, g_, vmax_, c);
    fail("internal error: the stripe scatter found an error the list validator did not");
}

}  // namespace dcts
