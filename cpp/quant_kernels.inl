// Quantisation kernels (SPEC section 4), compiled once per instruction set
// inside namespace dcts::DCTS_ISA_NS. The encoder quantises the forward
// transform's transposed output with transposed tables and emits zigzag
// indices by table lookup; the decoder reads natural (row-major) order.

// What runs the transforms and the quantiser at this level (Kernels::stages).
// The inverse transform's B = 8 box filing is AVX2 code at the avx512 level.
#if DCTS_AVX512_KERNELS
static constexpr const char* kFdctKernels = "avx512 (B = 8: two blocks a register)";
static constexpr const char* kQuantKernels = "avx512 (B = 8: two blocks a register, compress); avx2 at other B";
#elif defined(__AVX2__)
static constexpr const char* kFdctKernels = DCTS_ISA_NAME;
static constexpr const char* kQuantKernels = "avx2";
#else
static constexpr const char* kFdctKernels = DCTS_ISA_NAME;
static constexpr const char* kQuantKernels = DCTS_ISA_NAME;
#endif
static constexpr const char* kIdctKernels = DCTS_ISA_NAME;

// round(D / Q), half away from zero, clipped. Division rather than a
// reciprocal multiply so exact ties (D = (n + 1/2) Q) stay ties.
static void quantize_with(const float* __restrict coeffs, const float* __restrict q, int n,
                          int32_t clip, int32_t* __restrict out) {
    const int32_t lim = clip > 0 ? clip : 0x7fffffff;
    for (int k = 0; k < n; ++k) {
        int32_t v = round_away(coeffs[k] / q[k]);
        v = v > lim ? lim : v;
        v = v < -lim ? -lim : v;
        out[k] = v;
    }
}

static void quantize(const float* coeffs, const BlockTables& t, int32_t* out) {
    quantize_with(coeffs, t.q, t.block * t.block, t.clip, out);
}

static uint64_t nonzero_mask(const int32_t* __restrict v, int n);

// FB: the block size when fixed at compile time (the loops then unroll into
// straight vector code), 0 for any other; both perform the same operations.
template <int FB>
static inline void dequant_idct_sized(const int32_t* __restrict in, const BlockTables& t,
                                      float* dst, int64_t stride, float* scratch) {
    const int B = FB ? FB : t.block, n = B * B;
    // The bounding box of the non-zeros: rows [0, rows), columns [0, cols).
    int rows = 0;
    uint64_t colbits = 0;
    if (64 % B == 0) {  // B a power of two: whole rows per 64-entry mask
        for (int base = 0; base < n; base += 64) {
            uint64_t m = nonzero_mask(in + base, n - base < 64 ? n - base : 64);
            if (!m) continue;
            rows = ((base + 63 - __builtin_clzll(m)) >> __builtin_ctz(unsigned(B))) + 1;
            for (int sh = 32; sh >= B; sh >>= 1) m |= m >> sh;  // fold the rows together
            colbits |= m;
        }
        colbits &= B == 64 ? ~uint64_t(0) : (uint64_t(1) << B) - 1;
    } else {
        for (int u = 0; u < B; ++u) {
            const uint64_t bits = nonzero_mask(in + u * B, B);
            if (bits) {
                rows = u + 1;
                colbits |= bits;
            }
        }
    }
    int cols = colbits ? 64 - __builtin_clzll(colbits) : 0;
    // DC-only blocks (smooth areas, most chroma at usual qualities) are a
    // constant: c0 * (d00 * c0), the very products the full transform forms
    // for them (every other term adds an exact zero), so the shortcut is
    // bit-identical to the full path.
    if (rows <= 1 && cols <= 1) {
        const float c0 = t.c[0];
        const float v = c0 * ((static_cast<float>(in[0]) * t.q[0]) * c0);
        for (int x = 0; x < B; ++x)
            for (int y = 0; y < B; ++y) dst[x * stride + y] = v;
        return;
    }
    // Rows in (even, odd) pairs and columns rounded up to even, as the
    // transform's even/odd split takes them.
    rows += rows & (B % 2 == 0);
    cols += cols & (B % 2 == 0);
    float* __restrict d = scratch;                  // B*B
    for (int k = 0; k < rows * B; ++k) d[k] = static_cast<float>(in[k]) * t.q[k];
    if constexpr (FB != 0) idct_fixed<FB>(d, t.c, rows, cols, dst, stride);
    else idct_strided(d, t, rows, cols, dst, stride, scratch + n);
}

