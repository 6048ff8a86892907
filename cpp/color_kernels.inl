// Colour conversion kernels (SPEC sections 2 and 7), compiled once per
// instruction set inside namespace dcts::DCTS_ISA_NS. Planes are centred
// (value - 128) so the DCT needs no separate level shift.

// Round half away from zero to int32, exactly, for |x| < 2^23: x - trunc(x)
// is exact there, so the comparison with 0.5 decides ties correctly (the
// usual floor(x + 0.5) misrounds 0.49999997). Vectorises to truncating converts.
static inline int32_t round_away(float x) {
    const int32_t i = static_cast<int32_t>(x);
    const float f = x - static_cast<float>(i);
    return i + static_cast<int32_t>(f >= 0.5f) - static_cast<int32_t>(f <= -0.5f);
}

static inline uint8_t to_u8(float x) {
    int32_t v = round_away(x);
    v = v < 0 ? 0 : v;
    v = v > 255 ? 255 : v;
    return static_cast<uint8_t>(v);
}

static void rgb_to_ycbcr(const uint8_t* __restrict rgb, int64_t n, float* __restrict y,
                         float* __restrict cb, float* __restrict cr) {
    for (int64_t i = 0; i < n; ++i) {
        const float r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
        y[i] = (0.299f * r + 0.587f * g + 0.114f * b) - 128.0f;
        cb[i] = -0.168736f * r - 0.331264f * g + 0.5f * b;
        cr[i] = 0.5f * r - 0.418688f * g - 0.081312f * b;
    }
}

static void grey_to_y(const uint8_t* __restrict grey, int64_t n, float* __restrict y) {
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(grey[i]) - 128.0f;
}

static void downsample2x2(const float* __restrict a, const float* __restrict b, int64_t n,
                          float* __restrict out) {
    for (int64_t i = 0; i < n; ++i)
        out[i] = (a[2 * i] + a[2 * i + 1] + b[2 * i] + b[2 * i + 1]) * 0.25f;
}

// Converts in chunks: planar R, G, B bytes first (loops that vectorise), then
// one interleaving pass, instead of three strided byte stores per pixel.
static void ycbcr_to_rgb(const float* __restrict y, const float* __restrict cb,
                         const float* __restrict cr, int64_t n, int up, uint8_t* __restrict rgb) {
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

static void y_to_grey(const float* __restrict y, int64_t n, uint8_t* __restrict grey) {
    for (int64_t i = 0; i < n; ++i) grey[i] = to_u8(y[i] + 128.0f);
}
