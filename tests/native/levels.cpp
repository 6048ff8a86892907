// The bit-identity check of tests/test_codec_simd.py, in C++ with no Python:
// every SIMD level this build and CPU have must give output byte-identical to
// the scalar level. It exists for the levels CI's machine cannot run natively:
// tests/native/check_levels.sh cross-builds it for aarch64 and runs it under
// qemu-aarch64, which executes the NEON kernels instruction by instruction.
//
// Prints one line per level and a digest of the scalar outputs (FNV-1a over
// every output byte), so builds on two architectures can be compared too.
// Exit status: 0 if every level matched scalar, 1 otherwise.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "codec.hpp"
#include "common.hpp"
#include "kernels.hpp"
#include "quant.hpp"
#include "sparse.hpp"

namespace {

using namespace dcts;

struct Rng {  // splitmix64: the same numbers on every platform
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    uint8_t byte() { return uint8_t(next() >> 56); }
    // Uniform in [-a, a), from 24 random bits: exact in float on every platform.
    float uniform(float a) { return a * (float(int32_t(next() >> 40) - (1 << 23)) / float(1 << 23)); }
};

using Blob = std::vector<uint8_t>;

template <typename T>
Blob blob(const T* p, size_t n) {
    Blob b(n * sizeof(T));
    if (n) std::memcpy(b.data(), p, b.size());
    return b;
}

struct Image {
    int64_t h, w;
    int planes;
    std::vector<uint8_t> px;
};

// Noise; smooth shading with an edge and mild noise (natural-image-like
// statistics); flat blocks of every grey level and the same with one pixel
// per block one level up (quantiser ties: see quantiser_ties in
// tests/test_codec_simd.py).
std::vector<Image> test_images() {
    Rng rng{1};
    std::vector<Image> out;
    Image noise{37, 61, 3, {}};
    for (int64_t i = 0; i < noise.h * noise.w * 3; ++i) noise.px.push_back(rng.byte());
    out.push_back(noise);
    for (int planes : {3, 1}) {
        Image s{planes == 3 ? 203 : 77, planes == 3 ? 317 : 130, planes, {}};
        for (int64_t y = 0; y < s.h; ++y)
            for (int64_t x = 0; x < s.w; ++x)
                for (int c = 0; c < planes; ++c) {
                    double v = 128 + 90 * std::sin(0.021 * double(x * (c + 1)) + 0.013 * double(y)) +
                               (x > s.w / 2 + y / 3 ? 40 : -30) + (rng.byte() % 9) - 4.0;
                    s.px.push_back(uint8_t(v < 0 ? 0 : v > 255 ? 255 : v));
                }
        out.push_back(s);
    }
    return out;
}

std::vector<Image> tie_images(int b) {
    Image flat{16 * b, 16 * b, 3, {}}, corner;
    for (int64_t y = 0; y < flat.h; ++y)
        for (int64_t x = 0; x < flat.w; ++x) {
            const auto level = [&](int64_t yy, int64_t xx) { return uint8_t((yy / b) * 16 + xx / b); };
            // Channels: the grey ramp, flipped vertically, flipped horizontally.
            flat.px.push_back(level(y, x));
            flat.px.push_back(level(flat.h - 1 - y, x));
            flat.px.push_back(level(y, flat.w - 1 - x));
        }
    corner = flat;
    for (int64_t y = 0; y < flat.h; y += b)
        for (int64_t x = 0; x < flat.w; x += b) {
            uint8_t& p = corner.px[size_t((y * flat.w + x) * 3)];
            p = uint8_t(p + 1);
        }
    return {flat, corner};
}

void encode_decode(const Image& im, int b, int q, bool sub420, int32_t clip, std::vector<Blob>& out,
                   bool decode_too) {
    const Geometry g = make_geometry(im.h, im.w, im.planes, b, sub420);
    const CodecParams prm{b, q, sub420, clip};
    const std::vector<int32_t> seq = channel_sequence(NamedOrder::Frequency, im.planes, b);
    const SparseList s = encode(im.px.data(), g, prm, seq.data());
    const size_t n = s.size();
    out.push_back(blob(s.channel(), n));
    out.push_back(blob(s.position(), n));
    out.push_back(blob(s.value(), n));
    if (!decode_too) return;
    std::vector<uint8_t> img(im.px.size());
    for (size_t m : {n, n / 3}) {  // the whole list and a prefix
        decode(s.channel(), s.position(), s.value(), int64_t(m), g, prm, img.data());
        out.push_back(img);
    }
}

// The colour kernels alone on every vector-width remainder, on random
// planes that reach past the clamp, with ties of the rounding at both ends.
void colour_kernels(const Kernels& k, std::vector<Blob>& out) {
    Rng rng{7};
    std::vector<int64_t> widths;
    for (int64_t w = 1; w <= 40; ++w) widths.push_back(w);
    for (int64_t w : {63, 64, 65, 97}) widths.push_back(w);
    for (int64_t w : widths) {
        std::vector<uint8_t> rgb0(size_t(2 * w * 3)), rgb1(rgb0.size()), grey(size_t(2 * w));
        for (auto& v : rgb0) v = rng.byte();
        for (auto& v : rgb1) v = rng.byte();
        for (auto& v : grey) v = rng.byte();
        std::vector<float> y0(size_t(2 * w)), y1(y0.size()), cb(y0.size()), cr(y0.size());
        k.rgb_to_ycbcr(rgb0.data(), 2 * w, y0.data(), cb.data(), cr.data());
        out.push_back(blob(y0.data(), y0.size()));
        out.push_back(blob(cb.data(), cb.size()));
        out.push_back(blob(cr.data(), cr.size()));
        k.rgb_to_ycbcr420(rgb0.data(), rgb1.data(), w, y0.data(), y1.data(), cb.data(), cr.data());
        for (const auto* v : {&y0, &y1}) out.push_back(blob(v->data(), v->size()));
        out.push_back(blob(cb.data(), size_t(w)));
        out.push_back(blob(cr.data(), size_t(w)));
        k.grey_to_y(grey.data(), 2 * w, y0.data());
        out.push_back(blob(y0.data(), y0.size()));

        for (auto* v : {&y0, &y1, &cb, &cr})
            for (float& f : *v) f = rng.uniform(300.0f);
        y0[0] = -127.5f;  // rounds to 0 and to 255: ties at both ends of the clamp
        y0[1] = 127.5f;
        std::vector<uint8_t> o0(rgb0.size()), o1(rgb0.size()), og(grey.size());
        for (int up : {0, 1}) {
            k.ycbcr_to_rgb(y0.data(), cb.data(), cr.data(), 2 * w, up, o0.data());
            out.push_back(o0);
        }
        k.ycbcr420_to_rgb2(y0.data(), y1.data(), cb.data(), cr.data(), 2 * w, o0.data(), o1.data());
        out.push_back(o0);
        out.push_back(o1);
        k.y_to_grey(y0.data(), 2 * w, og.data());
        out.push_back(og);
    }
}

// The single-block transforms and the quantiser on random blocks.
void block_kernels(const Kernels& k, std::vector<Blob>& out) {
    Rng rng{11};
    for (int b : {2, 3, 4, 5, 8, 11, 16, 32, 64}) {
        const BlockPlan plan(40, b, true, 0);
        const BlockTables t = plan.tables();
        std::vector<float> scratch(plan.scratch_size()), in(size_t(b * b)), f(in.size()), i(in.size());
        std::vector<int32_t> qv(in.size());
        for (int rep = 0; rep < 8; ++rep) {
            for (float& v : in) v = rng.uniform(128.0f);
            k.fdct(in.data(), t, f.data(), scratch.data());
            k.idct(in.data(), t, i.data(), scratch.data());
            for (float& v : in) v *= 8.0f;
            k.quantize(in.data(), t, qv.data());
            out.push_back(blob(f.data(), f.size()));
            out.push_back(blob(i.data(), i.size()));
            out.push_back(blob(qv.data(), qv.size()));
        }
    }
}

std::vector<Blob> run_level(const std::string& level) {
    set_simd_level(level);
    const Kernels& k = kernels();
    std::vector<Blob> out;
    for (const Image& im : test_images())
        for (int b : {2, 3, 4, 8, 11, 16, 32, 64})
            for (bool sub420 : {true, false})
                encode_decode(im, b, 83, sub420, b == 8 ? 40 : 0, out, true);
    for (int b : {4, 8, 16})
        for (const Image& im : tie_images(b))
            for (int q : {1, 25, 50, 75, 100})
                for (bool sub420 : {true, false}) encode_decode(im, b, q, sub420, 0, out, false);
    colour_kernels(k, out);
    block_kernels(k, out);
    return out;
}

uint64_t fnv1a(const std::vector<Blob>& blobs) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const Blob& b : blobs) {
        for (uint8_t c : b) h = (h ^ c) * 0x100000001b3ull;
        h = (h ^ 0xff) * 0x100000001b3ull;  // blob boundary
    }
    return h;
}

}  // namespace

int main() {
    try {
        const std::vector<std::string> levels = available_simd_levels();
        const std::vector<Blob> want = run_level("scalar");
        size_t bytes = 0;
        for (const Blob& b : want) bytes += b.size();
        std::printf("scalar: %zu outputs, %zu bytes\n", want.size(), bytes);
        int failed = 0;
        for (size_t l = 1; l < levels.size(); ++l) {
            const std::vector<Blob> got = run_level(levels[l]);
            size_t bad = got.size() == want.size() ? 0 : 1, first = want.size();
            for (size_t i = 0; i < got.size() && i < want.size(); ++i)
                if (got[i] != want[i]) {
                    if (!bad++) first = i;
                }
            if (bad) {
                ++failed;
                std::printf("%s: %zu of %zu outputs DIFFER from scalar (first: output %zu)\n",
                            levels[l].c_str(), bad, want.size(), first);
            } else {
                std::printf("%s: all %zu outputs identical to scalar\n", levels[l].c_str(), got.size());
            }
        }
        std::printf("digest %016llx\n", static_cast<unsigned long long>(fnv1a(want)));
        return failed ? 1 : 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
}
