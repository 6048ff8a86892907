// Colour conversion kernels (SPEC sections 2 and 7), compiled once per
// instruction set inside namespace dcts::DCTS_ISA_NS. Planes are centred
// (value - 128) so the DCT needs no separate level shift.
//
// Each kernel is a portable loop (the scalar level, NEON, and every tail)
// plus, where the build has AVX2, a hand-written body for the bulk of the
// row. The compiler vectorises these loops poorly (byte interleaving, the
// rounding, 2x chroma replication), so the AVX2 bodies spell them out, with
// the same IEEE operations in the same order lane by lane: every level's
// bytes stay identical to the scalar level's. The AVX2 bodies are also what
// the avx512 level runs, so they are the code tested on AVX2-only machines.

// What runs the colour stages at this level (Kernels::stages).
#if defined(__AVX2__)
static constexpr const char* kColorKernels = "avx2";  // the avx512 level too
#else
static constexpr const char* kColorKernels = DCTS_ISA_NAME;
#endif

// Round half away from zero to int32, exactly, for |x| < 2^23: x - trunc(x)
// is exact there, so the comparison with 0.5 decides ties correctly (the
// usual floor(x + 0.5) misrounds 0.49999997). Vectorises to truncating converts.
static inline int32_t round_away(float x) {
    const int32_t i = static_cast<int32_t>(x);
    const float f = x - static_cast<float>(i);
    return i + static_cast<int32_t>(f >= 0.5f) - static_cast<int32_t>(f <= -0.5f);
}

// round_away clamped to [0, 255], in three vector operations (add, min,
// truncate). With h = 0.49999997f (0.5 - 2^-25), trunc(fl(x + h)) rounds
// half away from zero for every float 0 <= x < 2^31: at a tie k + 0.5 the sum
// rounds up onto k + 1 (k = 0: 1 - 2^-25 is a tie between 1 - 2^-24 and 1,
// and 1 is even), and below a tie it stays below k + 1, where adding 0.5
// would round 0.49999997 up to 1. Checked over all 2^32 floats against
// round_away then clamp (tests/test_codec_stages.py checks the kernels at
// the edges). Below 0 everything truncates to <= 0 and clamps to 0. The
// min with 256 keeps the truncation in range; it takes minps's order
// (x < 256 ? x : 256), so NaN maps to 255 at every level.
static constexpr float kHalfDown = 0x1.fffffep-2f;  // 0.49999997f
static inline uint8_t to_u8(float x) {
    const float s = x + kHalfDown;
    const float t = s < 256.0f ? s : 256.0f;
    if (!(t >= 1.0f)) return 0;
    const int32_t v = static_cast<int32_t>(t);
    return static_cast<uint8_t>(v > 255 ? 255 : v);
}

// The JFIF forward transform, centred; shared by every loop below so the
// operation order is written down once. Luma is the exact integer
// 1000 (Y - 128) = 299 R + 587 G + 114 B - 128000 times 0.001f: two
// multiply-adds in the AVX2 bodies where float products and sums took
// twice the operations, and one rounding instead of five (over all 2^24
// colours: error <= 9.9e-6, mean 2.0e-6; the float sum's 2.9e-5, 4.4e-6).
static inline float luma_of(int r, int g, int b) {
    return static_cast<float>(299 * r + 587 * g + 114 * b - 128000) * 0.001f;
}
static inline float cb_of(float r, float g, float b) {
    return -0.168736f * r - 0.331264f * g + 0.5f * b;
}
static inline float cr_of(float r, float g, float b) {
    return 0.5f * r - 0.418688f * g - 0.081312f * b;
}

#if defined(__AVX2__)
// ---- AVX2 building blocks -----------------------------------------------------

static inline __m256 splat(float v) { return _mm256_set1_ps(v); }

