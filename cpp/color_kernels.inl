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

static void ycbcr_to_rgb(const float* __restrict y, const float* __restrict cb,
                         const float* __restrict cr, int64_t n, int up, uint8_t* __restrict rgb) {
    if (up) {
        // Two pixels share a chroma sample; the second loop handles an odd tail.
        const int64_t pairs = n / 2;
        for (int64_t j = 0; j < pairs; ++j) {
            const float b_ = cb[j], r_ = cr[j];
            const float dr = 1.402f * r_, dg = -0.344136f * b_ - 0.714136f * r_, db = 1.772f * b_;
            for (int k = 0; k < 2; ++k) {
                const float l = y[2 * j + k] + 128.0f;
                uint8_t* px = rgb + 3 * (2 * j + k);
                px[0] = to_u8(l + dr);
                px[1] = to_u8(l + dg);
                px[2] = to_u8(l + db);
            }
        }
        for (int64_t i = 2 * pairs; i < n; ++i) {
            const float b_ = cb[i >> 1], r_ = cr[i >> 1], l = y[i] + 128.0f;
            rgb[3 * i] = to_u8(l + 1.402f * r_);
            rgb[3 * i + 1] = to_u8(l + (-0.344136f * b_ - 0.714136f * r_));
            rgb[3 * i + 2] = to_u8(l + 1.772f * b_);
        }
        return;
    }
    for (int64_t i = 0; i < n; ++i) {
        const float b_ = cb[i], r_ = cr[i], l = y[i] + 128.0f;
        rgb[3 * i] = to_u8(l + 1.402f * r_);
        rgb[3 * i + 1] = to_u8(l + (-0.344136f * b_ - 0.714136f * r_));
        rgb[3 * i + 2] = to_u8(l + 1.772f * b_);
    }
}

static void y_to_grey(const float* __restrict y, int64_t n, uint8_t* __restrict grey) {
    for (int64_t i = 0; i < n; ++i) grey[i] = to_u8(y[i] + 128.0f);
}