// Dequantise the first R rows of an 8x8 block and transform the R x K box.
template <int R, int K>
static inline void dequant_idct8_box(const int32_t* __restrict in, const BlockTables& t,
                                     float* dst, int64_t stride) {
    alignas(32) float d[R * 8];
    for (int k = 0; k < R * 8; ++k) d[k] = static_cast<float>(in[k]) * t.q[k];
    idct8_box<R, K>(d, t.c, dst, stride);
}

// Bit of coefficient (u, v) of an 8x8 block in box_class8's mask, and the
// mask of the box of rows and columns [0, n). The AVX2 body packs the rows to
// bytes in the order the 128-bit lanes of the packs leave them; the portable
// body uses nonzero_mask's natural order, bit 8u + v.
static constexpr int box_bit8(int u, int v) {
#if defined(__AVX2__)
    return 32 * (u / 4) + 16 * (v / 4) + 4 * (u % 4) + v % 4;
#else
    return 8 * u + v;
#endif
}
static constexpr uint64_t box_mask8(int n) {
    uint64_t m = 0;
    for (int u = 0; u < n; ++u)
        for (int v = 0; v < n; ++v) m |= uint64_t(1) << box_bit8(u, v);
    return m;
}

// The smallest of the boxes 1x1 (0), 2x2, 4x4, 6x6, 8x8 (4) holding every
// non-zero of a natural-order 8x8 block.
static inline int box_class8(const int32_t* __restrict blk) {
#if defined(__AVX2__)
    // Saturating packs keep a non-zero non-zero: int32 -> int16 -> int8.
    const __m256i* r = reinterpret_cast<const __m256i*>(blk);
    const __m256i p01 = _mm256_packs_epi32(_mm256_loadu_si256(r), _mm256_loadu_si256(r + 1));
    const __m256i p23 = _mm256_packs_epi32(_mm256_loadu_si256(r + 2), _mm256_loadu_si256(r + 3));
    const __m256i p45 = _mm256_packs_epi32(_mm256_loadu_si256(r + 4), _mm256_loadu_si256(r + 5));
    const __m256i p67 = _mm256_packs_epi32(_mm256_loadu_si256(r + 6), _mm256_loadu_si256(r + 7));
    const __m256i zero = _mm256_setzero_si256();
    const uint32_t lo = ~uint32_t(_mm256_movemask_epi8(
        _mm256_cmpeq_epi8(_mm256_packs_epi16(p01, p23), zero)));
    const uint32_t hi = ~uint32_t(_mm256_movemask_epi8(
        _mm256_cmpeq_epi8(_mm256_packs_epi16(p45, p67), zero)));
    const uint64_t m = uint64_t(hi) << 32 | lo;
#else
    const uint64_t m = nonzero_mask(blk, 64);
#endif
    return int((m & ~box_mask8(1)) != 0) + int((m & ~box_mask8(2)) != 0) +
           int((m & ~box_mask8(4)) != 0) + int((m & ~box_mask8(6)) != 0);
}