// pshufb controls, built at compile time rather than typed out as tables.
// to32[c]: channel c of pixels 0-3 of a 16-byte lane of packed RGB -> the
// low byte of dwords 0-3, zero-extended (bit 7 set = zero byte).
// interleave[k][c]: lane of planar R, G, B bytes (pixels 0-15) -> bytes
// 16k..16k+15 of their packed RGB, taking channel c's bytes.
struct ColorShuffles {
    alignas(32) int8_t to32[3][32];
    alignas(32) int8_t to_rg[32];  // pixels 0-3 of a lane -> words R0, G0, R1, G1, ...
    alignas(32) int8_t interleave[3][3][32];
};
static constexpr ColorShuffles make_color_shuffles() {
    ColorShuffles s{};
    for (int c = 0; c < 3; ++c)
        for (int j = 0; j < 32; ++j) {
            const int d = (j & 15) >> 2;
            s.to32[c][j] = static_cast<int8_t>((j & 3) == 0 ? 3 * d + c : -128);
        }
    for (int j = 0; j < 32; ++j) {
        const int d = (j & 15) >> 2, k = j & 3;
        s.to_rg[j] = static_cast<int8_t>(k == 0 ? 3 * d : k == 2 ? 3 * d + 1 : -128);
    }
    for (int k = 0; k < 3; ++k)
        for (int c = 0; c < 3; ++c)
            for (int j = 0; j < 32; ++j) {
                const int p = 16 * k + (j & 15);
                s.interleave[k][c][j] = static_cast<int8_t>(p % 3 == c ? p / 3 : -128);
            }
    return s;
}
static constexpr ColorShuffles kShuf = make_color_shuffles();

static inline __m256i shuffle_ctl(const int8_t* m) {
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
}

// to_u8 before its clamp, lane by lane: the same add, min and truncate (a
// result below 0 clamps to 0 in pack_u8, 256 to 255).
static inline __m256i round_half_up8(__m256 x) {
    return _mm256_cvttps_epi32(_mm256_min_ps(_mm256_add_ps(x, splat(kHalfDown)), splat(256.0f)));
}

// Four vectors of 8 int32 (pixels 0-31 in order) -> 32 bytes in order. The
// signed then unsigned saturating packs are exactly to_u8's clamp; they work
// per 128-bit lane, so the dwords come out lane-interleaved and one permute
// puts them back.
static inline __m256i pack_u8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i bytes = _mm256_packus_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// 32 pixels of planar R, G, B bytes -> 96 bytes of packed RGB. Each 128-bit
// lane interleaves its own 16 pixels into 48 bytes; the lanes' thirds are
// then regrouped for three full-width stores.
static inline void store_rgb32(uint8_t* out, __m256i r, __m256i g, __m256i b) {
    __m256i o[3];
    for (int k = 0; k < 3; ++k)
        o[k] = _mm256_or_si256(
            _mm256_or_si256(_mm256_shuffle_epi8(r, shuffle_ctl(kShuf.interleave[k][0])),
                            _mm256_shuffle_epi8(g, shuffle_ctl(kShuf.interleave[k][1]))),
            _mm256_shuffle_epi8(b, shuffle_ctl(kShuf.interleave[k][2])));
    __m256i* dst = reinterpret_cast<__m256i*>(out);
    _mm256_storeu_si256(dst, _mm256_permute2x128_si256(o[0], o[1], 0x20));
    _mm256_storeu_si256(dst + 1, _mm256_blend_epi32(o[0], o[2], 0x0F));
    _mm256_storeu_si256(dst + 2, _mm256_permute2x128_si256(o[1], o[2], 0x31));
}

// 16 bytes of packed RGB from lo and from hi, one per 128-bit lane: pixels
// 0-3 of each lane are its first 12 bytes.
static inline __m256i load_rgb_lanes(const uint8_t* lo, const uint8_t* hi) {
    return _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lo))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(hi)), 1);
}
// Pixels 0-3 of each lane -> each channel as 8 int32 (lo lane's pixels first).
struct Rgb8i {
    __m256i r, g, b;
};
static inline Rgb8i rgb8_of(__m256i v) {
    return {_mm256_shuffle_epi8(v, shuffle_ctl(kShuf.to32[0])),
            _mm256_shuffle_epi8(v, shuffle_ctl(kShuf.to32[1])),
            _mm256_shuffle_epi8(v, shuffle_ctl(kShuf.to32[2]))};
}

