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
// 8 x 8 floats in eight registers, in place: the usual unpack / shuffle /
// 128-bit permute network (24 shuffles for 64 elements).
static inline void transpose8x8_regs(__m256* r) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 4; ++i) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

// The same from and to memory, rows at `is` / `os` floats.
static inline void transpose8x8(const float* __restrict in, int64_t is, float* __restrict out,
                                int64_t os) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(in + i * is);
    transpose8x8_regs(r);
    for (int i = 0; i < 8; ++i) _mm256_storeu_ps(out + i * os, r[i]);
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

// Forward: out row u = sum_x C[u][x] * src row x, by recursive even/odd
// splitting (the partial butterfly of HEVC-style integer transforms).
// C[u][n-1-x] = (-1)^u C[u][x], so at size n = B the odd u only see the
// differences o[x] = h[x] - h[n-1-x] and the even u only the sums e[x]; the
// even u = 2k restricted to the n/2 sums are a DCT of size n/2 again (the
// same identity one level down), so the split repeats while n is even.
// Level n (outputs u = s (2j + 1), s = B/n) costs n/2 dot products of length
// n/2, so B = 32 takes ~30% fewer operations than one split alone. Only
// sums and differences of samples, then products with cosines: no division
// by small cosines, so the rounding error stays that of a plain dot product.
// Workspace: rows h[0, n) hold the current level's samples; a split leaves
// e[x] in row x and o[x] in row n-1-x (in place), so o is read backwards.
//
// Every output element is one dot product over its level's rows,
// acc = d[0] c[0], acc += d[x] c[x] for x ascending; the fixed-size code and
// the runtime-B loops (fdct_cols_any, the scalar build) do exactly this.

// In place: rows x and n-1-x of h become their sum and difference.
template <int W>
static inline void fdct_split(float* __restrict h, int n, int B) {
    using V = vf<W>;
    for (int x = 0; x < n / 2; ++x)
        for (int c0 = 0; c0 < B; c0 += W) {
            const V a = vload<W>(h + x * B + c0), b = vload<W>(h + (n - 1 - x) * B + c0);
            vstore<W>(h + x * B + c0, a + b);
            vstore<W>(h + (n - 1 - x) * B + c0, a - b);
        }
}

// out row (u0 + j us) = sum_{x < m} C[u0 + j us][x] * (row at d + x ds), for
// j < count. G output rows x NC column vectors per step: each loaded row
// vector serves G products and each broadcast coefficient NC, and G * NC
// independent accumulators keep both FP add pipes busy.
template <int B, int G, int NC>
static inline void fdct_dots(const float* __restrict d, int64_t ds, int m,
                             const float* __restrict C, int u0, int us, int count,
                             float* __restrict out) {
    constexpr int W = B < kNativeFloats ? B : kNativeFloats;
    using V = vf<W>;
    for (int j = 0; j < count; j += G) {
        const float* cu[G];
#pragma GCC unroll 8
        for (int g = 0; g < G; ++g) cu[g] = C + (u0 + (j + g) * us) * B;
        for (int c0 = 0; c0 < B; c0 += NC * W) {
            V acc[G][NC];
#pragma GCC unroll 8
            for (int k = 0; k < NC; ++k) {
                const V v = vload<W>(d + c0 + k * W);
#pragma GCC unroll 8
                for (int g = 0; g < G; ++g) acc[g][k] = v * cu[g][0];
            }
#pragma GCC unroll 4
            for (int x = 1; x < m; ++x) {
                V v[NC];
#pragma GCC unroll 8
                for (int k = 0; k < NC; ++k) v[k] = vload<W>(d + x * ds + c0 + k * W);
#pragma GCC unroll 8
                for (int g = 0; g < G; ++g) {
                    const float c = cu[g][x];
#pragma GCC unroll 8
                    for (int k = 0; k < NC; ++k) acc[g][k] += v[k] * c;
                }
            }
#pragma GCC unroll 8
            for (int g = 0; g < G; ++g)
#pragma GCC unroll 8
                for (int k = 0; k < NC; ++k)
                    vstore<W>(out + (u0 + (j + g) * us) * B + c0 + k * W, acc[g][k]);
        }
    }
}

// Output groups of up to 4 rows, 8 accumulators in all.
template <int B>
static inline void fdct_dots_any_count(const float* d, int64_t ds, int m, const float* C, int u0,
                                       int us, int count, float* out) {
    constexpr int W = B < kNativeFloats ? B : kNativeFloats;
    constexpr int NC = B / W < 2 ? B / W : 2;
    constexpr int G = 8 / NC < 4 ? 8 / NC : 4;
    const int main = count - count % G;
    fdct_dots<B, G, NC>(d, ds, m, C, u0, us, main, out);
    fdct_dots<B, 1, NC>(d, ds, m, C, u0 + main * us, us, count - main, out);
}