// A block row at B = 8. Which box holds a block's non-zeros (DC only, 2x2,
// 4x4, 6x6, the whole block) changes from block to block with no pattern a
// branch predictor could learn. Transforming each block over its own bounding
// box, with loop bounds set per block, measured slower than filing the
// blocks of a chunk of the row under their box in one branch-free pass and
// then running each box size as a loop with fixed bounds (B=8 decode/turbo
// 1.13x, docs/codec-performance.md). DC-only blocks are a constant, c0 * (d00 * c0):
// the products idct8_box forms for them.
static void dequant_idct_row8(const int32_t* in, int64_t nblocks, int64_t bs,
                              const BlockTables& t, float* dst, int64_t stride) {
    constexpr int kChunk = 256;
    uint16_t idx[5][kChunk];
    for (int64_t j0 = 0; j0 < nblocks; j0 += kChunk) {
        const int n = nblocks - j0 < kChunk ? int(nblocks - j0) : kChunk;
        const int32_t* in0 = in + j0 * bs;
        float* dst0 = dst + j0 * 8;
        int cnt[5] = {0, 0, 0, 0, 0};
        for (int j = 0; j < n; ++j) {
            const int box = box_class8(in0 + j * bs);
            for (int c = 0; c < 5; ++c) {  // write j to every list, advance its own
                idx[c][cnt[c]] = uint16_t(j);
                cnt[c] += int(c == box);
            }
        }
        const float c0 = t.c[0];
        for (int k = 0; k < cnt[0]; ++k) {
            const int j = idx[0][k];
            const float v = c0 * ((static_cast<float>(in0[j * bs]) * t.q[0]) * c0);
            float* o = dst0 + j * 8;
            for (int x = 0; x < 8; ++x)
                for (int y = 0; y < 8; ++y) o[x * stride + y] = v;
        }
        for (int k = 0; k < cnt[1]; ++k)
            dequant_idct8_box<2, 2>(in0 + idx[1][k] * bs, t, dst0 + idx[1][k] * 8, stride);
        for (int k = 0; k < cnt[2]; ++k)
            dequant_idct8_box<4, 4>(in0 + idx[2][k] * bs, t, dst0 + idx[2][k] * 8, stride);
        for (int k = 0; k < cnt[3]; ++k)
            dequant_idct8_box<6, 6>(in0 + idx[3][k] * bs, t, dst0 + idx[3][k] * 8, stride);
        for (int k = 0; k < cnt[4]; ++k)
            dequant_idct8_box<8, 8>(in0 + idx[4][k] * bs, t, dst0 + idx[4][k] * 8, stride);
    }
}

template <int FB>
static void dequant_idct_row(const int32_t* in, int64_t nblocks, int64_t block_stride,
                             const BlockTables& t, float* dst, int64_t stride, float* scratch) {
    const int B = FB ? FB : t.block;
    for (int64_t j = 0; j < nblocks; ++j)
        dequant_idct_sized<FB>(in + j * block_stride, t, dst + j * B, stride, scratch);
}

static void dequant_idct(const int32_t* in, int64_t nblocks, int64_t bs, const BlockTables& t,
                         float* dst, int64_t stride, float* scratch) {
    if (t.block == 8) return dequant_idct_row8(in, nblocks, bs, t, dst, stride);  // every level
    with_block_size(t.block, [&](auto fixed) {
        constexpr int FB = decltype(fixed)::value;
        if constexpr (FB != 8) dequant_idct_row<FB>(in, nblocks, bs, t, dst, stride, scratch);
    });
}

// Compilers do not turn the bit-by-bit loop into compare + movemask, so the
// SIMD builds spell it out (the result is the same bits at every level).
static uint64_t nonzero_mask(const int32_t* __restrict v, int n) {
    uint64_t m = 0;
    int k = 0;
#if defined(__AVX512F__)
    for (; k + 16 <= n; k += 16) {
        const __m512i x = _mm512_loadu_si512(reinterpret_cast<const void*>(v + k));
        m |= static_cast<uint64_t>(_mm512_test_epi32_mask(x, x)) << k;
    }
#elif defined(__AVX2__)
    const __m256i zero = _mm256_setzero_si256();
    for (; k + 8 <= n; k += 8) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + k));
        const int eq = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(x, zero)));
        m |= static_cast<uint64_t>(~eq & 0xff) << k;
    }
#endif
    for (; k < n; ++k) m |= static_cast<uint64_t>(v[k] != 0) << k;
    return m;
}

