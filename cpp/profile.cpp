#include "profile.hpp"

#include <chrono>

#include "color.hpp"
#include "kernels.hpp"
#include "quant.hpp"
#include "sparse.hpp"
#include "workspace.hpp"
#include "zigzag.hpp"

namespace dcts {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<std::vector<float>> alloc_planes(const Geometry& g) {
    std::vector<std::vector<float>> planes(size_t(g.planes));
    for (int p = 0; p < g.planes; ++p) planes[size_t(p)].resize(size_t(g.plane_h(p) * g.plane_w(p)));
    return planes;
}

}  // namespace

StageTimes profile_encode(const uint8_t* image, const Geometry& g, const CodecParams& prm,
                          const int32_t* seq) {
    const Kernels& k = kernels();
    auto planes = alloc_planes(g);
    float* ptrs[3] = {nullptr, nullptr, nullptr};
    for (int p = 0; p < g.planes; ++p) ptrs[p] = planes[size_t(p)].data();
    StageTimes out;

    auto t0 = Clock::now();
    image_to_planes(image, g, ptrs);
    out.emplace_back("color+downsample", since(t0));

    t0 = Clock::now();
    BlockRecords& rec = block_records();
    RecordsGuard rguard{rec};
    rec.reset(g);
    std::vector<int32_t> qbuf(size_t(g.bb()));
    for (int p = 0; p < g.planes; ++p) {
        const BlockPlan plan(prm.quality, g.block, p > 0, prm.clip);
        const BlockTables t = plan.tables();
        std::vector<float> scratch(plan.scratch_size());
        const int64_t pw = g.plane_w(p), B = g.block;
        const int64_t wb = g.plane_wb(p);
        for (int64_t bi = 0; bi < g.plane_hb(p); ++bi) {
            uint32_t* r = rec.reserve(p, wb * g.bb());
            rec.commit_records(p, k.fdct_quant_extract(ptrs[p] + bi * B * pw, pw, wb, t, r,
                                                       rec.block_counts(p, bi * wb), qbuf.data(),
                                                       scratch.data()));
        }
    }
    out.emplace_back("dct+quantize+extract", since(t0));

    t0 = Clock::now();
    SparseList list = records_to_list(rec, g, seq);
    out.emplace_back("list (counting sort)", since(t0));
    return out;
}

StageTimes profile_decode(const int32_t* channel, const int32_t* position, const int32_t* value,
                          int64_t n, const Geometry& g, const CodecParams& prm, uint8_t* image) {
    // The decoder's own path (StripeScatter + StripeDecoder, as decode()
    // runs them), timed piecewise.
    StageTimes out;
    auto t0 = Clock::now();
    StripeScatter sc(channel, position, value, n, g, max_abs_value(g.block, prm.clip));
    out.emplace_back("validate+split by stripe", since(t0));
    StripeDecoder dec(g, prm, sc.tile_blocks());
    double scatter = 0, decode = 0;
    for (int64_t s = 0; s < sc.stripes(); ++s)
        for (int64_t t = 0; t < sc.tiles(); ++t) {
            t0 = Clock::now();
            const Coeffs c = sc.scatter(s, t);
            scatter += since(t0);
            t0 = Clock::now();
            const auto [col0, blocks] = sc.tile_span(t);
            dec(s, col0, blocks, c, image, true);  // re-zeroes the tile buffer for the next scatter
            decode += since(t0);
        }
    out.emplace_back("scatter", scatter);
    out.emplace_back("dequantize+idct+upsample+color", decode);
    return out;
}

}  // namespace dcts