// B = 8, the encoder's: the Arai-Agui-Nakajima flow graph (as in IJG's
// jfdctflt.c), 29 additions and 5 multiplications per pass where the dot
// products below take 28 and 22. Output u comes out scaled by
// sqrt(8) s(u), s(0) = 1, s(k) = sqrt(2) cos(k pi / 16), the 2-D block by
// the product of its row's and column's, which the encoder's quantiser
// tables absorb (BlockPlan: qt and rqt at B = 8). In place on the eight
// rows h (each a vector of columns).
template <typename V>
static inline void fdct8_aan_pass(V* h) {
    constexpr float k0707 = 0.707106781186547524f;  // cos(4 pi / 16)
    constexpr float k0382 = 0.382683432365089772f;  // cos(6 pi / 16)
    constexpr float k0541 = 0.541196100146196984f;  // cos(2 pi / 16) - cos(6 pi / 16)
    constexpr float k1306 = 1.306562964876376527f;  // cos(2 pi / 16) + cos(6 pi / 16)
    const V t0 = h[0] + h[7], t7 = h[0] - h[7], t1 = h[1] + h[6], t6 = h[1] - h[6];
    const V t2 = h[2] + h[5], t5 = h[2] - h[5], t3 = h[3] + h[4], t4 = h[3] - h[4];
    // even part
    const V e10 = t0 + t3, e13 = t0 - t3, e11 = t1 + t2, e12 = t1 - t2;
    h[0] = e10 + e11;
    h[4] = e10 - e11;
    const V z1 = (e12 + e13) * k0707;
    h[2] = e13 + z1;
    h[6] = e13 - z1;
    // odd part
    const V o10 = t4 + t5, o11 = t5 + t6, o12 = t6 + t7;
    const V z5 = (o10 - o12) * k0382;
    const V z2 = o10 * k0541 + z5, z4 = o12 * k1306 + z5, z3 = o11 * k0707;
    const V z11 = t7 + z3, z13 = t7 - z3;
    h[5] = z13 + z2;
    h[3] = z13 - z2;
    h[1] = z11 + z4;
    h[7] = z11 - z4;
}

// One pass of it over an 8 x 8 block in memory (rows `stride` floats apart).
static inline void fdct8_aan_cols(const float* __restrict src, int64_t stride,
                                  float* __restrict out) {
    constexpr int W = 8 < kNativeFloats ? 8 : kNativeFloats;
    using V = vf<W>;
#pragma GCC unroll 8
    for (int c0 = 0; c0 < 8; c0 += W) {
        V h[8];
#pragma GCC unroll 8
        for (int x = 0; x < 8; ++x) h[x] = vload<W>(src + x * stride + c0);
        fdct8_aan_pass(h);
#pragma GCC unroll 8
        for (int u = 0; u < 8; ++u) vstore<W>(out + u * 8 + c0, h[u]);
    }
}

// D^T of the 8 x 8 block at src, scaled by sqrt(8) s(u) sqrt(8) s(v)
// (out[v * 8 + u]).
static inline void fdct8_aan_t(const float* src, int64_t stride, float* __restrict outT) {
    alignas(64) float a[64], at[64];
    fdct8_aan_cols(src, stride, a);
    transpose(8, a, at);
    fdct8_aan_cols(at, 8, outT);
}

// The odd outputs of the levels n = 32 and 16 of B = 32, and of n = 16 of
// B = 16 (N = n/2 of them, from the N differences o[x]): sqrt(2/B) times a
// DCT-IV of size N, X[k] = sum_x o[x] cos(pi (2x+1)(2k+1) / 4N), taken
// through a complex DFT of size M = N/2: y_j = (o[2j] + i o[N-1-2j])
// e^{-i pi j/N}, Y = DFT_M(y), Z_p = Y_p e^{-i pi (4p+1)/4N}; then
// X[2p] = Re Z_p and X[N-1-2p] = -Im Z_p. 84 products and 90 sums at N = 16
// where the dot products took 256 and 240 (a level-32 odd part was three
// quarters of B = 32's forward transform). The DFT is radix 2 (the twiddle
// -i exact). The rounding error stays that of the dot products (max |error|
// over random blocks, relative to the largest coefficient: 1.5e-7 at
// B = 16 and 32, as before; 1.2e-7 at B = 8). The inverse keeps its dot
// products, which skip the rows that are zero.
template <int N>
struct Dct4Twiddles {
    static constexpr int M = N / 2;
    float pre_c[M], pre_s[M];    // cos, sin of pi j / N
    float post_c[M], post_s[M];  // sqrt(2/B) cos, sin of pi (4p+1) / 4N
    float w_c[M], w_s[M];        // cos, sin of 2 pi j / M (exact 0 and 1 at j = M/4)
    explicit Dct4Twiddles(int B) {
        const double pi = 3.14159265358979323846, scale = std::sqrt(2.0 / B);
        for (int j = 0; j < M; ++j) {
            pre_c[j] = float(std::cos(pi * j / N));
            pre_s[j] = float(std::sin(pi * j / N));
            post_c[j] = float(scale * std::cos(pi * (4 * j + 1) / (4.0 * N)));
            post_s[j] = float(scale * std::sin(pi * (4 * j + 1) / (4.0 * N)));
            const bool quarter = 4 * j == M;
            w_c[j] = quarter ? 0.0f : float(std::cos(2 * pi * j / M));
            w_s[j] = quarter ? 1.0f : float(std::sin(2 * pi * j / M));
        }
    }
};

