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

StripeDecoder::StripeDecoder(const Geometry& g_, const CodecParams& prm)
    : g(g_),
      luma(block_plan(prm.quality, g_.block, false, prm.clip)),
      chroma(block_plan(prm.quality, g_.block, true, prm.clip)),
      scratch(luma->scratch_size()),
      rows(g_.sub420 ? 2 * g_.block : g_.block) {
    check_params(g, prm);
    y.resize(size_t(rows * g.wp));
    if (g.planes == 3) {
        cb.resize(size_t((g.sub420 ? rows / 2 : rows) * g.plane_w(1)));
        cr.resize(cb.size());
    }
}

void StripeDecoder::operator()(int64_t s, const Coeffs& c, uint8_t* image, bool rezero) {
    const Kernels& k = kernels();
    const int B = g.block;
    const int64_t bs = c.block_stride ? c.block_stride : g.bb();
    const int64_t wp = g.wp, cw = g.plane_w(g.planes - 1);
    const BlockTables lt = luma->tables(), ctab = chroma->tables();
    const int64_t luma_block_rows = rows / B;
    int32_t* src = c.plane[0];
    for (int64_t br = 0; br < luma_block_rows; ++br, src += g.wb * bs) {
        k.dequant_idct(src, g.wb, bs, lt, y.data() + br * B * wp, wp, scratch.data());
        if (rezero) std::fill(src, src + g.wb * bs, 0);
    }
    for (int p = 1; p < g.planes; ++p) {  // one chroma block row per stripe
        int32_t* csrc = c.plane[p];
        const int64_t n = g.plane_wb(p);
        k.dequant_idct(csrc, n, bs, ctab, (p == 1 ? cb : cr).data(), cw, scratch.data());
        if (rezero) std::fill(csrc, csrc + n * bs, 0);
    }
    const int64_t y0 = s * rows;
    const float* const planes[3] = {y.data(), cb.data(), cr.data()};
    planes_to_image_rows(planes, g, y0, std::min(rows, g.height - y0), image);
}

void decode_planes(const Coeffs& coeffs, const Geometry& g, const CodecParams& prm,
                   uint8_t* image, bool rezero) {
    StripeDecoder dec(g, prm);
    const int64_t stripes = g.hp / dec.rows, luma_blocks = (dec.rows / g.block) * g.wb;
    for (int64_t s = 0; s < stripes; ++s) {
        Coeffs c;
        c.plane[0] = coeffs.plane[0] + s * luma_blocks * g.bb();
        for (int p = 1; p < g.planes; ++p) c.plane[p] = coeffs.plane[p] + s * g.plane_wb(p) * g.bb();
        dec(s, c, image, rezero);
    }
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
    StripeDecoder dec(g, prm);
    const int32_t vmax = max_abs_value(g.block, prm.clip);
    if (StripeScatter::fits(g)) {
        for_each_stripe(channel, position, value, n, g, vmax,
                        [&](int64_t s, const Coeffs& c) { dec(s, c, image, true); });
        return;
    }
    CoeffStore& store = decode_store();  // very wide images: whole-image scatter
    StoreGuard guard{store};
    decode_planes(scatter_to_store(channel, position, value, n, g, vmax, store), g, prm, image,
                  true);
}

}  // namespace dcts