// cb_of, cr_of on 8 lanes, in the scalar operation order (luma: luma8i).
static inline __m256 cb8(__m256 r, __m256 g, __m256 b) {
    const __m256 s =
        _mm256_sub_ps(_mm256_mul_ps(splat(-0.168736f), r), _mm256_mul_ps(splat(0.331264f), g));
    return _mm256_add_ps(s, _mm256_mul_ps(splat(0.5f), b));
}
static inline __m256 cr8(__m256 r, __m256 g, __m256 b) {
    const __m256 s = _mm256_sub_ps(_mm256_mul_ps(splat(0.5f), r), _mm256_mul_ps(splat(0.418688f), g));
    return _mm256_sub_ps(s, _mm256_mul_ps(splat(0.081312f), b));
}
static inline __m256 to_f(__m256i v) { return _mm256_cvtepi32_ps(v); }
// luma_of on 8 lanes from R, G as words (R0, G0, R1, G1, ...) and B as
// int32 (B0, 0, B1, 0, ... as words): 299 R + 587 G + 114 B in two
// multiply-adds.
static inline __m256 luma8i(__m256i rg, __m256i b) {
    const __m256i s = _mm256_add_epi32(_mm256_madd_epi16(rg, _mm256_set1_epi32(587 << 16 | 299)),
                                       _mm256_madd_epi16(b, _mm256_set1_epi32(114)));
    return _mm256_mul_ps(to_f(_mm256_sub_epi32(s, _mm256_set1_epi32(128000))), splat(0.001f));
}
#endif  // __AVX2__

// ---- encode: RGB -> centred planes ----------------------------------------------

