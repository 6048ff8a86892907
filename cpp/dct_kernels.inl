// Block DCT / IDCT kernels (SPEC section 3), compiled once per instruction
// set inside namespace dcts::DCTS_ISA_NS.
//
// D = C P C^T as two passes of rank-1 updates over contiguous rows: every
// inner loop runs over B independent outputs, so it vectorises for any B
// without reassociating a sum (bit-identical across instruction sets). Fixed
// sizes (4, 8, 16, 32) are templates so the compiler unrolls them into
// straight register code; other sizes take the runtime-B loop, which computes
// the same operations in the same order.

template <int B>
static inline void fdct_fixed(const float* __restrict src, int64_t stride, const float* __restrict C,
                              const float* __restrict CT, float* __restrict out) {
    using V = vf<B>;
    constexpr int H = B / 2;
    V e[H], o[H], tmp[B];
    // tmp = C * P. C[u][B-1-x] = (-1)^u C[u][x], so even rows of C only see
    // the sums of mirrored rows of P and odd rows only the differences:
    // half the multiplies.
#pragma GCC unroll 64
    for (int x = 0; x < H; ++x) {
        const V a = vload<B>(src + x * stride), b = vload<B>(src + (B - 1 - x) * stride);
        e[x] = a + b;
        o[x] = a - b;
    }
#pragma GCC unroll 64
    for (int u = 0; u < B; ++u) {
        const V* h = (u & 1) ? o : e;
        V acc = h[0] * C[u * B];
#pragma GCC unroll 64
        for (int x = 1; x < H; ++x) acc += h[x] * C[u * B + x];
        tmp[u] = acc;
    }
    // out = tmp * C^T: row u is a combination of the rows of C^T.
    V ct[B];
#pragma GCC unroll 64
    for (int y = 0; y < B; ++y) ct[y] = vload<B>(CT + y * B);
#pragma GCC unroll 64
    for (int u = 0; u < B; ++u) {
        V acc = ct[0] * lane<B>(tmp[u], 0);
#pragma GCC unroll 64
        for (int y = 1; y < B; ++y) acc += ct[y] * lane<B>(tmp[u], y);
        vstore<B>(out + u * B, acc);
    }
}

// tmp: 2*B*B floats (pass-1 output, then the mirrored sums and differences).
static void fdct_any(int B, const float* __restrict src, int64_t stride, const float* __restrict C,
                     const float* __restrict CT, float* __restrict out, float* __restrict tmp) {
    if (B % 2 == 0) {  // the same even/odd split as fdct_fixed, same operations
        const int H = B / 2;
        float* __restrict e = tmp + B * B;
        float* __restrict o = e + H * B;
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
            float* acc = tmp + u * B;
            for (int y = 0; y < B; ++y) acc[y] = h[y] * C[u * B];
            for (int x = 1; x < H; ++x) {
                const float c = C[u * B + x];
                for (int y = 0; y < B; ++y) acc[y] += h[x * B + y] * c;
            }
        }
    } else {
        for (int u = 0; u < B; ++u) {
            float* acc = tmp + u * B;
            for (int y = 0; y < B; ++y) acc[y] = src[y] * C[u * B];
            for (int x = 1; x < B; ++x) {
                const float c = C[u * B + x];
                const float* p = src + x * stride;
                for (int y = 0; y < B; ++y) acc[y] += p[y] * c;
            }
        }
    }
    for (int u = 0; u < B; ++u) {
        float* acc = out + u * B;
        for (int v = 0; v < B; ++v) acc[v] = CT[v] * tmp[u * B];
        for (int y = 1; y < B; ++y) {
            const float t = tmp[u * B + y];
            const float* ct = CT + y * B;
            for (int v = 0; v < B; ++v) acc[v] += ct[v] * t;
        }
    }
}

// P = C^T D C: tmp = C^T D, out = tmp C.
template <int B>
static inline void idct_fixed(const float* __restrict in, const float* __restrict C,
                              float* __restrict dst, int64_t stride, float bias) {
    using V = vf<B>;
    V d[B], c[B], tmp[B];
#pragma GCC unroll 64
    for (int u = 0; u < B; ++u) {
        d[u] = vload<B>(in + u * B);
        c[u] = vload<B>(C + u * B);
    }
    // tmp row x = sum_u C[u][x] * D row u. By the symmetry of C, rows x and
    // B-1-x share the even-u and odd-u partial sums (E + O and E - O).
#pragma GCC unroll 64
    for (int x = 0; x < B / 2; ++x) {
        V ev = d[0] * C[x], od = d[1] * C[B + x];
#pragma GCC unroll 64
        for (int u = 2; u < B; u += 2) {
            ev += d[u] * C[u * B + x];
            od += d[u + 1] * C[(u + 1) * B + x];
        }
        tmp[x] = ev + od;
        tmp[B - 1 - x] = ev - od;
    }
    // out row x = sum_v tmp[x][v] * C row v
#pragma GCC unroll 64
    for (int x = 0; x < B; ++x) {
        V acc = c[0] * lane<B>(tmp[x], 0);
#pragma GCC unroll 64
        for (int v = 1; v < B; ++v) acc += c[v] * lane<B>(tmp[x], v);
        vstore<B>(dst + x * stride, acc + bias);
    }
}