// Odd outputs u = u0 + k us (k < N) of one level from the N differences
// o[x] (W columns, from column c0), to out row u.
template <int W, int N>
static inline void fdct_odd_dft(const vf<W>* o, int u0, int us, int B, const Dct4Twiddles<N>& t,
                                float* __restrict out, int c0) {
    constexpr int M = N / 2;
    using V = vf<W>;
    V re[M], im[M];
    constexpr int kBits = M == 8 ? 3 : M == 4 ? 2 : 1;
#pragma GCC unroll 8
    for (int j = 0; j < M; ++j) {  // pre-twiddle, into bit-reversed order
        int r = 0;
        for (int b = 0; b < kBits; ++b) r |= ((j >> b) & 1) << (kBits - 1 - b);
        const V a = o[2 * j], b = o[N - 1 - 2 * j];
        re[r] = a * t.pre_c[j] + b * t.pre_s[j];
        im[r] = b * t.pre_c[j] - a * t.pre_s[j];
    }
#pragma GCC unroll 4
    for (int len = 2; len <= M; len *= 2) {
        const int half = len / 2, step = M / len;
#pragma GCC unroll 4
        for (int j = 0; j < half; ++j) {
            const float wc = t.w_c[j * step], ws = t.w_s[j * step];  // e^{-2 pi i j / len}
#pragma GCC unroll 4
            for (int k = 0; k < M; k += len) {
                const int p = k + j, q = k + j + half;
                V tr = re[q], ti = im[q];
                if (j != 0) {  // (tr + i ti)(wc - i ws)
                    const V r2 = tr * wc + ti * ws;
                    ti = ti * wc - tr * ws;
                    tr = r2;
                }
                re[q] = re[p] - tr;
                im[q] = im[p] - ti;
                re[p] = re[p] + tr;
                im[p] = im[p] + ti;
            }
        }
    }
#pragma GCC unroll 8
    for (int p = 0; p < M; ++p) {  // post-twiddle and the two real outputs
        const V zr = re[p] * t.post_c[p] + im[p] * t.post_s[p];
        const V nzi = re[p] * t.post_s[p] - im[p] * t.post_c[p];  // -Im Z_p
        vstore<W>(out + (u0 + (2 * p) * us) * B + c0, zr);
        vstore<W>(out + (u0 + (N - 1 - 2 * p) * us) * B + c0, nzi);
    }
}

// Whether level n of B takes fdct_odd_dft: n = 32 and 16 of B = 32, n = 16
// of B = 16.
static constexpr bool has_odd_dft(int B, int n) {
    return (B == 16 || B == 32) && (n == 32 || n == 16);
}

// The twiddles of B's level with N odd outputs (built once per process).
template <int B, int N>
static inline const Dct4Twiddles<N>& odd_twiddles() {
    static const Dct4Twiddles<N> t(B);
    return t;
}