static void rgb_to_ycbcr(const uint8_t* __restrict rgb, int64_t n, float* __restrict y,
                         float* __restrict cb, float* __restrict cr) {
    int64_t i = 0;
#if defined(__AVX2__)
    for (; i + 10 <= n; i += 8) {  // +10: the loads read 28 bytes of 8 pixels
        const uint8_t* p = rgb + 3 * i;
        const __m256i px = load_rgb_lanes(p, p + 12);
        const Rgb8i v = rgb8_of(px);
        const __m256 r = to_f(v.r), g = to_f(v.g), b = to_f(v.b);
        _mm256_storeu_ps(y + i, luma8i(_mm256_shuffle_epi8(px, shuffle_ctl(kShuf.to_rg)), v.b));
        _mm256_storeu_ps(cb + i, cb8(r, g, b));
        _mm256_storeu_ps(cr + i, cr8(r, g, b));
    }
#endif
    for (; i < n; ++i) {
        y[i] = luma_of(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
        const float r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
        cb[i] = cb_of(r, g, b);
        cr[i] = cr_of(r, g, b);
    }
}

// Two rows of 2n pixels -> their two luma rows and n samples of 4:2:0 chroma.
// The transform is affine, so the chroma of the 2x2 mean is the 2x2 mean of
// the chroma: it is computed once per box from the exact integer sums of R,
// G and B (times 0.25, also exact) - a quarter of the chroma arithmetic, and
// closer to the real-valued mean than averaging four rounded floats.
static void rgb_to_ycbcr420(const uint8_t* __restrict rgb0, const uint8_t* __restrict rgb1,
                            int64_t n, float* __restrict y0, float* __restrict y1,
                            float* __restrict cb, float* __restrict cr) {
    int64_t j = 0;
#if defined(__AVX2__)
    // 8 boxes (16 pixels a row) a step. Pixels are loaded as {0-3 | 8-11} and
    // {4-7 | 12-15}, the order in which the lane-wise horizontal add of the
    // box sums leaves the 8 boxes in sequence; luma is put back in order
    // with two lane permutes. +9: the last load reads 52 bytes of 16 pixels.
    for (; j + 9 <= n; j += 8) {
        const int64_t x = 2 * j;
        const uint8_t* rows[2] = {rgb0 + 3 * x, rgb1 + 3 * x};
        float* ys[2] = {y0 + x, y1 + x};
        __m256i srg[2], sbl[2];  // the two rows' sums: R | G << 16 and B, halves a and b
        for (int t = 0; t < 2; ++t) {
            const uint8_t* p = rows[t];
            const __m256i v[2] = {load_rgb_lanes(p, p + 24), load_rgb_lanes(p + 12, p + 36)};
            __m256 yv[2];
            for (int h = 0; h < 2; ++h) {
                const __m256i rg = _mm256_shuffle_epi8(v[h], shuffle_ctl(kShuf.to_rg));
                const __m256i bl = _mm256_shuffle_epi8(v[h], shuffle_ctl(kShuf.to32[2]));
                yv[h] = luma8i(rg, bl);
                srg[h] = t == 0 ? rg : _mm256_add_epi16(srg[h], rg);
                sbl[h] = t == 0 ? bl : _mm256_add_epi32(sbl[h], bl);
            }
            _mm256_storeu_ps(ys[t], _mm256_permute2f128_ps(yv[0], yv[1], 0x20));
            _mm256_storeu_ps(ys[t] + 8, _mm256_permute2f128_ps(yv[0], yv[1], 0x31));
        }
        // Box sums: R | G << 16 of two pixels add as one int32 (each sum <= 1020).
        const __m256i rgsum = _mm256_hadd_epi32(srg[0], srg[1]);
        __m256 m[3];  // box means
        m[0] = _mm256_mul_ps(to_f(_mm256_and_si256(rgsum, _mm256_set1_epi32(0xffff))), splat(0.25f));
        m[1] = _mm256_mul_ps(to_f(_mm256_srli_epi32(rgsum, 16)), splat(0.25f));
        m[2] = _mm256_mul_ps(to_f(_mm256_hadd_epi32(sbl[0], sbl[1])), splat(0.25f));
        _mm256_storeu_ps(cb + j, cb8(m[0], m[1], m[2]));
        _mm256_storeu_ps(cr + j, cr8(m[0], m[1], m[2]));
    }
#endif
    for (; j < n; ++j) {
        const uint8_t* p = rgb0 + 6 * j;
        const uint8_t* q = rgb1 + 6 * j;
        y0[2 * j] = luma_of(p[0], p[1], p[2]);
        y0[2 * j + 1] = luma_of(p[3], p[4], p[5]);
        y1[2 * j] = luma_of(q[0], q[1], q[2]);
        y1[2 * j + 1] = luma_of(q[3], q[4], q[5]);
        const float r = static_cast<float>(p[0] + p[3] + q[0] + q[3]) * 0.25f;
        const float g = static_cast<float>(p[1] + p[4] + q[1] + q[4]) * 0.25f;
        const float b = static_cast<float>(p[2] + p[5] + q[2] + q[5]) * 0.25f;
        cb[j] = cb_of(r, g, b);
        cr[j] = cr_of(r, g, b);
    }
}

static void grey_to_y(const uint8_t* __restrict grey, int64_t n, float* __restrict y) {
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(grey[i]) - 128.0f;
}

// ---- decode: centred planes -> RGB ----------------------------------------------

// Portable body: planar R, G, B bytes in chunks (loops that vectorise, e.g.
// on NEON), then one interleaving pass, instead of three strided byte stores
// per pixel.
static void ycbcr_to_rgb_loop(const float* __restrict y, const float* __restrict cb,
                              const float* __restrict cr, int64_t n, int up,
                              uint8_t* __restrict rgb) {
    constexpr int64_t kChunk = 256;
    alignas(64) float cbx[kChunk], crx[kChunk];
    alignas(64) uint8_t R[kChunk], G[kChunk], Bl[kChunk];
    for (int64_t x0 = 0; x0 < n; x0 += kChunk) {
        const int64_t m = n - x0 < kChunk ? n - x0 : kChunk;
        const float* yy = y + x0;
        if (up) {  // 2x replication: pixel x takes chroma sample x >> 1
            const float* cbs = cb + (x0 >> 1);
            const float* crs = cr + (x0 >> 1);
            for (int64_t i = 0; i < m; ++i) {
                cbx[i] = cbs[i >> 1];
                crx[i] = crs[i >> 1];
            }
        } else {
            for (int64_t i = 0; i < m; ++i) {
                cbx[i] = cb[x0 + i];
                crx[i] = cr[x0 + i];
            }
        }
        for (int64_t i = 0; i < m; ++i) {
            const float l = yy[i] + 128.0f, b_ = cbx[i], r_ = crx[i];
            R[i] = to_u8(l + 1.402f * r_);
            G[i] = to_u8(l + (-0.344136f * b_ - 0.714136f * r_));
            Bl[i] = to_u8(l + 1.772f * b_);
        }
        uint8_t* out = rgb + 3 * x0;
        for (int64_t i = 0; i < m; ++i) {
            out[3 * i] = R[i];
            out[3 * i + 1] = G[i];
            out[3 * i + 2] = Bl[i];
        }
    }
}

#if defined(__AVX2__)
// The chroma terms of R, G, B (the products and G's difference) of 32
// pixels from x. They depend on chroma alone: with up = 1 they are computed
// once per sample and replicated in registers - the same values the scalar
// loop computes per pixel from the replicated samples.
struct Terms32 {
    __m256 r[4], g[4], b[4];
};
static inline Terms32 chroma_terms32(const float* cb, const float* cr, int64_t x, int up) {
    const __m256i dup_lo = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    const __m256i dup_hi = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
    Terms32 t;
    for (int k = 0; k < (up ? 2 : 4); ++k) {
        const int64_t c = (x >> up) + 8 * k;
        const __m256 b_ = _mm256_loadu_ps(cb + c), r_ = _mm256_loadu_ps(cr + c);
        const __m256 vr = _mm256_mul_ps(splat(1.402f), r_);
        const __m256 vg = _mm256_sub_ps(_mm256_mul_ps(splat(-0.344136f), b_),
                                        _mm256_mul_ps(splat(0.714136f), r_));
        const __m256 vb = _mm256_mul_ps(splat(1.772f), b_);
        if (up) {
            t.r[2 * k] = _mm256_permutevar8x32_ps(vr, dup_lo);
            t.r[2 * k + 1] = _mm256_permutevar8x32_ps(vr, dup_hi);
            t.g[2 * k] = _mm256_permutevar8x32_ps(vg, dup_lo);
            t.g[2 * k + 1] = _mm256_permutevar8x32_ps(vg, dup_hi);
            t.b[2 * k] = _mm256_permutevar8x32_ps(vb, dup_lo);
            t.b[2 * k + 1] = _mm256_permutevar8x32_ps(vb, dup_hi);
        } else {
            t.r[k] = vr, t.g[k] = vg, t.b[k] = vb;
        }
    }
    return t;
}

// 32 luma samples and their chroma terms -> 96 bytes of RGB.
static inline void rgb32(const float* y, const Terms32& t, uint8_t* out) {
    __m256i R[4], G[4], B[4];
    for (int k = 0; k < 4; ++k) {
        const __m256 l = _mm256_add_ps(_mm256_loadu_ps(y + 8 * k), splat(128.0f));
        R[k] = round_half_up8(_mm256_add_ps(l, t.r[k]));
        G[k] = round_half_up8(_mm256_add_ps(l, t.g[k]));
        B[k] = round_half_up8(_mm256_add_ps(l, t.b[k]));
    }
    store_rgb32(out, pack_u8(R[0], R[1], R[2], R[3]), pack_u8(G[0], G[1], G[2], G[3]),
                pack_u8(B[0], B[1], B[2], B[3]));
}
#endif

static void ycbcr_to_rgb(const float* __restrict y, const float* __restrict cb,
                         const float* __restrict cr, int64_t n, int up, uint8_t* __restrict rgb) {
    int64_t x = 0;
#if defined(__AVX2__)
    for (; x + 32 <= n; x += 32) rgb32(y + x, chroma_terms32(cb, cr, x, up), rgb + 3 * x);
#endif
    // x is a multiple of 32 here, so the tail's chroma starts at x >> up.
    ycbcr_to_rgb_loop(y + x, cb + (x >> up), cr + (x >> up), n - x, up, rgb + 3 * x);
}

// Two pixel rows sharing one row of 4:2:0 chroma: ycbcr_to_rgb with up = 1
// on each, with the chroma terms computed once for both.
static void ycbcr420_to_rgb2(const float* __restrict y0, const float* __restrict y1,
                             const float* __restrict cb, const float* __restrict cr, int64_t n,
                             uint8_t* __restrict rgb0, uint8_t* __restrict rgb1) {
    int64_t x = 0;
#if defined(__AVX2__)
    for (; x + 32 <= n; x += 32) {
        const Terms32 t = chroma_terms32(cb, cr, x, 1);
        rgb32(y0 + x, t, rgb0 + 3 * x);
        rgb32(y1 + x, t, rgb1 + 3 * x);
    }
#endif
    ycbcr_to_rgb_loop(y0 + x, cb + (x >> 1), cr + (x >> 1), n - x, 1, rgb0 + 3 * x);
    ycbcr_to_rgb_loop(y1 + x, cb + (x >> 1), cr + (x >> 1), n - x, 1, rgb1 + 3 * x);
}

static void y_to_grey(const float* __restrict y, int64_t n, uint8_t* __restrict grey) {
    int64_t i = 0;
#if defined(__AVX2__)
    for (; i + 32 <= n; i += 32) {
        __m256i v[4];
        for (int k = 0; k < 4; ++k)
            v[k] = round_half_up8(_mm256_add_ps(_mm256_loadu_ps(y + i + 8 * k), splat(128.0f)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(grey + i), pack_u8(v[0], v[1], v[2], v[3]));
    }
#endif
    for (; i < n; ++i) grey[i] = to_u8(y[i] + 128.0f);
}