#if defined(__AVX2__)
// Byte k of kCompress.idx[m]: the lane of the k-th set bit of m, so a
// permute by it packs the lanes that m selects to the front.
struct CompressLut {
    uint64_t idx[256];
    constexpr CompressLut() : idx() {
        for (int m = 0; m < 256; ++m)
            for (int i = 0, j = 0; i < 8; ++i)
                if (m >> i & 1) idx[m] |= uint64_t(i) << (8 * j++);
    }
};
static constexpr CompressLut kCompress{};

// Division costs 3.5 cycles a vector here, as much as the rest of a group's
// quantising, so the quotient is taken as x = c * r with r = 1/q rounded to
// float. Two roundings apart from the true quotient, and the correctly
// rounded c / q being one more, |x - fl(c / q)| <= 3.01 * 2^-24 |x|. The
// orthonormal DCT of samples in [-128, 128] has |D| <= 128 B and q >= 1, so
// that is below eps = 128 B * 2^-22. Where x is further than eps from every
// half-integer, x and fl(c / q) lie in the same interval between
// half-integers and round to the same integer by any rule that rounds to
// nearest: cvtps (ties to even, but x is no tie) gives round_away(fl(c / q)),
// and x is non-zero exactly where |x| >= 1/2. A group with a lane closer
// than that (exact ties are common: flat blocks give D = k Q / 2) is
// divided, lane by lane, as quantize_with does. A lane with |x| < 1/2 - eps
// is 0 by either rule, so a group with no other lane is skipped.
struct QuantConsts {
    __m256 sign, half, near;  // -0, 1/2, 1/2 - eps
    __m256i lim;              // the clip, or INT32_MAX
    explicit QuantConsts(const BlockTables& t)
        : sign(_mm256_set1_ps(-0.0f)),
          half(_mm256_set1_ps(0.5f)),
          near(_mm256_set1_ps(0.5f - static_cast<float>(t.block) * 0x1p-15f)),
          lim(_mm256_set1_epi32(t.clip > 0 ? t.clip : 0x7fffffff)) {}
};

// Quantises 8 transposed coefficients c (x = c * r, ax = |x|) and appends
// the records of the non-zeros to `out` (which must have room for 8; lanes
// past the returned count are scratch). Bit-identical to quantize_with:
// round_away(c / q), clipped (Clip: t.clip > 0).
template <bool Clip>
static inline int quant_extract8(__m256 c, __m256 x, __m256 ax, const float* __restrict q,
                                 const uint32_t* __restrict zz, const QuantConsts& k,
                                 uint32_t* __restrict out) {
    const __m256 frac = _mm256_sub_ps(ax, _mm256_round_ps(ax, _MM_FROUND_TO_NEAREST_INT |
                                                                  _MM_FROUND_NO_EXC));  // exact
    const __m256 near = _mm256_cmp_ps(_mm256_andnot_ps(k.sign, frac), k.near, _CMP_GE_OQ);
    __m256i v = _mm256_cvtps_epi32(x);
    int m = _mm256_movemask_ps(_mm256_cmp_ps(ax, k.half, _CMP_GE_OQ));
    if (__builtin_expect(_mm256_movemask_ps(near) != 0, 0)) {
        alignas(32) float cs[8];
        alignas(32) int32_t exact[8];
        _mm256_store_ps(cs, c);
        m = 0;
        for (int i = 0; i < 8; ++i) {
            exact[i] = round_away(cs[i] / q[i]);
            m |= (exact[i] != 0) << i;
        }
        v = _mm256_load_si256(reinterpret_cast<const __m256i*>(exact));
    }
    if constexpr (Clip)
        v = _mm256_min_epi32(_mm256_max_epi32(v, _mm256_sub_epi32(_mm256_setzero_si256(), k.lim)),
                             k.lim);
    // Record: zigzag index (pre-shifted in the table) over the value's low 16 bits.
    const __m256i rec = _mm256_blend_epi16(
        v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zz)), 0xaa);
    const __m256i perm = _mm256_cvtepu8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(&kCompress.idx[m])));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permutevar8x32_epi32(rec, perm));
    return __builtin_popcount(unsigned(m));
}

