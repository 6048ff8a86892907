// Standalone mutation fuzzer for the .dcts decoder, for sanitizer builds
// without libFuzzer (g++ has none). Reads seed files, applies random
// mutations (bit flips, byte sets, inserts, deletes, truncations), recomputes
// the CRC half of the time so the mutations reach the header checks and the
// entropy decoder, and decodes. Any outcome but success or
// std::invalid_argument is a bug; ASan/UBSan report memory errors.
//
//   g++ -std=c++17 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
//       -Icpp fuzz/dcts_mutate.cpp cpp/*.cpp -o /tmp/dcts_mutate
//   /tmp/dcts_mutate 200000 seed1.dcts seed2.dcts ...
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <vector>

#include "container.hpp"

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s ITERATIONS SEED.dcts...\n", argv[0]);
        return 2;
    }
    const long iters = std::atol(argv[1]);
    std::vector<std::vector<uint8_t>> seeds;
    for (int i = 2; i < argc; ++i) {
        std::ifstream f(argv[i], std::ios::binary);
        seeds.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
        dcts::container_decode(seeds.back().data(), seeds.back().size(), 1 << 28, nullptr);
    }
    std::mt19937_64 rng(12345);
    long ok = 0, rejected = 0;
    for (long it = 0; it < iters; ++it) {
        std::vector<uint8_t> d = seeds[rng() % seeds.size()];
        const int muts = 1 + int(rng() % 4);
        for (int m = 0; m < muts && !d.empty(); ++m) {
            const size_t i = rng() % d.size();
            switch (rng() % 5) {
                case 0: d[i] ^= uint8_t(1u << (rng() % 8)); break;
                case 1: d[i] = uint8_t(rng()); break;
                case 2: d.insert(d.begin() + long(i), uint8_t(rng())); break;
                case 3: d.erase(d.begin() + long(i)); break;
                default: d.resize(i); break;
            }
        }
        if (d.size() >= 4 && (rng() & 1)) {
            const uint32_t c = dcts::crc32(d.data(), d.size() - 4);
            for (int k = 0; k < 4; ++k) d[d.size() - 4 + size_t(k)] = uint8_t(c >> (8 * k));
        }
        try {
            dcts::container_decode(d.data(), d.size(), 1 << 24, nullptr);
            ++ok;
        } catch (const std::invalid_argument&) {
            ++rejected;
        }
    }
    std::printf("%ld decoded, %ld rejected\n", ok, rejected);
    return 0;
}
