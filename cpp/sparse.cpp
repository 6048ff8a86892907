#include "sparse.hpp"

#include <algorithm>
#include <cstdlib>

#include "kernels.hpp"
#include "zigzag.hpp"

namespace dcts {

std::vector<int32_t> channel_sequence(NamedOrder order, int planes, int block) {
    require(planes == 1 || planes == 3, "number of planes must be 1 or 3");
    require(block >= kMinBlock && block <= kMaxBlock,
            "block_size must be in [2, 64], got " + std::to_string(block));
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
    require(n == channels, "order must list all " + std::to_string(channels) +
                               " channels, got " + std::to_string(n));
    std::vector<char> seen(size_t(channels), 0);
    for (int64_t i = 0; i < n; ++i) {
        const int32_t c = seq[i];
        require(c >= 0 && c < channels, "order entry " + std::to_string(i) + " = " +
                                            std::to_string(c) + " is not a channel id in [0, " +
                                            std::to_string(channels) + ")");
        require(!seen[size_t(c)], "order is not a permutation: channel " + std::to_string(c) +
                                      " appears twice");
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

void check_planes(const std::vector<PlaneCoeffs>& coeffs, const Geometry& g) {
    require(coeffs.size() == size_t(g.planes), "wrong number of coefficient planes");
    for (int p = 0; p < g.planes; ++p)
        require(int64_t(coeffs[size_t(p)].size()) == g.plane_blocks(p) * g.bb(),
                "coefficient plane " + std::to_string(p) + " has the wrong size");
}

}  // namespace

SparseList planes_to_list(const std::vector<PlaneCoeffs>& coeffs, const Geometry& g,
                          const int32_t* seq) {
    check_planes(coeffs, g);
    const int bb = g.bb();
    const int64_t nch = g.channels();
    const std::vector<int32_t> zz = zigzag(g.block);
    std::vector<int32_t> inv(static_cast<size_t>(bb));  // natural index -> zigzag index
    for (int k = 0; k < bb; ++k) inv[size_t(zz[size_t(k)])] = k;

    // Pass 1: non-zeros per (plane, natural index); contiguous, so it vectorises.
    std::vector<int64_t> count(size_t(nch), 0);
    std::vector<int64_t> nat_count(static_cast<size_t>(bb));
    for (int p = 0; p < g.planes; ++p) {
        std::fill(nat_count.begin(), nat_count.end(), 0);
        const int32_t* c = coeffs[size_t(p)].data();
        const int64_t n = g.plane_blocks(p);
        for (int64_t i = 0; i < n; ++i, c += bb)
            for (int k = 0; k < bb; ++k) nat_count[size_t(k)] += c[k] != 0;
        for (int k = 0; k < bb; ++k) count[size_t(p * bb + inv[size_t(k)])] = nat_count[size_t(k)];
    }
    // Start offset of each channel in the list, in the sequence's order.
    std::vector<int64_t> cursor(size_t(nch), 0);
    int64_t total = 0;
    for (int64_t j = 0; j < nch; ++j) {
        cursor[size_t(seq[j])] = total;
        total += count[size_t(seq[j])];
    }
    SparseList out;
    out.channel.resize(size_t(total));
    out.position.resize(size_t(total));
    out.value.resize(size_t(total));
    for (int64_t ch = 0; ch < nch; ++ch)
        std::fill_n(out.channel.begin() + cursor[size_t(ch)], count[size_t(ch)], int32_t(ch));

    // Pass 2: visit blocks in raster order (so positions ascend within each
    // channel) and only their non-zeros, found with a bit mask.
    const Kernels& kern = kernels();
    int32_t* position = out.position.data();
    int32_t* value = out.value.data();
    for (int p = 0; p < g.planes; ++p) {
        const int32_t* c = coeffs[size_t(p)].data();
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

std::vector<PlaneCoeffs> list_to_planes(const int32_t* channel, const int32_t* position,
                                        const int32_t* value, int64_t n, const Geometry& g,
                                        int32_t vmax) {
    const int bb = g.bb();
    const int64_t nch = g.channels(), npos = g.positions();
    const std::vector<int32_t> zz = zigzag(g.block);
    std::vector<PlaneCoeffs> coeffs(size_t(g.planes));
    for (int p = 0; p < g.planes; ++p) coeffs[size_t(p)].assign(size_t(g.plane_blocks(p) * bb), 0);
    for (int64_t t = 0; t < n; ++t) {
        const int32_t ch = channel[t], pos = position[t], v = value[t];
        // Messages are built only on failure: this loop runs once per triple.
        auto at = [t] { return "triple " + std::to_string(t); };
        if (ch < 0 || ch >= nch)
            fail(at() + ": channel " + std::to_string(ch) + " is out of range [0, " +
                 std::to_string(nch) + ")");
        if (pos < 0 || pos >= npos)
            fail(at() + ": position " + std::to_string(pos) + " is out of range [0, " +
                 std::to_string(npos) + ")");
        if (v == 0 || std::abs(int64_t(v)) > vmax)
            fail(at() + ": value " + std::to_string(v) + " is not a non-zero integer in [-" +
                 std::to_string(vmax) + ", " + std::to_string(vmax) + "]");
        const int p = ch / bb, k = ch % bb;
        int64_t r = pos / g.wb, c = pos % g.wb;
        if (g.subsampled(p)) {
            if ((r | c) & 1)
                fail(at() + ": chroma channel " + std::to_string(ch) + " at position " +
                     std::to_string(pos) + " (block row " + std::to_string(r) + ", column " +
                     std::to_string(c) + ") is not on the 4:2:0 chroma grid (even rows and columns)");
            r /= 2;
            c /= 2;
        }
        int32_t& slot = coeffs[size_t(p)][size_t((r * g.plane_wb(p) + c) * bb + zz[size_t(k)])];
        if (slot != 0)
            fail(at() + ": (channel " + std::to_string(ch) + ", position " + std::to_string(pos) +
                 ") appears twice");
        slot = v;
    }
    return coeffs;
}

void planes_to_dense(const std::vector<PlaneCoeffs>& coeffs, const Geometry& g, int32_t* dense) {
    check_planes(coeffs, g);
    const int bb = g.bb();
    const int64_t nch = g.channels();
    const std::vector<int32_t> zz = zigzag(g.block);
    std::fill(dense, dense + g.positions() * nch, 0);
    for (int p = 0; p < g.planes; ++p) {
        const int32_t* c = coeffs[size_t(p)].data();
        const int64_t n = g.plane_blocks(p);
        for (int64_t i = 0; i < n; ++i, c += bb) {
            int32_t* out = dense + block_position(g, p, i) * nch + int64_t(p) * bb;
            for (int k = 0; k < bb; ++k) out[k] = c[zz[size_t(k)]];
        }
    }
}

std::vector<PlaneCoeffs> dense_to_planes(const int32_t* dense, const Geometry& g, int32_t vmax) {
    const int bb = g.bb();
    const int64_t nch = g.channels();
    const std::vector<int32_t> zz = zigzag(g.block);
    std::vector<PlaneCoeffs> coeffs(size_t(g.planes));
    for (int p = 0; p < g.planes; ++p) coeffs[size_t(p)].assign(size_t(g.plane_blocks(p) * bb), 0);
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
            int32_t* dst = coeffs[size_t(p)].data() + i * bb;
            for (int k = 0; k < bb; ++k) dst[zz[size_t(k)]] = v[k];
        }
    }
    return coeffs;
}

}  // namespace dcts