// Small blocks (one register per row): the same splits and dot products,
// fully unrolled with every row in a register.
template <int B>
static inline void fdct_cols_regs(const float* __restrict src, int64_t stride,
                                  const float* __restrict C, float* __restrict out) {
    constexpr int W = B < kNativeFloats ? B : kNativeFloats;
    using V = vf<W>;
#pragma GCC unroll 8
    for (int c0 = 0; c0 < B; c0 += W) {
        V h[B];
#pragma GCC unroll 64
        for (int x = 0; x < B / 2; ++x) {
            const V a = vload<W>(src + x * stride + c0), b = vload<W>(src + (B - 1 - x) * stride + c0);
            h[x] = a + b;
            h[B - 1 - x] = a - b;
        }
        const auto dots = [&](int d0, int ds, int m, int u0, int us, int count) {
#pragma GCC unroll 64
            for (int j = 0; j < count; ++j) {
                const int u = u0 + j * us;
                V acc = h[d0] * C[u * B];
#pragma GCC unroll 64
                for (int x = 1; x < m; ++x) acc += h[d0 + x * ds] * C[u * B + x];
                vstore<W>(out + u * B + c0, acc);
            }
        };
        constexpr int levels = __builtin_ctz(B);  // splits: while the size is even
#pragma GCC unroll 8
        for (int l = 0; l < levels; ++l) {
            const int n = B >> l;
            bool dft = false;
            if constexpr (B == 16 || B == 32) {
                if (has_odd_dft(B, n)) {  // as fdct_odd_level
                    V o[B / 2];
#pragma GCC unroll 16
                    for (int x = 0; x < n / 2; ++x) o[x] = h[n - 1 - x];
                    if (B == 32 && n == 32)
                        fdct_odd_dft<W, B / 2>(o, 1, 2, B, odd_twiddles<B, B / 2>(), out, c0);
                    else
                        fdct_odd_dft<W, 8>(o, B / 16, B / 8, B, odd_twiddles<B, 8>(), out, c0);
                    dft = true;
                }
            }
            if (!dft) dots(n - 1, -1, n / 2, B / n, 2 * (B / n), n / 2);
            if (l + 1 == levels) break;
#pragma GCC unroll 64
            for (int x = 0; x < n / 4; ++x) {
                const V a = h[x], b = h[n / 2 - 1 - x];
                h[x] = a + b;
                h[n / 2 - 1 - x] = a - b;
            }
        }
        constexpr int n = B >> levels;
        dots(0, 1, n, 0, B / n, n);
    }
}

// The N odd outputs of B's level n = 2N through fdct_odd_dft, from the
// differences o[x] = row d + x ds, W columns at a time.
template <int B, int W, int N>
static inline void fdct_odd_rows(const float* d, int64_t ds, float* out) {
    const Dct4Twiddles<N>& t = odd_twiddles<B, N>();
    for (int c0 = 0; c0 < B; c0 += W) {
        vf<W> o[N];
#pragma GCC unroll 16
        for (int x = 0; x < N; ++x) o[x] = vload<W>(d + x * ds + c0);
        fdct_odd_dft<W, N>(o, B / (2 * N), B / N, B, t, out, c0);
    }
}

// fdct_odd_rows where has_odd_dft(B, n); false elsewhere (the level takes
// the dot products).
template <int B, int W>
static inline bool fdct_odd_level(const float* d, int64_t ds, int n, float* out) {
    if constexpr (B == 16 || B == 32) {
        if (!has_odd_dft(B, n)) return false;
        if (B == 32 && n == 32) fdct_odd_rows<B, W, B / 2>(d, ds, out);
        else fdct_odd_rows<B, W, 8>(d, ds, out);
        return true;
    }
    return false;
}

template <int B>
static void fdct_cols(const float* __restrict src, int64_t stride, const float* __restrict C,
                      float* __restrict out) {
    constexpr int W = B < kNativeFloats ? B : kNativeFloats;
    using V = vf<W>;
    if constexpr (B <= kNativeFloats) return fdct_cols_regs<B>(src, stride, C, out);
    alignas(64) float h[B * B];
    for (int x = 0; x < B / 2; ++x)  // first split straight from the source rows
        for (int c0 = 0; c0 < B; c0 += W) {
            const V a = vload<W>(src + x * stride + c0), b = vload<W>(src + (B - 1 - x) * stride + c0);
            vstore<W>(h + x * B + c0, a + b);
            vstore<W>(h + (B - 1 - x) * B + c0, a - b);
        }
    int n = B;
    for (;;) {
        const int s = B / n;
        if (!fdct_odd_level<B, W>(h + (n - 1) * B, -B, n, out))
            fdct_dots_any_count<B>(h + (n - 1) * B, -B, n / 2, C, s, 2 * s, n / 2, out);
        n /= 2;
        if (n % 2 != 0) break;
        fdct_split<W>(h, n, B);
    }
    fdct_dots_any_count<B>(h, B, n, C, 0, B / n, n, out);  // n odd: direct
}

