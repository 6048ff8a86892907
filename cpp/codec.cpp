#include "codec.hpp"

#include <vector>

#include "color.hpp"
#include "kernels.hpp"
#include "quant.hpp"

namespace dcts {
namespace {

void check_params(const Geometry& g, const CodecParams& prm) {
    require(prm.block == g.block, "block size does not match the geometry");
    require(prm.quality >= 1 && prm.quality <= 100,
            "quality must be in [1, 100], got " + std::to_string(prm.quality));
    require(prm.clip >= 0, "clip must be positive (or 0 for none), got " + std::to_string(prm.clip));
}

// Float buffers for one stripe: luma rows at full width, chroma rows at the
// chroma plane's width, plus the two full-resolution chroma rows 4:2:0 averages.
struct Stripe {
    int64_t rows;          // pixel rows of luma per stripe
    int64_t chroma_rows;   // rows of the chroma planes per stripe
    std::vector<float> y, cb, cr, cb_full, cr_full;
    Stripe(const Geometry& g) {
        rows = g.sub420 ? 2 * g.block : g.block;
        chroma_rows = g.sub420 ? rows / 2 : rows;
        y.resize(size_t(rows * g.wp));
        if (g.planes == 3) {
            cb.resize(size_t(chroma_rows * g.plane_w(1)));
            cr.resize(cb.size());
            if (g.sub420) {
                cb_full.resize(size_t(2 * g.wp));
                cr_full.resize(size_t(2 * g.wp));
            }
        }
    }
};

}  // namespace

std::vector<PlaneCoeffs> encode_planes(const uint8_t* image, const Geometry& g,
                                       const CodecParams& prm) {
    check_params(g, prm);
    const Kernels& k = kernels();
    const int B = g.block, bb = g.bb();
    const int64_t wp = g.wp, cw = g.plane_w(g.planes - 1);
    const BlockPlan luma(prm.quality, B, false, prm.clip), chroma(prm.quality, B, true, prm.clip);
    const BlockTables lt = luma.tables(), ctab = chroma.tables();
    std::vector<float> scratch(luma.scratch_size());
    Stripe st(g);

    std::vector<PlaneCoeffs> coeffs(size_t(g.planes));
    for (int p = 0; p < g.planes; ++p) coeffs[size_t(p)].resize(size_t(g.plane_blocks(p) * bb));

    const int64_t stripes = g.hp / st.rows;
    const int64_t luma_block_rows = st.rows / B;
    for (int64_t s = 0; s < stripes; ++s) {
        const int64_t y0 = s * st.rows;
        for (int64_t r = 0; r < st.rows; ++r) {
            float* Y = st.y.data() + r * wp;
            if (g.planes == 1) {
                image_row_to_planes(image, g, y0 + r, Y, nullptr, nullptr);
            } else if (g.sub420) {
                float* cbf = st.cb_full.data() + (r & 1) * wp;
                float* crf = st.cr_full.data() + (r & 1) * wp;
                image_row_to_planes(image, g, y0 + r, Y, cbf, crf);
                if (r & 1) {
                    k.downsample2x2(st.cb_full.data(), st.cb_full.data() + wp, cw,
                                    st.cb.data() + (r / 2) * cw);
                    k.downsample2x2(st.cr_full.data(), st.cr_full.data() + wp, cw,
                                    st.cr.data() + (r / 2) * cw);
                }
            } else {
                image_row_to_planes(image, g, y0 + r, Y, st.cb.data() + r * cw,
                                    st.cr.data() + r * cw);
            }
        }
        for (int64_t br = 0; br < luma_block_rows; ++br) {
            int32_t* dst = coeffs[0].data() + ((s * luma_block_rows + br) * g.wb) * bb;
            const float* src = st.y.data() + br * B * wp;
            for (int64_t bj = 0; bj < g.wb; ++bj, dst += bb)
                k.fdct_quant(src + bj * B, wp, lt, dst, scratch.data());
        }
        for (int p = 1; p < g.planes; ++p) {
            // One chroma block row per stripe in both subsamplings.
            const float* src = (p == 1 ? st.cb : st.cr).data();
            const int64_t cwb = g.plane_wb(p);
            int32_t* dst = coeffs[size_t(p)].data() + s * cwb * bb;
            for (int64_t bj = 0; bj < cwb; ++bj, dst += bb)
                k.fdct_quant(src + bj * B, cw, ctab, dst, scratch.data());
        }
    }
    return coeffs;
}

void decode_planes(const std::vector<PlaneCoeffs>& coeffs, const Geometry& g,
                   const CodecParams& prm, uint8_t* image) {
    check_params(g, prm);
    require(coeffs.size() == size_t(g.planes), "wrong number of coefficient planes");
    for (int p = 0; p < g.planes; ++p)
        require(int64_t(coeffs[size_t(p)].size()) == g.plane_blocks(p) * g.bb(),
                "coefficient plane " + std::to_string(p) + " has the wrong size");
    const Kernels& k = kernels();
    const int B = g.block, bb = g.bb();
    const int64_t wp = g.wp, cw = g.plane_w(g.planes - 1);
    const BlockPlan luma(prm.quality, B, false, prm.clip), chroma(prm.quality, B, true, prm.clip);
    const BlockTables lt = luma.tables(), ctab = chroma.tables();
    std::vector<float> scratch(luma.scratch_size());
    Stripe st(g);
    const int shift = g.sub420 ? 1 : 0;

    const int64_t luma_block_rows = st.rows / B;
    for (int64_t y0 = 0, s = 0; y0 < g.height; y0 += st.rows, ++s) {
        for (int64_t br = 0; br < luma_block_rows; ++br) {
            const int32_t* src = coeffs[0].data() + ((s * luma_block_rows + br) * g.wb) * bb;
            float* dst = st.y.data() + br * B * wp;
            for (int64_t bj = 0; bj < g.wb; ++bj, src += bb)
                k.dequant_idct(src, lt, dst + bj * B, wp, scratch.data());
        }
        for (int p = 1; p < g.planes; ++p) {
            const int64_t cwb = g.plane_wb(p);
            const int32_t* src = coeffs[size_t(p)].data() + s * cwb * bb;
            float* dst = (p == 1 ? st.cb : st.cr).data();
            for (int64_t bj = 0; bj < cwb; ++bj, src += bb)
                k.dequant_idct(src, ctab, dst + bj * B, cw, scratch.data());
        }
        for (int64_t r = 0; r < st.rows && y0 + r < g.height; ++r) {
            const int64_t cr_row = (r >> shift) * cw;
            planes_to_image_row(st.y.data() + r * wp,
                                g.planes > 1 ? st.cb.data() + cr_row : nullptr,
                                g.planes > 1 ? st.cr.data() + cr_row : nullptr, g, y0 + r, image);
        }
    }
}

}  // namespace dcts
