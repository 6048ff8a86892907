// Block DCT / IDCT kernels (SPEC section 3), compiled once per instruction
// set inside namespace dcts::DCTS_ISA_NS.
//
// A 2-D transform is two identical 1-D passes over the columns of a block
// with a transpose between them. A column pass treats each row of the block
// as one vector (B lanes, one per column), so both passes run in vector
// registers at full width for any B; nothing broadcasts single lanes. Each
// output row is a sum over input rows, accumulated in a fixed order with no
// reassociation, so every instruction set computes bit-identical results.
// Fixed sizes (4, 8, 16, 32) are templates the compiler unrolls into
// straight register code; other sizes take the runtime-B loops, which
// perform the same operations in the same order.
//
// The forward transform leaves its result transposed (out[v * B + u] =
// D[u][v]): the quantiser is elementwise and the zigzag is a table lookup,
// so they take transposed tables instead of paying for a second transpose.

// --- transposes (exact data movement) ---

#if defined(__AVX2__)
// 8 x 8 floats, rows at `is` / `os` floats: the usual unpack / shuffle /
// 128-bit permute network (24 shuffles for 64 elements).
static inline void transpose8x8(const float* __restrict in, int64_t is, float* __restrict out,
                                int64_t os) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(in + i * is);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(out + i * os, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(out + (i + 4) * os, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
}
#endif

// out[j * B + i] = in[i * B + j]
static inline void transpose(int B, const float* __restrict in, float* __restrict out) {
#if defined(__AVX2__)
    if (B % 8 == 0) {
        for (int i = 0; i < B; i += 8)
            for (int j = 0; j < B; j += 8) transpose8x8(in + i * B + j, B, out + j * B + i, B);
        return;
    }
#endif
    for (int i = 0; i < B; ++i)
        for (int j = 0; j < B; ++j) out[j * B + i] = in[i * B + j];
}

// --- 1-D column passes ---

// Forward: out row u = sum_x C[u][x] * src row x. C[u][B-1-x] = (-1)^u
// C[u][x] exactly (dct.cpp), so even u only see the sums of mirrored rows
// and odd u only their differences: half the multiplies.
template <int B>
static inline void fdct_cols(const float* __restrict src, int64_t stride, const float* __restrict C,
                             float* __restrict out) {
    constexpr int W = B < kNativeFloats ? B : kNativeFloats;  // columns per chunk
    using V = vf<W>;
    constexpr int H = B / 2;
#pragma GCC unroll 8
    for (int c0 = 0; c0 < B; c0 += W) {
        V e[H], o[H];
#pragma GCC unroll 64
        for (int x = 0; x < H; ++x) {
            const V a = vload<W>(src + x * stride + c0), b = vload<W>(src + (B - 1 - x) * stride + c0);
            e[x] = a + b;
            o[x] = a - b;
        }
#pragma GCC unroll 64
        for (int u = 0; u < B; ++u) {
            const V* h = (u & 1) ? o : e;
            V acc = h[0] * C[u * B];
#pragma GCC unroll 64
            for (int x = 1; x < H; ++x) acc += h[x] * C[u * B + x];
            vstore<W>(out + u * B + c0, acc);
        }
    }
}

static void fdct_cols_any(int B, const float* __restrict src, int64_t stride,
                          const float* __restrict C, float* __restrict out, float* __restrict eo) {
    if (B % 2 == 0) {  // the same even/odd split as fdct_cols, same operations
        const int H = B / 2;
        float* __restrict e = eo;
        float* __restrict o = eo + H * B;
        for (int x = 0; x < H; ++x) {
            const float* a = src + x * stride;
            const float* b = src + (B - 1 - x) * stride;
            for (int y = 0; y < B; ++y) {
                e[x * B + y] = a[y] + b[y];
                o[x * B + y] = a[y] - b[y];
            }
        }
        for (int u = 0; u < B; ++u) {
            const float* h = (u & 1) ? o : e;
            float* acc = out + u * B;
            for (int y = 0; y < B; ++y) acc[y] = h[y] * C[u * B];
            for (int x = 1; x < H; ++x) {
                const float c = C[u * B + x];
                for (int y = 0; y < B; ++y) acc[y] += h[x * B + y] * c;
            }
        }
        return;
    }
    for (int u = 0; u < B; ++u) {
        float* acc = out + u * B;
        for (int y = 0; y < B; ++y) acc[y] = src[y] * C[u * B];
        for (int x = 1; x < B; ++x) {
            const float c = C[u * B + x];
            const float* p = src + x * stride;
            for (int y = 0; y < B; ++y) acc[y] += p[y] * c;
        }
    }
}

// Inverse: out row x = sum_u C[u][x] * in row u, over the first `rows`
// input rows only (rounded up to even for B even, so those rows must be
// readable): the caller knows the rest are zero, and leaving out terms that
// are exact zeros changes at most the sign of a zero result.
// Decoded blocks are sparse (at q75 a 32x32 block rarely has non-zeros past
// its first few rows and columns), so this makes the inverse transform cost
// follow the block's content. By the symmetry of C, rows x and B-1-x share
// the even-u and odd-u partial sums (E + O and E - O).
template <int B>
static inline void idct_cols(const float* __restrict in, const float* __restrict C, int rows,
                             float* __restrict out) {
    constexpr int W = B < kNativeFloats ? B : kNativeFloats;  // columns per chunk
    constexpr int G = B / 2 < 4 ? B / 2 : 4;  // outputs per group: 2G accumulators
    using V = vf<W>;
    const int pairs = (rows + 1) / 2;  // input rows taken in (even, odd) pairs
#pragma GCC unroll 8
    for (int c0 = 0; c0 < B; c0 += W) {
#pragma GCC unroll 16
        for (int x0 = 0; x0 < B / 2; x0 += G) {
            V ev[G], od[G];
            const V d0 = vload<W>(in + c0), d1 = vload<W>(in + B + c0);
#pragma GCC unroll 4
            for (int j = 0; j < G; ++j) {
                ev[j] = d0 * C[x0 + j];
                od[j] = d1 * C[B + x0 + j];
            }
            for (int i = 1; i < pairs; ++i) {
                const float* ce = C + 2 * i * B + x0;
                const V de = vload<W>(in + 2 * i * B + c0), dd = vload<W>(in + (2 * i + 1) * B + c0);
#pragma GCC unroll 4
                for (int j = 0; j < G; ++j) {
                    ev[j] += de * ce[j];
                    od[j] += dd * ce[B + j];
                }
            }
#pragma GCC unroll 4
            for (int j = 0; j < G; ++j) {
                vstore<W>(out + (x0 + j) * B + c0, ev[j] + od[j]);
                vstore<W>(out + (B - 1 - x0 - j) * B + c0, ev[j] - od[j]);
            }
        }
    }
}

static void idct_cols_any(int B, const float* __restrict in, const float* __restrict C, int rows,
                          float* __restrict out, float* __restrict eo) {
    if (B % 2 == 0) {  // the same even/odd split as idct_cols, same operations
        const int pairs = (rows + 1) / 2;
        float* __restrict ev = eo;
        float* __restrict od = eo + B;
        for (int x = 0; x < B / 2; ++x) {
            for (int v = 0; v < B; ++v) {
                ev[v] = in[v] * C[x];
                od[v] = in[B + v] * C[B + x];
            }
            for (int i = 1; i < pairs; ++i) {
                const float ce = C[2 * i * B + x], co = C[(2 * i + 1) * B + x];
                const float* de = in + 2 * i * B;
                const float* dd = de + B;
                for (int v = 0; v < B; ++v) {
                    ev[v] += de[v] * ce;
                    od[v] += dd[v] * co;
                }
            }
            for (int v = 0; v < B; ++v) {
                out[x * B + v] = ev[v] + od[v];
                out[(B - 1 - x) * B + v] = ev[v] - od[v];
            }
        }
        return;
    }
    for (int x = 0; x < B; ++x) {
        float* acc = out + x * B;
        for (int v = 0; v < B; ++v) acc[v] = in[v] * C[x];
        for (int u = 1; u < rows; ++u) {
            const float c = C[u * B + x];
            const float* d = in + u * B;
            for (int v = 0; v < B; ++v) acc[v] += d[v] * c;
        }
    }
}

// --- 2-D transforms ---

// The scalar build runs every size through the runtime-B loops (the unrolled
// templates only pay off with vector registers); both compute identical results.
#if defined(DCTS_SCALAR_LANES)
static constexpr bool kFixedSizes = false;
#else
static constexpr bool kFixedSizes = true;
#endif

template <int B>
static inline void fdct_t_fixed(const float* src, int64_t stride, const float* C, float* outT) {
    alignas(64) float a[B * B], at[B * B];
    fdct_cols<B>(src, stride, C, a);  // a = C P
    transpose(B, a, at);
    fdct_cols<B>(at, B, C, outT);     // C (C P)^T = (C P C^T)^T
}

// D^T of the block at `src` (rows `stride` floats apart) into outT (B*B).
// scratch: block_scratch_floats(B).
static void fdct_t(const float* src, int64_t stride, const BlockTables& t, float* outT,
                   float* scratch) {
    switch (kFixedSizes ? t.block : 0) {
        case 4: return fdct_t_fixed<4>(src, stride, t.c, outT);
        case 8: return fdct_t_fixed<8>(src, stride, t.c, outT);
        case 16: return fdct_t_fixed<16>(src, stride, t.c, outT);
        case 32: return fdct_t_fixed<32>(src, stride, t.c, outT);
        default: break;
    }
    const int B = t.block;
    float* a = scratch;
    float* at = a + B * B;
    float* eo = at + B * B;
    fdct_cols_any(B, src, stride, t.c, a, eo);
    transpose(B, a, at);
    fdct_cols_any(B, at, B, t.c, outT, eo);
}

template <int B>
static inline void idct_fixed(const float* d, const float* C, int rows, int cols, float* dst,
                              int64_t stride) {
    alignas(64) float a[B * B], at[B * B];
    idct_cols<B>(d, C, rows, a);   // a = C^T D
    transpose(B, a, at);           // rows >= cols of (C^T D)^T are zero
    idct_cols<B>(at, C, cols, a);  // C^T (C^T D)^T = P^T
    transpose(B, a, at);
    for (int x = 0; x < B; ++x) std::memcpy(dst + x * stride, at + x * B, sizeof(float) * B);
}

// P = C^T D C of the natural-order block d, rows stored `stride` floats
// apart. Only d's first `rows` rows and `cols` columns may hold non-zeros.
static void idct_strided(const float* d, const BlockTables& t, int rows, int cols, float* dst,
                         int64_t stride, float* scratch) {
    switch (kFixedSizes ? t.block : 0) {
        case 4: return idct_fixed<4>(d, t.c, rows, cols, dst, stride);
        case 8: return idct_fixed<8>(d, t.c, rows, cols, dst, stride);
        case 16: return idct_fixed<16>(d, t.c, rows, cols, dst, stride);
        case 32: return idct_fixed<32>(d, t.c, rows, cols, dst, stride);
        default: break;
    }
    const int B = t.block;
    float* a = scratch;
    float* at = a + B * B;
    float* eo = at + B * B;
    idct_cols_any(B, d, t.c, rows, a, eo);
    transpose(B, a, at);
    idct_cols_any(B, at, t.c, cols, a, eo);
    transpose(B, a, at);
    for (int x = 0; x < B; ++x)
        for (int y = 0; y < B; ++y) dst[x * stride + y] = at[x * B + y];
}

// Single stages on contiguous blocks, natural order (tests, reference checks).
static void fdct(const float* src, const BlockTables& t, float* out, float* scratch) {
    std::vector<float> dt(size_t(t.block) * size_t(t.block));
    fdct_t(src, t.block, t, dt.data(), scratch);
    transpose(t.block, dt.data(), out);
}

static void idct(const float* src, const BlockTables& t, float* out, float* scratch) {
    idct_strided(src, t, t.block, t.block, out, t.block, scratch);
}