static void fdct_cols_any(int B, const float* __restrict src, int64_t stride,
                          const float* __restrict C, float* __restrict out, float* __restrict h) {
    // The same splits and dot products as fdct_cols, one float at a time.
    const auto dots = [&](const float* d, int64_t ds, int m, int u0, int us, int count) {
        for (int j = 0; j < count; ++j) {
            const int u = u0 + j * us;
            float* acc = out + u * B;
            const float* c = C + u * B;
            for (int y = 0; y < B; ++y) acc[y] = d[y] * c[0];
            for (int x = 1; x < m; ++x)
                for (int y = 0; y < B; ++y) acc[y] += d[x * ds + y] * c[x];
        }
    };
    int n = B;
    if (B % 2 == 0) {
        for (int x = 0; x < B / 2; ++x)
            for (int y = 0; y < B; ++y) {
                const float a = src[x * stride + y], b = src[(B - 1 - x) * stride + y];
                h[x * B + y] = a + b;
                h[(B - 1 - x) * B + y] = a - b;
            }
    } else {  // odd B: no split at all
        for (int x = 0; x < B; ++x)
            for (int y = 0; y < B; ++y) h[x * B + y] = src[x * stride + y];
    }
    while (n % 2 == 0) {
        const int s = B / n;
        // B = 16 and 32 as fdct_cols (the scalar build: one row a vector).
        const float* d = h + (n - 1) * B;
        bool dft = false;
        if (B == 16) dft = fdct_odd_level<16, kNativeFloats < 16 ? kNativeFloats : 16>(d, -B, n, out);
        if (B == 32) dft = fdct_odd_level<32, kNativeFloats < 32 ? kNativeFloats : 32>(d, -B, n, out);
        if (!dft) dots(d, -B, n / 2, s, 2 * s, n / 2);
        n /= 2;
        if (n % 2 != 0) break;
        for (int x = 0; x < n / 2; ++x)
            for (int y = 0; y < B; ++y) {
                const float a = h[x * B + y], b = h[(n - 1 - x) * B + y];
                h[x * B + y] = a + b;
                h[(n - 1 - x) * B + y] = a - b;
            }
    }
    dots(h, B, n, 0, B / n, n);
}

