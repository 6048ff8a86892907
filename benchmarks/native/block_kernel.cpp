// The encoder's block kernel alone (DCT + quantise + extract, the
// fdct_quant_extract entry of the kernel table), on the three planes of an
// RGB image at B = 8, q75, 4:2:0: cycles a block without Python, the list
// or the colour stage around it. It compiles the working tree's kernels
// (isa_kernels.inl) into its own namespace with the avx2 level's flags, so a
// change to a *_kernels.inl file is measured by rebuilding this file only.
//
//   python -c "import numpy as np; from benchmarks.images import tiled; tiled().tofile('/tmp/tiled.rgb')"
//   cmake -S . -B build/native -DDCTSPARSE_PYTHON=OFF -DCMAKE_BUILD_TYPE=Release && cmake --build build/native
//   g++ -O3 -std=c++17 -mavx2 -mfma -mbmi -mbmi2 -mf16c -ffp-contract=off -Icpp
//       benchmarks/native/block_kernel.cpp build/native/libdctsparse_core.a -lpthread
//       -o build/block_kernel                              (one line)
//   build/block_kernel /tmp/tiled.rgb 2048 2048
//
// The planes are whole (not the encoder's cache-sized stripes), so the
// figure includes streaming them from memory; compare builds in alternation,
// the machine's speed drifts. The tables (BlockPlan) come from the library:
// rebuild it after changing quant.cpp. Stop 12, tiled 2048x2048 image:
// 144-152 cycles a block at 3 GHz before the register-resident quantiser and
// the AAN transform, 121-133 after.
#define DCTS_ISA_NS bench
#define DCTS_ISA_NAME "bench"
#include "isa_kernels.inl"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "color.hpp"
#include "quant.hpp"

int main(int argc, char** argv) {
    using namespace dcts;
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s IMAGE.rgb HEIGHT WIDTH (raw interleaved RGB bytes)\n", argv[0]);
        return 2;
    }
    const int64_t h = std::atoll(argv[2]), w = std::atoll(argv[3]);
    std::vector<uint8_t> img(size_t(h * w * 3));
    FILE* f = std::fopen(argv[1], "rb");
    if (!f || std::fread(img.data(), 1, img.size(), f) != img.size()) {
        std::fprintf(stderr, "cannot read %lld bytes from %s\n", (long long)img.size(), argv[1]);
        return 2;
    }
    std::fclose(f);
    const Geometry g = make_geometry(h, w, 3, 8, true);
    std::vector<float> planes[3];
    float* ptr[3];
    for (int p = 0; p < 3; ++p) {
        planes[p].resize(size_t(g.plane_h(p) * g.plane_w(p)));
        ptr[p] = planes[p].data();
    }
    image_to_planes(img.data(), g, ptr);
    const BlockPlan luma(75, 8, false, 0), chroma(75, 8, true, 0);
    const BlockTables lt = luma.tables(), ct = chroma.tables();
    std::vector<uint32_t> rec(size_t(g.wb) * 64);
    std::vector<uint16_t> counts(size_t(g.wb));
    std::vector<int32_t> qbuf(64);
    std::vector<float> scratch(block_scratch_floats(8));
    std::vector<double> times;
    int64_t total = 0, blocks = 0;
    for (int rep = 0; rep < 31; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        total = blocks = 0;
        for (int p = 0; p < 3; ++p) {
            const int64_t pw = g.plane_w(p);
            for (int64_t bi = 0; bi < g.plane_hb(p); ++bi)
                total += bench::fdct_quant_extract(ptr[p] + bi * 8 * pw, pw, g.plane_wb(p),
                                                   p ? ct : lt, rec.data(), counts.data(),
                                                   qbuf.data(), scratch.data());
            blocks += g.plane_blocks(p);
        }
        times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(times.begin(), times.end());
    const double med = times[times.size() / 2];
    std::printf("%lld records, %lld blocks: median %.3f ms, %.1f ns a block (%.0f cycles at 3 GHz)\n",
                (long long)total, (long long)blocks, med * 1e3, med / double(blocks) * 1e9,
                med / double(blocks) * 3e9);
}