// One group of 8 transposed coefficients c with their tables at k0: skipped
// when no lane may be non-zero (unless !Test), else quant_extract8. Returns
// the records written.
template <bool Clip, bool Test = true>
static inline int quant_group(__m256 c, const BlockTables& t, int k0, const QuantConsts& k,
                              uint32_t* __restrict out) {
    const __m256 x = _mm256_mul_ps(c, _mm256_loadu_ps(t.rqt + k0));
    const __m256 ax = _mm256_andnot_ps(k.sign, x);
    if (Test && !_mm256_movemask_ps(_mm256_cmp_ps(ax, k.near, _CMP_GE_OQ))) return 0;
    return quant_extract8<Clip>(c, x, ax, t.qt + k0, t.zz_t + k0, k, out);
}

// B = 8 in registers from the first load to the records: fdct8_aan_t's
// passes (the same operations, so the same coefficients) with the transpose
// on registers, then the quantiser with no store and reload of the block.
// Not inlined: inlined into the block-row loop (as GCC 12 chose after an
// unrelated edit elsewhere in the file) it ran 137 cycles a block against
// 122 (benchmarks/native/block_kernel.cpp).
// Groups 0-2 (the lowest horizontal frequencies) are quantised without the
// skip test: at q75 they are live in 100%, 69% and 54% of blocks (then 38,
// 23, 10, 5, 5%), and a branch that goes either way that often mispredicts
// more than a dead group's extraction costs. Block kernel alone
// (block_kernel.cpp, 5 runs each): 3.88-3.97 ms with every group tested,
// 3.71-3.78 with the first 2 or 3 untested, 3.73-3.80 with 4.
static constexpr int kAlwaysGroups8 = 3;
template <bool Clip>
__attribute__((noinline)) static int fdct_quant_extract8x8(const float* src, int64_t stride, const BlockTables& t,
                                        uint32_t* __restrict records) {
    using V = vf<8>;
    V h[8];
#pragma GCC unroll 8
    for (int x = 0; x < 8; ++x) h[x] = vload<8>(src + x * stride);
    fdct8_aan_pass(h);  // C P, rows scaled
    transpose8x8_regs(reinterpret_cast<__m256*>(h));
    fdct8_aan_pass(h);  // D^T, scaled
    const QuantConsts k(t);
    int written = 0;
    // Unrolled, a branch per group predicts better than a loop over the
    // live groups' bits (a loop exit misses once a block); the groups that
    // are usually live take no branch (kAlwaysGroups8).
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
        if (g < kAlwaysGroups8)
            written += quant_group<Clip, false>(h[g], t, 8 * g, k, records + written);
        else
            written += quant_group<Clip>(h[g], t, 8 * g, k, records + written);
    }
    return written;
}

#if DCTS_AVX512_KERNELS
// Two B = 8 blocks side by side in 16-lane registers (block j in the low
// 8 lanes of each row vector, block j + 1 in the high 8): one 64-byte load
// per row of both, fdct8_aan_pass on both at once, the same transpose
// network per 256-bit half, and the quantiser with mask registers and
// compress instead of movemask + a table permute. The lanes of each half
// undergo exactly the operations fdct_quant_extract8x8 performs on its
// block (same order, no contraction), so the records are bit-identical.
// Records of the two blocks go to their own places in the stream: block
// j's first, then j + 1's from popcount of j's masks on. Register-form
// compress, then a plain 8-lane store: Zen 4's compress to memory is
// microcoded and far slower.
static inline void transpose8x8x2_regs(__m512* r) {
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    __m512 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 4; ++i) {
        r[i] = _mm512_permutex2var_ps(u[i], lo, u[i + 4]);
        r[i + 4] = _mm512_permutex2var_ps(u[i], hi, u[i + 4]);
    }
}