// tmp: 2*B*B + B floats.
static void idct_any(int B, const float* __restrict in, const float* __restrict C,
                     float* __restrict dst, int64_t stride, float bias, float* __restrict tmp) {
    if (B % 2 == 0) {  // the same even/odd split as idct_fixed, same operations
        float* __restrict ev = tmp + B * B + B;
        float* __restrict od = ev + B;
        for (int x = 0; x < B / 2; ++x) {
            for (int v = 0; v < B; ++v) {
                ev[v] = in[v] * C[x];
                od[v] = in[B + v] * C[B + x];
            }
            for (int u = 2; u < B; u += 2) {
                const float ce = C[u * B + x], co = C[(u + 1) * B + x];
                const float* de = in + u * B;
                const float* dd = in + (u + 1) * B;
                for (int v = 0; v < B; ++v) {
                    ev[v] += de[v] * ce;
                    od[v] += dd[v] * co;
                }
            }
            for (int v = 0; v < B; ++v) {
                tmp[x * B + v] = ev[v] + od[v];
                tmp[(B - 1 - x) * B + v] = ev[v] - od[v];
            }
        }
    } else {
        for (int x = 0; x < B; ++x) {
            float* acc = tmp + x * B;
            for (int v = 0; v < B; ++v) acc[v] = in[v] * C[x];
            for (int u = 1; u < B; ++u) {
                const float c = C[u * B + x];
                const float* d = in + u * B;
                for (int v = 0; v < B; ++v) acc[v] += d[v] * c;
            }
        }
    }
    float* acc = tmp + B * B;
    for (int x = 0; x < B; ++x) {
        for (int y = 0; y < B; ++y) acc[y] = C[y] * tmp[x * B];
        for (int v = 1; v < B; ++v) {
            const float t = tmp[x * B + v];
            const float* c = C + v * B;
            for (int y = 0; y < B; ++y) acc[y] += c[y] * t;
        }
        float* o = dst + x * stride;
        for (int y = 0; y < B; ++y) o[y] = acc[y] + bias;
    }
}

// scratch: at least B*B + B floats.
// The scalar build runs every size through the runtime-B loops (the unrolled
// templates only pay off with vector registers); both compute identical results.
#if defined(DCTS_SCALAR_LANES)
static constexpr bool kFixedSizes = false;
#else
static constexpr bool kFixedSizes = true;
#endif

static void fdct_strided(const float* src, int64_t stride, const BlockTables& t, float* out,
                         float* scratch) {
    switch (kFixedSizes ? t.block : 0) {
        case 4: fdct_fixed<4>(src, stride, t.c, t.ct, out); break;
        case 8: fdct_fixed<8>(src, stride, t.c, t.ct, out); break;
        case 16: fdct_fixed<16>(src, stride, t.c, t.ct, out); break;
        case 32: fdct_fixed<32>(src, stride, t.c, t.ct, out); break;
        default: fdct_any(t.block, src, stride, t.c, t.ct, out, scratch);
    }
}

static void idct_strided(const float* in, const BlockTables& t, float* dst, int64_t stride,
                         float bias, float* scratch) {
    switch (kFixedSizes ? t.block : 0) {
        case 4: idct_fixed<4>(in, t.c, dst, stride, bias); break;
        case 8: idct_fixed<8>(in, t.c, dst, stride, bias); break;
        case 16: idct_fixed<16>(in, t.c, dst, stride, bias); break;
        case 32: idct_fixed<32>(in, t.c, dst, stride, bias); break;
        default: idct_any(t.block, in, t.c, dst, stride, bias, scratch);
    }
}

static void fdct(const float* src, const BlockTables& t, float* out, float* scratch) {
    fdct_strided(src, t.block, t, out, scratch);
}

static void idct(const float* src, const BlockTables& t, float* out, float* scratch) {
    idct_strided(src, t, out, t.block, 0.0f, scratch);
}
