// The hot loops of every stage, as a table of function pointers filled once
// per process for the best instruction set the CPU has (or the one forced by
// DCTSPARSE_SIMD=scalar|avx2|avx512). The kernels are written once, in the
// *_kernels.inl files, and compiled once per instruction set (isa_*.cpp);
// floating-point contraction is off everywhere, so every level computes the
// same operations in the same order and the outputs are bit-identical.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dcts {

// Constants of the block transform + quantiser for one (B, luma/chroma) pair.
// The forward transform leaves blocks transposed (index v*B + u holds
// D[u][v]), so the encoder's quantiser and zigzag take transposed tables.
struct BlockTables {
    int block = 0;
    const float* c = nullptr;      // c[u*B + x]: DCT matrix
    const float* q = nullptr;      // Q, natural (row-major) order
    const float* qt = nullptr;     // Q transposed: qt[v*B + u] = q[u*B + v]; at B = 8
                                   // times the scale of the encoder's transform
                                   // (fdct8_aan_pass), rounded to float
    const float* rqt = nullptr;    // 1 / qt, rounded to float (see quant_extract8)
    const uint32_t* zz_t = nullptr;  // zigzag index of transposed index v*B + u, << 16 (a record's high half)
    int32_t clip = 0;              // 0: no clipping
};

// Floats of scratch every block kernel may use, for block size B.
inline size_t block_scratch_floats(int block) { return size_t(4 * block * block + 2 * block); }

// The stages simd_info() reports, in the order of Kernels::stages.
enum Stage { kStageColor, kStageDownsample, kStageDct, kStageQuantize, kStageSparsify,
             kStageIdct, kStageUpsampleColor, kNumStages };
inline const char* const* stage_names() {
    static const char* const names[kNumStages] = {
        "color", "downsample", "dct", "quantize", "sparsify", "dequantize+idct", "upsample+color"};
    return names;
}

struct Kernels {
    const char* name;
    // Per stage (stage_names() order): which code runs it at this level,
    // e.g. "avx2" where the avx512 level runs hand-written AVX2 bodies.
    const char* stages[kNumStages];
    // Colour: n pixels of one row -> centred planes (Y - 128, Cb - 128, Cr - 128).
    void (*rgb_to_ycbcr)(const uint8_t* rgb, int64_t n, float* y, float* cb, float* cr);
    void (*grey_to_y)(const uint8_t* grey, int64_t n, float* y);
    // Two rows of 2n pixels -> two luma rows of 2n samples and n samples of
    // 4:2:0 Cb and Cr: the chroma of each 2x2 box's mean colour (centred).
    void (*rgb_to_ycbcr420)(const uint8_t* rgb0, const uint8_t* rgb1, int64_t n, float* y0,
                            float* y1, float* cb, float* cr);
    // Centred planes -> n pixels; `up` = 1 reads chroma at x >> 1 (2x replication).
    void (*ycbcr_to_rgb)(const float* y, const float* cb, const float* cr, int64_t n, int up,
                         uint8_t* rgb);
    // Two rows of n pixels sharing one row of 4:2:0 chroma (ycbcr_to_rgb with
    // up = 1 on each, chroma arithmetic shared).
    void (*ycbcr420_to_rgb2)(const float* y0, const float* y1, const float* cb, const float* cr,
                             int64_t n, uint8_t* rgb0, uint8_t* rgb1);
    void (*y_to_grey)(const float* y, int64_t n, uint8_t* grey);
    // `nblocks` B x B blocks side by side (block j at src + j*B) of a plane
    // with row stride `stride` (floats): DCT, round(D / Q) with clipping, and
    // each block's non-zeros appended to `records` (zigzag index << 16 |
    // uint16 value; room for nblocks*B*B), counts[j] = block j's number of
    // records; returns the total. A block row per call, so the per-block
    // work is not a chain of calls. qbuf: B*B ints; scratch: block_scratch_floats(B).
    // Samples must lie in [-128, 128] (level-shifted 8-bit colour): the SIMD
    // quantisers rely on |D| <= 128 B to know when a reciprocal multiply
    // rounds as the division would (QuantConsts in quant_kernels.inl).
    int64_t (*fdct_quant_extract)(const float* src, int64_t stride, int64_t nblocks,
                                  const BlockTables& t, uint32_t* records, uint16_t* counts,
                                  int32_t* qbuf, float* scratch);
    // `nblocks` blocks of natural-order quantised values (block j at
    // in + j*block_stride, block_stride >= B*B) -> dequantise, inverse DCT ->
    // side by side in a plane (block j at dst + j*B, rows `stride` floats
    // apart). A block row per call.
    void (*dequant_idct)(const int32_t* in, int64_t nblocks, int64_t block_stride,
                         const BlockTables& t, float* dst, int64_t stride, float* scratch);
    // Single stages, for tests against the reference (contiguous B x B blocks).
    void (*fdct)(const float* src, const BlockTables& t, float* out, float* scratch);
    void (*idct)(const float* src, const BlockTables& t, float* out, float* scratch);
    void (*quantize)(const float* coeffs, const BlockTables& t, int32_t* out);
    // Bit k set iff v[k] != 0, for n <= 64 values.
    uint64_t (*nonzero_mask)(const int32_t* v, int n);
};

// The active table (chosen on first use).
const Kernels& kernels();
// (stage, the code that runs it) of the active level, stage_names() order.
std::vector<std::pair<std::string, std::string>> simd_stages();
// Levels this build and CPU can run, best last (always starts with "scalar").
std::vector<std::string> available_simd_levels();
// Force a level for the whole process (tests, benchmarks); throws if unavailable.
void set_simd_level(const std::string& level);

}  // namespace dcts
