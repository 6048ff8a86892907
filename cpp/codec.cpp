#include "codec.hpp"

#include <vector>

#include "color.hpp"
#include "dct.hpp"
#include "quant.hpp"

namespace dcts {
namespace {

void check_params(const Geometry& g, const CodecParams& prm) {
    require(prm.block == g.block, "block size does not match the geometry");
    require(prm.quality >= 1 && prm.quality <= 100,
            "quality must be in [1, 100], got " + std::to_string(prm.quality));
    require(prm.clip >= 0, "clip must be positive (or 0 for none), got " + std::to_string(prm.clip));
}

std::vector<std::vector<float>> alloc_planes(const Geometry& g) {
    std::vector<std::vector<float>> planes(size_t(g.planes));
    for (int p = 0; p < g.planes; ++p) planes[size_t(p)].resize(size_t(g.plane_h(p) * g.plane_w(p)));
    return planes;
}

}  // namespace

std::vector<PlaneCoeffs> encode_planes(const uint8_t* image, const Geometry& g,
                                       const CodecParams& prm) {
    check_params(g, prm);
    auto planes = alloc_planes(g);
    float* ptrs[3] = {planes[0].data(), g.planes > 1 ? planes[1].data() : nullptr,
                      g.planes > 1 ? planes[2].data() : nullptr};
    image_to_planes(image, g, ptrs);

    const int B = g.block, bb = g.bb();
    const DctTable table(B);
    const size_t nbb = static_cast<size_t>(bb);
    std::vector<float> blk(nbb), out(nbb), tmp(nbb);
    std::vector<PlaneCoeffs> coeffs(size_t(g.planes));
    for (int p = 0; p < g.planes; ++p) {
        const QuantPlan plan(prm.quality, B, p > 0, prm.clip);
        const int64_t pw = g.plane_w(p), hb = g.plane_hb(p), wb = g.plane_wb(p);
        coeffs[size_t(p)].resize(size_t(hb * wb * bb));
        int32_t* dst = coeffs[size_t(p)].data();
        for (int64_t bi = 0; bi < hb; ++bi) {
            for (int64_t bj = 0; bj < wb; ++bj, dst += bb) {
                const float* src = planes[size_t(p)].data() + bi * B * pw + bj * B;
                for (int y = 0; y < B; ++y)
                    for (int x = 0; x < B; ++x) blk[size_t(y * B + x)] = src[y * pw + x] - 128.0f;
                fdct_block(table, blk.data(), out.data(), tmp.data());
                quantize_block(plan, out.data(), dst);
            }
        }
    }
    return coeffs;
}

void decode_planes(const std::vector<PlaneCoeffs>& coeffs, const Geometry& g,
                   const CodecParams& prm, uint8_t* image) {
    check_params(g, prm);
    require(coeffs.size() == size_t(g.planes), "wrong number of coefficient planes");
    auto planes = alloc_planes(g);
    const int B = g.block, bb = g.bb();
    const DctTable table(B);
    const size_t nbb = static_cast<size_t>(bb);
    std::vector<float> blk(nbb), out(nbb), tmp(nbb);
    for (int p = 0; p < g.planes; ++p) {
        const QuantPlan plan(prm.quality, B, p > 0, prm.clip);
        const int64_t pw = g.plane_w(p), hb = g.plane_hb(p), wb = g.plane_wb(p);
        require(int64_t(coeffs[size_t(p)].size()) == hb * wb * bb,
                "coefficient plane " + std::to_string(p) + " has the wrong size");
        const int32_t* src = coeffs[size_t(p)].data();
        for (int64_t bi = 0; bi < hb; ++bi) {
            for (int64_t bj = 0; bj < wb; ++bj, src += bb) {
                dequantize_block(plan, src, blk.data());
                idct_block(table, blk.data(), out.data(), tmp.data());
                float* dst = planes[size_t(p)].data() + bi * B * pw + bj * B;
                for (int y = 0; y < B; ++y)
                    for (int x = 0; x < B; ++x) dst[y * pw + x] = out[size_t(y * B + x)] + 128.0f;
            }
        }
    }
    const float* ptrs[3] = {planes[0].data(), g.planes > 1 ? planes[1].data() : nullptr,
                            g.planes > 1 ? planes[2].data() : nullptr};
    planes_to_image(ptrs, g, image);
}

}  // namespace dcts