// Group g (8 transposed coefficients) of both blocks: the records of its
// non-zeros in *rec (lanes as the coefficients), their lanes in the result.
// The same arithmetic as quant_extract8; a group with a lane near a tie is
// divided lane by lane, both halves.
template <bool Clip, bool Test>
static inline __mmask16 quant_group8x2(__m512 c, const BlockTables& t, int k0, __m512i* rec) {
    const __m512 sign = _mm512_set1_ps(-0.0f);
    const __m512 near = _mm512_set1_ps(0.5f - 8.0f * 0x1p-15f);
    const __m512 x = _mm512_mul_ps(c, _mm512_broadcast_f32x8(_mm256_loadu_ps(t.rqt + k0)));
    const __m512 ax = _mm512_andnot_ps(sign, x);
    if (Test && !_mm512_cmp_ps_mask(ax, near, _CMP_GE_OQ)) return 0;
    const __m512 frac = _mm512_sub_ps(ax, _mm512_roundscale_ps(ax, _MM_FROUND_TO_NEAREST_INT |
                                                                       _MM_FROUND_NO_EXC));
    __m512i v = _mm512_cvtps_epi32(x);
    __mmask16 m = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    if (__builtin_expect(_mm512_cmp_ps_mask(_mm512_andnot_ps(sign, frac), near, _CMP_GE_OQ) != 0,
                         0)) {
        alignas(64) float cs[16];
        alignas(64) int32_t exact[16];
        _mm512_store_ps(cs, c);
        for (int i = 0; i < 16; ++i) exact[i] = round_away(cs[i] / t.qt[k0 + (i & 7)]);
        v = _mm512_load_si512(exact);
        m = _mm512_test_epi32_mask(v, v);
    }
    if constexpr (Clip) {
        const __m512i lim = _mm512_set1_epi32(t.clip);
        v = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_sub_epi32(_mm512_setzero_si512(), lim)),
                             lim);
    }
    const __m512i zz = _mm512_broadcast_i32x8(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.zz_t + k0)));
    *rec = _mm512_mask_blend_epi16(0xaaaaaaaau, v, zz);
    return m;
}

// Blocks j (src) and j + 1 (src + 8); `records` has room for 128. Returns
// block j's count in *n0 and block j + 1's in *n1.
template <bool Clip>
__attribute__((noinline)) static void fdct_quant_extract8x8x2(const float* src, int64_t stride,
                                                              const BlockTables& t,
                                                              uint32_t* __restrict records,
                                                              int* n0, int* n1) {
    __m512 h[8];
#pragma GCC unroll 8
    for (int x = 0; x < 8; ++x) h[x] = _mm512_loadu_ps(src + x * stride);
    {
        vf<16>* hv = reinterpret_cast<vf<16>*>(h);
        fdct8_aan_pass(hv);
        transpose8x8x2_regs(h);
        fdct8_aan_pass(hv);
    }
    __m512i rec[8];
    __mmask16 m[8];
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g)
        m[g] = g < kAlwaysGroups8 ? quant_group8x2<Clip, false>(h[g], t, 8 * g, &rec[g])
                                  : quant_group8x2<Clip, true>(h[g], t, 8 * g, &rec[g]);
    uint32_t* out = records;
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
        if (g >= kAlwaysGroups8 && !m[g]) continue;
        const __mmask16 lo = m[g] & 0xff;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                            _mm512_castsi512_si256(_mm512_maskz_compress_epi32(lo, rec[g])));
        out += __builtin_popcount(unsigned(lo));
    }
    *n0 = int(out - records);
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
        if (g >= kAlwaysGroups8 && !m[g]) continue;
        const __mmask16 hi = m[g] & 0xff00;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                            _mm512_castsi512_si256(_mm512_maskz_compress_epi32(hi, rec[g])));
        out += __builtin_popcount(unsigned(hi));
    }
    *n1 = int(out - records) - *n0;
}
#endif