// Inverse: out row x = sum_u C[u][x] * in row u, over the first `rows`
// input rows only (rounded up to even for B even, so those rows must be
// readable): the caller knows the rest are zero, and leaving out terms that
// are exact zeros changes at most the sign of a zero result.
// Decoded blocks are sparse (at q75 a 32x32 block rarely has non-zeros past
// its first few rows and columns), so this makes the inverse transform cost
// follow the block's content.
//
// Blocks below kIdctRecMinB take one even/odd split: rows x and B-1-x share the
// even-u and odd-u partial sums (E + O and E - O).
template <int B>
static inline void idct_cols_split1(const float* __restrict in, const float* __restrict C,
                                    int rows, int cend, float* __restrict out) {
    constexpr int W = B < kNativeFloats ? B : kNativeFloats;  // columns per chunk
    constexpr int G = B / 2 < 4 ? B / 2 : 4;  // outputs per group: 2G accumulators
    using V = vf<W>;
    const int pairs = (rows + 1) / 2;  // input rows taken in (even, odd) pairs
#pragma GCC unroll 8
    for (int c0 = 0; c0 < cend; c0 += W) {
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

// Wide blocks (even B >= kIdctRecMinB) split recursively, the transpose of the
// forward partial butterfly: at size n (stride s = B/n) the odd inputs
// u = s (2j + 1) give O[x] = sum_j C[u][x] in_u for x < n/2, the even ones
// are an inverse of size n/2, and y_n[x] = E[x] + O[x],
// y_n[n-1-x] = E[x] - O[x]. B = 32 over all rows takes ~1/3 fewer
// products than one split. A level whose odd inputs all lie past `rows`
// (then so do those of every smaller level) becomes the base: a plain dot
// product over its inputs below `rows`, so sparse blocks skip whole levels.
// Every output element of a level is acc = d[0] c[0], acc += d[t] c[t] for
// t ascending, then one add or subtract with E; idct_cols_any does the same.
struct IdctPlan {
    int base;  // size of the base level (its stride B / base)
    int terms;  // inputs of the base level below `rows`
};

static inline int idct_odd_terms(int B, int n, int rows) {
    const int s = B / n, t = (rows + s - 1) / s;  // inputs s k < rows
    return (t / 2 < n / 2) ? t / 2 : n / 2;
}

// Splitting below size 4, or a 16x16 block at all, measured slower: those
// levels are a few products each, less than the trips through h they cost.
static constexpr int kIdctMinBase = 4;
static constexpr int kIdctRecMinB = 32;

static inline IdctPlan idct_plan(int B, int rows) {
    int n = B;
    while (n % 2 == 0 && n > kIdctMinBase && idct_odd_terms(B, n, rows) > 0) n /= 2;
    const int s = B / n, t = (rows + s - 1) / s;
    return {n, t < n ? t : n};
}

// Outputs x0 + j (j < count) of one level: the dot product over m inputs
// (rows d + t ds, coefficients c + t ds + x); with `e`, stored as e[x] + acc
// to dst row x and e[x] - acc to dst row n-1-x (dst may be e: row x of e is
// read before it is written), else acc to dst row x. G rows x NC vectors per
// step, as fdct_dots.
template <int B, int G, int NC, bool Butterfly>
static inline void idct_dots(const float* __restrict d, const float* __restrict c, int64_t ds,
                             int m, int x0, int count, int n, int cb, int ce, const float* e,
                             float* dst) {
    constexpr int W = B < kNativeFloats ? B : kNativeFloats;
    using V = vf<W>;
    for (int j = 0; j < count; j += G) {
        const int x = x0 + j;
        for (int c0 = cb; c0 < ce; c0 += NC * W) {
            V acc[G][NC];
#pragma GCC unroll 8
            for (int k = 0; k < NC; ++k) {
                const V v = vload<W>(d + c0 + k * W);
#pragma GCC unroll 8
                for (int g = 0; g < G; ++g) acc[g][k] = v * c[x + g];
            }
#pragma GCC unroll 4
            for (int t = 1; t < m; ++t) {
                V v[NC];
#pragma GCC unroll 8
                for (int k = 0; k < NC; ++k) v[k] = vload<W>(d + t * ds + c0 + k * W);
#pragma GCC unroll 8
                for (int g = 0; g < G; ++g) {
                    const float cf = c[t * ds + x + g];
#pragma GCC unroll 8
                    for (int k = 0; k < NC; ++k) acc[g][k] += v[k] * cf;
                }
            }
#pragma GCC unroll 8
            for (int g = 0; g < G; ++g)
#pragma GCC unroll 8
                for (int k = 0; k < NC; ++k) {
                    const int off = c0 + k * W;
                    if constexpr (Butterfly) {
                        const V ev = vload<W>(e + (x + g) * B + off);
                        vstore<W>(dst + (x + g) * B + off, ev + acc[g][k]);
                        vstore<W>(dst + (n - 1 - x - g) * B + off, ev - acc[g][k]);
                    } else {
                        vstore<W>(dst + (x + g) * B + off, acc[g][k]);
                    }
                }
        }
    }
}

template <int B, bool Butterfly>
static inline void idct_dots_any_count(const float* d, const float* c, int64_t ds, int m,
                                       int count, int n, int cend, const float* e, float* dst) {
    constexpr int W = B < kNativeFloats ? B : kNativeFloats;
    constexpr int NC = B / W < 2 ? B / W : 2;
    constexpr int G = 8 / NC < 4 ? 8 / NC : 4;
    const int main = count - count % G, cmain = cend - cend % (NC * W);
    idct_dots<B, G, NC, Butterfly>(d, c, ds, m, 0, main, n, 0, cmain, e, dst);
    idct_dots<B, 1, NC, Butterfly>(d, c, ds, m, main, count - main, n, 0, cmain, e, dst);
    if (cmain == cend) return;  // a last single vector of columns
    idct_dots<B, G, 1, Butterfly>(d, c, ds, m, 0, main, n, cmain, cend, e, dst);
    idct_dots<B, 1, 1, Butterfly>(d, c, ds, m, main, count - main, n, cmain, cend, e, dst);
}

template <int B>
static void idct_cols(const float* __restrict in, const float* __restrict C, int rows,
                      int cols, float* __restrict out) {
    constexpr int W = B < kNativeFloats ? B : kNativeFloats;
    const int cend = (cols + W - 1) / W * W;
    if constexpr (B < kIdctRecMinB) return idct_cols_split1<B>(in, C, rows, cend, out);
    alignas(64) float h[B * B];
    const IdctPlan p = idct_plan(B, rows);
    {
        const int s = B / p.base;
        idct_dots_any_count<B, false>(in, C, int64_t(s) * B, p.terms, p.base, p.base, cend, nullptr,
                                      p.base == B ? out : h);
    }
    for (int n = 2 * p.base; n <= B; n *= 2) {
        const int s = B / n;
        idct_dots_any_count<B, true>(in + s * B, C + s * B, int64_t(2 * s) * B,
                                     idct_odd_terms(B, n, rows), n / 2, n, cend, h,
                                     n == B ? out : h);
    }
}

static void idct_cols_any(int B, const float* __restrict in, const float* __restrict C, int rows,
                          float* __restrict out, float* __restrict h) {
    // The same operations as idct_cols (either kind), one float at a time.
    // h: B*B floats.
    const auto dot = [&](const float* d, const float* c, int64_t ds, int m, int x,
                         float* acc) {
        for (int v = 0; v < B; ++v) acc[v] = d[v] * c[x];
        for (int t = 1; t < m; ++t)
            for (int v = 0; v < B; ++v) acc[v] += d[t * ds + v] * c[t * ds + x];
    };
    if (B % 2 == 0 && B >= kIdctRecMinB) {
        const IdctPlan p = idct_plan(B, rows);
        const int sb = B / p.base;
        float* base = p.base == B ? out : h;
        for (int x = 0; x < p.base; ++x) dot(in, C, int64_t(sb) * B, p.terms, x, base + x * B);
        for (int n = 2 * p.base; n <= B; n *= 2) {
            const int s = B / n, m = idct_odd_terms(B, n, rows);
            float* dst = n == B ? out : h;
            for (int x = 0; x < n / 2; ++x) {
                float* o = h + (n - 1 - x) * B;  // free until this level writes it
                dot(in + s * B, C + s * B, int64_t(2 * s) * B, m, x, o);
                for (int v = 0; v < B; ++v) {
                    const float a = h[x * B + v], b = o[v];
                    dst[x * B + v] = a + b;
                    dst[(n - 1 - x) * B + v] = a - b;
                }
            }
        }
        return;
    }
    if (B % 2 == 0) {  // the one even/odd split of idct_cols_split1
        const int pairs = (rows + 1) / 2;
        float* __restrict ev = h;
        float* __restrict od = h + B;
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

// f(std::integral_constant<int, B>()) for the block sizes that have
// fixed-size templates (4, 8, 16, 32), f(std::integral_constant<int, 0>())
// for any other: the one dispatch every kernel entry point makes.
template <typename F>
static inline decltype(auto) with_block_size(int block, F&& f) {
    switch (kFixedSizes ? block : 0) {
        case 4: return f(std::integral_constant<int, 4>());
        case 8: return f(std::integral_constant<int, 8>());
        case 16: return f(std::integral_constant<int, 16>());
        case 32: return f(std::integral_constant<int, 32>());
        default: return f(std::integral_constant<int, 0>());
    }
}

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
    with_block_size(t.block, [&](auto fixed) {
        constexpr int FB = decltype(fixed)::value;
        if constexpr (FB != 0) {
            fdct_t_fixed<FB>(src, stride, t.c, outT);
        } else {
            const int B = t.block;
            float* a = scratch;
            float* at = a + B * B;
            float* eo = at + B * B;
            fdct_cols_any(B, src, stride, t.c, a, eo);
            transpose(B, a, at);
            fdct_cols_any(B, at, B, t.c, outT, eo);
        }
    });
}

// out[j * os + i] = in[i * B + j] for j < jn (rounded up to 8 where tiled).
static inline void transpose_rows(int B, const float* __restrict in, int jn,
                                  float* __restrict out, int64_t os) {
#if defined(__AVX2__)
    if (B % 8 == 0) {
        for (int i = 0; i < B; i += 8)
            for (int j = 0; j < jn; j += 8) transpose8x8(in + i * B + j, B, out + j * os + i, os);
        return;
    }
#endif
    for (int i = 0; i < B; ++i)
        for (int j = 0; j < jn; ++j) out[j * os + i] = in[i * B + j];
}

// B = 8 without transposes, over a box of R rows (even) and K columns of D
// known at compile time: E = D C row by row (E[u] = sum_v D[u][v] C[v], a
// vector over the output column y), then output row x = sum_u C[u][x] E[u],
// rows x and 7 - x sharing the even-u and odd-u partial sums. Decoded blocks
// hold their non-zeros in small boxes (at q75 most within the first 2-4 rows
// and columns): a 2x2 box takes 12 products and 10 adds, where the separable
// passes cost two 8x8 transposes and 8 rows of each pass. Terms outside the
// box that are zero anyway only change the sign of a zero result.
template <int R, int K>
static inline void idct8_box(const float* __restrict d, const float* __restrict C,
                             float* __restrict dst, int64_t stride) {
    static_assert(R % 2 == 0 && R >= 2 && R <= 8 && K >= 1 && K <= 8, "box within the block");
    constexpr int W = 8 < kNativeFloats ? 8 : kNativeFloats;
    using V = vf<W>;
#pragma GCC unroll 2
    for (int c0 = 0; c0 < 8; c0 += W) {
        V e[R];
#pragma GCC unroll 8
        for (int u = 0; u < R; ++u) {
            V acc = vload<W>(C + c0) * d[u * 8];
#pragma GCC unroll 8
            for (int v = 1; v < K; ++v) acc += vload<W>(C + v * 8 + c0) * d[u * 8 + v];
            e[u] = acc;
        }
#pragma GCC unroll 4
        for (int x = 0; x < 4; ++x) {
            V ev = e[0] * C[x], od = e[1] * C[8 + x];
#pragma GCC unroll 4
            for (int u = 2; u < R; u += 2) {
                ev += e[u] * C[u * 8 + x];
                od += e[u + 1] * C[(u + 1) * 8 + x];
            }
            vstore<W>(dst + x * stride + c0, ev + od);
            vstore<W>(dst + (7 - x) * stride + c0, ev - od);
        }
    }
}

// The second pass of the B = 16 and 32 inverse without transposes: output
// row x = sum_v a[x][v] C[v] (a vector over the column y; a[x][v] broadcast),
// columns y and B-1-y sharing the even-v and odd-v partial sums
// (C[v][B-1-y] = (-1)^v C[v][y]), the mirrored half stored lane-reversed.
// Reads the first `cols` (even) columns of a (rows B floats apart). The
// separable form's two B x B transposes cost more than its recursive
// butterflies saved.
template <int B>
static inline void idct_rows_direct(const float* __restrict a, const float* __restrict C, int cols,
                                    float* __restrict dst, int64_t stride) {
    constexpr int H = B / 2;
    constexpr int W = H < kNativeFloats ? H : kNativeFloats;
    constexpr int NC = H / W;  // vectors per half row
    using V = vf<W>;
    for (int x = 0; x < B; ++x) {
        const float* ax = a + x * B;
        V ev[NC], od[NC];
#pragma GCC unroll 4
        for (int c = 0; c < NC; ++c) {
            ev[c] = vload<W>(C + c * W) * ax[0];
            od[c] = vload<W>(C + B + c * W) * ax[1];
        }
        for (int v = 2; v < cols; v += 2) {
#pragma GCC unroll 4
            for (int c = 0; c < NC; ++c) {
                ev[c] += vload<W>(C + v * B + c * W) * ax[v];
                od[c] += vload<W>(C + (v + 1) * B + c * W) * ax[v + 1];
            }
        }
        float* o = dst + x * stride;
#pragma GCC unroll 4
        for (int c = 0; c < NC; ++c) {
            vstore<W>(o + c * W, ev[c] + od[c]);
            vstore<W>(o + B - (c + 1) * W, vreverse(ev[c] - od[c]));
        }
    }
}

template <int B>
static inline void idct_fixed(const float* d, const float* C, int rows, int cols, float* dst,
                              int64_t stride) {
    if constexpr (B == 8) {
        idct8_box<8, 8>(d, C, dst, stride);  // the whole block (decode sorts by box)
    } else if constexpr (B == 16 || B == 32) {
        alignas(64) float a[B * B];
        idct_cols<B>(d, C, rows, cols, a);  // a = C^T D, its first `cols` columns
        idct_rows_direct<B>(a, C, cols, dst, stride);
    } else {
        alignas(64) float a[B * B], at[B * B];
        // Columns >= cols of a = C^T D are zero and the second pass never
        // reads them (they become rows >= cols of its input), so neither the
        // first pass nor the transpose forms them: a quarter of the work for
        // a 32x32 block with non-zeros in its first 8 columns.
        idct_cols<B>(d, C, rows, cols, a);   // a = C^T D
        transpose_rows(B, a, cols, at, B);
        idct_cols<B>(at, C, cols, B, a);     // C^T (C^T D)^T = P^T
        transpose_rows(B, a, B, dst, stride);
    }
}

// P = C^T D C of the natural-order block d, rows stored `stride` floats
// apart. Only d's first `rows` rows and `cols` columns may hold non-zeros.
static void idct_strided(const float* d, const BlockTables& t, int rows, int cols, float* dst,
                         int64_t stride, float* scratch) {
    with_block_size(t.block, [&](auto fixed) {
        constexpr int FB = decltype(fixed)::value;
        if constexpr (FB != 0) {
            idct_fixed<FB>(d, t.c, rows, cols, dst, stride);
        } else if (t.block == 8) {  // the scalar level: the same operations as idct_fixed<8>
            idct8_box<8, 8>(d, t.c, dst, stride);
        } else if (t.block == 16 || t.block == 32) {  // likewise idct_fixed<16>, <32>
            float* a = scratch;
            idct_cols_any(t.block, d, t.c, rows, a, a + t.block * t.block);
            if (t.block == 16) idct_rows_direct<16>(a, t.c, cols, dst, stride);
            else idct_rows_direct<32>(a, t.c, cols, dst, stride);
        } else {
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
    });
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
