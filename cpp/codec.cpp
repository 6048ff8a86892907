#include "codec.hpp"

#include <algorithm>
#include <vector>

#include "color.hpp"
#include "kernels.hpp"
#include "quant.hpp"
#include "sparse.hpp"
#include "workspace.hpp"
#include "zigzag.hpp"

namespace dcts {
namespace {

void check_params(const Geometry& g, const CodecParams& prm) {
    require(prm.block == g.block, "block size does not match the geometry");
    require(prm.quality >= 1 && prm.quality <= 100, [&] {
        return "quality must be in [1, 100], got " + std::to_string(prm.quality);
    });
    require(prm.clip >= 0, [&] {
        return "clip must be positive (or 0 for none), got " + std::to_string(prm.clip);
    });
}

// Float buffers for one stripe: luma rows at full width, chroma rows at the
// chroma plane's width.
struct Stripe {
    int64_t rows;          // pixel rows of luma per stripe
    int64_t chroma_rows;   // rows of the chroma planes per stripe
    std::vector<float> y, cb, cr;
    Stripe(const Geometry& g) {
        rows = g.sub420 ? 2 * g.block : g.block;
        chroma_rows = g.sub420 ? rows / 2 : rows;
        y.resize(size_t(rows * g.wp));
        if (g.planes == 3) {
            cb.resize(size_t(chroma_rows * g.plane_w(1)));
            cr.resize(cb.size());
        }
    }
};

// Runs the colour stage stripe by stripe and calls
// f(plane, index of the row's first block in the plane, blocks in the row,
//   top-left sample, row stride, tables)
// for every block row, in raster order within each plane.
template <typename F>
void for_each_block_row(const uint8_t* image, const Geometry& g, const CodecParams& prm, F&& f) {
    check_params(g, prm);
    const int B = g.block;
    const int64_t wp = g.wp, cw = g.plane_w(g.planes - 1);
    const auto luma = block_plan(prm.quality, B, false, prm.clip);
    const auto chroma = block_plan(prm.quality, B, true, prm.clip);
    const BlockTables lt = luma->tables(), ctab = chroma->tables();
    Stripe st(g);

    const int64_t stripes = g.hp / st.rows;
    const int64_t luma_block_rows = st.rows / B;
    for (int64_t s = 0; s < stripes; ++s) {
        const int64_t y0 = s * st.rows;
        if (g.planes == 3 && g.sub420) {  // two pixel rows make one chroma row
            for (int64_t r = 0; r < st.rows; r += 2)
                image_rows_to_planes420(image, g, y0 + r, st.y.data() + r * wp,
                                        st.y.data() + (r + 1) * wp, st.cb.data() + (r / 2) * cw,
                                        st.cr.data() + (r / 2) * cw);
        } else {
            for (int64_t r = 0; r < st.rows; ++r)
                image_row_to_planes(image, g, y0 + r, st.y.data() + r * wp,
                                    g.planes == 3 ? st.cb.data() + r * cw : nullptr,
                                    g.planes == 3 ? st.cr.data() + r * cw : nullptr);
        }
        for (int64_t br = 0; br < luma_block_rows; ++br) {
            const float* src = st.y.data() + br * B * wp;
            f(0, (s * luma_block_rows + br) * g.wb, g.wb, src, wp, lt);
        }
        for (int p = 1; p < g.planes; ++p) {
            // One chroma block row per stripe in both subsamplings.
            const float* src = (p == 1 ? st.cb : st.cr).data();
            const int64_t cwb = g.plane_wb(p);
            f(p, s * cwb, cwb, src, cw, ctab);
        }
    }
}

}  // namespace

void encode_records(const uint8_t* image, const Geometry& g, const CodecParams& prm,
                    BlockRecords& out) {
    const Kernels& k = kernels();
    const int bb = g.bb();
    std::vector<float> scratch(block_scratch_floats(g.block));
    std::vector<int32_t> qbuf(static_cast<size_t>(bb));
    out.reset(g);
    for_each_block_row(image, g, prm, [&](int p, int64_t first, int64_t nblocks, const float* src,
                                      int64_t stride, const BlockTables& t) {
        uint32_t* rec = out.reserve(p, nblocks * bb);
        out.commit_records(p, k.fdct_quant_extract(src, stride, nblocks, t, rec,
                                                   out.block_counts(p, first), qbuf.data(),
                                                   scratch.data()));
    });
}

StripeDecoder::StripeDecoder(const Geometry& g_, const CodecParams& prm, int64_t tile_wb_)
    : g(g_),
      luma(block_plan(prm.quality, g_.block, false, prm.clip)),
      chroma(block_plan(prm.quality, g_.block, true, prm.clip)),
      scratch(luma->scratch_size()),
      rows(g_.sub420 ? 2 * g_.block : g_.block),
      tile_wb(tile_wb_) {
    check_params(g, prm);
    require(tile_wb >= 1 && tile_wb <= g.wb && (!g.sub420 || tile_wb % 2 == 0),
            "StripeDecoder: bad tile width");
    y.resize(size_t(rows * tile_wb * g.block));
    if (g.planes == 3) {
        const int64_t cs = g.sub420 ? tile_wb * g.block / 2 : tile_wb * g.block;
        cb.resize(size_t((g.sub420 ? rows / 2 : rows) * cs));
        cr.resize(cb.size());
    }
}

void StripeDecoder::operator()(int64_t s, int64_t col0, int64_t blocks, const Coeffs& c,
                               uint8_t* image, bool rezero) {
    const Kernels& k = kernels();
    const int B = g.block;
    const int64_t bs = c.block_stride ? c.block_stride : g.bb();
    // Float rows of the tile: luma, and chroma (half as wide under 4:2:0).
    const int64_t ys = tile_wb * B, cs = g.sub420 ? ys / 2 : ys;
    const int64_t cblocks = g.sub420 ? blocks / 2 : blocks;
    const BlockTables lt = luma->tables(), ctab = chroma->tables();
    const int64_t luma_block_rows = rows / B;
    int32_t* src = c.plane[0];
    for (int64_t br = 0; br < luma_block_rows; ++br, src += tile_wb * bs) {
        k.dequant_idct(src, blocks, bs, lt, y.data() + br * B * ys, ys, scratch.data());
        if (rezero) std::fill(src, src + blocks * bs, 0);
    }
    for (int p = 1; p < g.planes; ++p) {  // one chroma block row per stripe
        int32_t* csrc = c.plane[p];
        k.dequant_idct(csrc, cblocks, bs, ctab, (p == 1 ? cb : cr).data(), cs, scratch.data());
        if (rezero) std::fill(csrc, csrc + cblocks * bs, 0);
    }
    const int64_t y0 = s * rows, x0 = col0 * B;
    const int64_t nx = std::min(blocks * B, g.width - x0);
    if (nx <= 0) return;  // a tile of padding only
    const float* const planes[3] = {y.data(), cb.data(), cr.data()};
    planes_to_image_tile(planes, ys, cs, g, y0, std::min(rows, g.height - y0), x0, nx, image);
}

SparseList encode(const uint8_t* image, const Geometry& g, const CodecParams& prm,
                  const int32_t* seq) {
    BlockRecords& rec = block_records();
    RecordsGuard guard{rec};
    encode_records(image, g, prm, rec);
    return records_to_list(rec, g, seq);
}

void decode(const int32_t* channel, const int32_t* position, const int32_t* value, int64_t n,
            const Geometry& g, const CodecParams& prm, uint8_t* image) {
    check_params(g, prm);  // a bad parameter is reported before a bad list
    StripeScatter sc(channel, position, value, n, g, max_abs_value(g.block, prm.clip));
    StripeDecoder dec(g, prm, sc.tile_blocks());
    for_each_tile(sc, [&](int64_t s, int64_t t, const Coeffs& c) {
        const auto [col0, blocks] = sc.tile_span(t);
        dec(s, col0, blocks, c, image, true);
    });
}

}  // namespace dcts