// Any B with B*B a multiple of 8 (B a multiple of 4): the last store of 8
// ends within the room for B*B.
template <bool Clip>
static inline int quant_extract_block(const float* __restrict coeffs, const BlockTables& t,
                                      uint32_t* __restrict records) {
    const int n = t.block * t.block;
    const QuantConsts k(t);
    int written = 0;
    for (int g = 0; g < n; g += 8)
        written += quant_group<Clip>(_mm256_loadu_ps(coeffs + g), t, g, k, records + written);
    return written;
}
#endif

// The block's DCT, quantised, as records (zigzag index << 16 | uint16
// value) of its non-zeros, in the transform's (transposed) order. `records`
// has room for B*B. FB: B when fixed at compile time (the quantiser loop then
// unrolls), else 0.
template <int FB>
static inline int fdct_quant_extract_block(const float* src, int64_t stride,
                                           const BlockTables& t, uint32_t* __restrict records,
                                           int32_t* __restrict qbuf, float* scratch) {
    const int B = FB ? FB : t.block, n = B * B;
#if defined(__AVX2__)
    if constexpr (FB == 8 && kNativeFloats >= 8)
        return t.clip > 0 ? fdct_quant_extract8x8<true>(src, stride, t, records)
                          : fdct_quant_extract8x8<false>(src, stride, t, records);
#endif
    float* coeffs = scratch;  // D^T, B*B (scaled at B = 8: see fdct8_aan_pass)
    if (B == 8) fdct8_aan_t(src, stride, coeffs);
    else if constexpr (FB != 0) fdct_t_fixed<FB>(src, stride, t.c, coeffs);
    else fdct_t(src, stride, t, coeffs, scratch + n);
#if defined(__AVX2__)
    if (n % 8 == 0)
        return t.clip > 0 ? quant_extract_block<true>(coeffs, t, records)
                          : quant_extract_block<false>(coeffs, t, records);
#endif
    quantize_with(coeffs, t.qt, n, t.clip, qbuf);
    int written = 0;
    for (int base = 0; base < n; base += 64) {
        uint64_t mask = nonzero_mask(qbuf + base, n - base < 64 ? n - base : 64);
        while (mask) {
            const int k = base + __builtin_ctzll(mask);
            mask &= mask - 1;
            records[written++] = t.zz_t[k] | static_cast<uint16_t>(static_cast<int16_t>(qbuf[k]));
        }
    }
    return written;
}

template <int FB>
static int64_t fdct_quant_extract_row(const float* src, int64_t stride, int64_t nblocks,
                                      const BlockTables& t, uint32_t* __restrict records,
                                      uint16_t* __restrict counts, int32_t* qbuf, float* scratch) {
    const int B = FB ? FB : t.block;
    int64_t total = 0;
    int64_t j = 0;
#if DCTS_AVX512_KERNELS
    if constexpr (FB == 8)
        for (; j + 2 <= nblocks; j += 2) {
            int n0, n1;
            if (t.clip > 0)
                fdct_quant_extract8x8x2<true>(src + j * 8, stride, t, records + total, &n0, &n1);
            else
                fdct_quant_extract8x8x2<false>(src + j * 8, stride, t, records + total, &n0, &n1);
            counts[j] = static_cast<uint16_t>(n0);
            counts[j + 1] = static_cast<uint16_t>(n1);
            total += n0 + n1;
        }
#endif
    for (; j < nblocks; ++j) {
        const int n = fdct_quant_extract_block<FB>(src + j * B, stride, t, records + total, qbuf,
                                                   scratch);
        counts[j] = static_cast<uint16_t>(n);
        total += n;
    }
    return total;
}

static int64_t fdct_quant_extract(const float* src, int64_t stride, int64_t nblocks,
                                  const BlockTables& t, uint32_t* records, uint16_t* counts,
                                  int32_t* qbuf, float* scratch) {
    return with_block_size(t.block, [&](auto fixed) {
        return fdct_quant_extract_row<decltype(fixed)::value>(src, stride, nblocks, t, records,
                                                              counts, qbuf, scratch);
    });
}
