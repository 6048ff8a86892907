// IJG quantisation tables for any block size (SPEC section 4), and the
// per-plane constants the block kernels need.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "common.hpp"
#include "dct.hpp"
#include "kernels.hpp"

namespace dcts {

// (B*B) row-major table: base table resized by nearest neighbour, IJG scaling.
std::vector<int32_t> quant_matrix(int quality, int block, bool chroma);

// Everything one plane's block kernels need: the DCT tables and Q as floats.
struct BlockPlan {
    DctTable dct;
    std::vector<float> q, qt;    // natural order, transposed (at B = 8 scaled: BlockTables::qt)
    std::vector<float> rqt;      // 1 / qt
    std::vector<uint32_t> zz_t;  // zigzag index of each transposed index, << 16
    int32_t clip;                // 0: none
    BlockPlan(int quality, int block, bool chroma, int32_t clip);
    BlockTables tables() const {
        return {dct.block(), dct.c(), q.data(), qt.data(), rqt.data(), zz_t.data(), clip};
    }
    // Floats of scratch the block kernels need.
    size_t scratch_size() const { return block_scratch_floats(dct.block()); }
};

// The same plan, from a small per-thread cache of recent ones: building one
// (B*B cosines, tables) cost 130 us a plane at B = 64 and ~2 us at B = 8,
// paid per image before; repeated settings are the common case.
std::shared_ptr<const BlockPlan> block_plan(int quality, int block, bool chroma, int32_t clip);

}  // namespace dcts
