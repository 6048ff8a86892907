// Adaptive binary range coder for the .dcts container (issue 4).
//
// A carry-less 32-bit binary arithmetic coder in the style of the PAQ/lpaq
// family: the interval [x1, x2] shrinks with each bit and a byte is shifted
// out whenever the top bytes of both ends agree. It never needs carry
// propagation, so the decoder reads exactly the bytes the encoder wrote
// (4 + one per shift), which is what lets the container demand that the
// payload is consumed to the last byte.
//
// Probabilities are 16-bit estimates of P(bit = 1) that adapt like a
// Krichevsky-Trofimov counter for the first kAdaptLimit observations (rate
// 1/(n+2)) and then as an exponential moving average with rate
// 1/(kAdaptLimit+2): fast to learn in the many rarely-used contexts, stable in
// the busy ones.
//
// Encoder and Decoder expose the same interface, `bit(ctx, b)`,
// `bit2(ctx1, ctx2, b)` and `bypass(b)`, all returning the bit. The encoder codes `b`; the decoder
// ignores it and returns what it decodes. The coefficient coder is written
// once, as a template over the coder, so both directions share every context
// decision by construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common.hpp"

namespace dcts::rc {

struct Bit {
    uint16_t p = 32768;  // P(bit = 1) * 65536
    uint16_t n = 0;      // observations so far, saturating at kAdaptLimit
};

constexpr int kAdaptLimit = 60;
constexpr uint32_t kMinP = 32, kMaxP = 65536 - 32;

struct RateTable {
    uint32_t r[kAdaptLimit + 1];
    constexpr RateTable() : r{} {
        for (int i = 0; i <= kAdaptLimit; ++i) r[i] = 65536u / uint32_t(i + 2);
    }
};
inline constexpr RateTable kRates{};

inline void update(Bit& b, int bit) {
    const uint32_t rate = kRates.r[b.n];
    uint32_t p = b.p;
    // (65536 - p) * rate < 2^16 * 2^15: fits in 32 bits.
    if (bit)
        p += ((65536u - p) * rate) >> 16;
    else
        p -= (p * rate) >> 16;
    // Keep every symbol codable: a context that was always 0 may still see a 1.
    p = p < kMinP ? kMinP : (p > kMaxP ? kMaxP : p);
    b.p = uint16_t(p);
    if (b.n < kAdaptLimit) ++b.n;
}

class Encoder {
public:
    static constexpr bool kEncoding = true;
    explicit Encoder(std::vector<uint8_t>& out) : out_(out) {}

    int bit(Bit& ctx, int b) {
        code(b, ctx.p);
        update(ctx, b);
        return b;
    }
    // Codes with the average of two contexts' estimates and updates both: a
    // fine context that learns slowly and a coarse one that learns fast.
    int bit2(Bit& c1, Bit& c2, int b) {
        const uint32_t p = (uint32_t(c1.p) + c2.p) >> 1;
        code(b, p);
        update(c1, b);
        update(c2, b);
        return b;
    }
    int bypass(int b) {
        code(b, 32768);
        return b;
    }
    // Writes x1 in full: any value in [x1, x2] decodes correctly, and writing
    // all four bytes makes the stream length exactly what the decoder reads.
    void finish() {
        for (int i = 0; i < 4; ++i) {
            out_.push_back(uint8_t(x1_ >> 24));
            x1_ <<= 8;
        }
    }

private:
    void code(int b, uint32_t p) {
        // x2 - x1 >= 1 after normalisation, and p < 65536, so x1 <= mid < x2.
        const uint32_t mid = x1_ + uint32_t((uint64_t(x2_ - x1_) * p) >> 16);
        if (b)
            x2_ = mid;
        else
            x1_ = mid + 1;
        while (((x1_ ^ x2_) & 0xff000000u) == 0) {
            out_.push_back(uint8_t(x2_ >> 24));
            x1_ <<= 8;
            x2_ = (x2_ << 8) | 255u;
        }
    }
    std::vector<uint8_t>& out_;
    uint32_t x1_ = 0, x2_ = 0xffffffffu;
};

class Decoder {
public:
    static constexpr bool kEncoding = false;
    Decoder(const uint8_t* data, size_t size) : d_(data), n_(size) {
        for (int i = 0; i < 4; ++i) x_ = (x_ << 8) | next();
    }

    int bit(Bit& ctx, int /*ignored*/) {
        const int b = decode(ctx.p);
        update(ctx, b);
        return b;
    }
    int bit2(Bit& c1, Bit& c2, int) {
        const int b = decode((uint32_t(c1.p) + c2.p) >> 1);
        update(c1, b);
        update(c2, b);
        return b;
    }
    int bypass(int /*ignored*/) { return decode(32768); }
    size_t consumed() const { return pos_; }

private:
    uint32_t next() {
        if (pos_ >= n_)
            fail("corrupt .dcts payload: the coded data ends before the coefficients do "
                 "(truncated or damaged file)");
        return d_[pos_++];
    }
    int decode(uint32_t p) {
        const uint32_t mid = x1_ + uint32_t((uint64_t(x2_ - x1_) * p) >> 16);
        const int b = x_ <= mid;
        if (b)
            x2_ = mid;
        else
            x1_ = mid + 1;
        while (((x1_ ^ x2_) & 0xff000000u) == 0) {
            x1_ <<= 8;
            x2_ = (x2_ << 8) | 255u;
            x_ = (x_ << 8) | next();
        }
        return b;
    }
    const uint8_t* d_;
    size_t n_, pos_ = 0;
    uint32_t x1_ = 0, x2_ = 0xffffffffu, x_ = 0;
};

}  // namespace dcts::rc
