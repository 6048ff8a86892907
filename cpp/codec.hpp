// The whole pipeline, composed from the stages: image -> planes -> quantised
// block coefficients -> coordinate list, and back. Both directions work in
// stripes of block rows (2B pixel rows under 4:2:0, B otherwise), so the
// float planes never exist at full size: colour conversion, DCT and
// quantisation of a stripe run while it is in cache. The decoder also cuts
// stripes into column tiles, so its buffers stay bounded however wide the
// image is (the encoder's input already is the size of the image).
#pragma once
#include <cstdint>
#include <vector>

#include "common.hpp"
#include "quant.hpp"
#include "workspace.hpp"

namespace dcts {

struct CodecParams {
    int block = 8;
    int quality = 75;
    bool sub420 = true;
    int32_t clip = 0;  // 0: no clipping
};

// uint8 (h, w, planes) -> each block's quantised non-zeros (sections 2-4),
// as records taken while the block is in cache.
void encode_records(const uint8_t* image, const Geometry& g, const CodecParams& prm,
                    BlockRecords& out);
// Decodes one stripe (2B pixel rows under 4:2:0, B otherwise) a column tile
// at a time, from the tile's coefficients as StripeScatter lays them out:
// c.plane[0] holds the tile's luma block rows (tile_wb * c.block_stride
// entries apart), c.plane[1..2] its chroma block row; writes the tile's
// pixels of the image. `rezero`: zero each block once read (the scatter
// buffer must be all zero for the next tile). Buffers: one tile's floats.
struct StripeDecoder {
    const Geometry& g;
    std::shared_ptr<const BlockPlan> luma, chroma;
    std::vector<float> scratch, y, cb, cr;
    int64_t rows;     // pixel rows per stripe
    int64_t tile_wb;  // luma block columns per tile (StripeScatter::tile_blocks)
    StripeDecoder(const Geometry& g, const CodecParams& prm, int64_t tile_wb);
    // The tile of `blocks` luma block columns from column `col0` of stripe s.
    void operator()(int64_t stripe, int64_t col0, int64_t blocks, const Coeffs& c,
                    uint8_t* image, bool rezero);
};

// The whole encoder (on this thread's block records) and decoder.
SparseList encode(const uint8_t* image, const Geometry& g, const CodecParams& prm,
                  const int32_t* seq);
void decode(const int32_t* channel, const int32_t* position, const int32_t* value, int64_t n,
            const Geometry& g, const CodecParams& prm, uint8_t* image);

}  // namespace dcts
