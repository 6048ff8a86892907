#include <atomic>
#include <cstdlib>
#include <mutex>

#include "common.hpp"
#include "kernels.hpp"

namespace dcts {

#define DCTS_DECLARE(ns) namespace ns { const Kernels& table(); }
DCTS_DECLARE(isa_scalar)
#if defined(DCTS_HAVE_AVX2)
DCTS_DECLARE(isa_avx2)
#endif
#if defined(DCTS_HAVE_AVX512)
DCTS_DECLARE(isa_avx512)
#endif
#if defined(DCTS_HAVE_NEON)
DCTS_DECLARE(isa_neon)
#endif
#if defined(DCTS_TEST_CHUNKS)
DCTS_DECLARE(isa_avx2_w4)
DCTS_DECLARE(isa_avx2_w16)
#endif
#undef DCTS_DECLARE

namespace {

struct Level {
    const char* name;
    const Kernels& (*table)();
    bool (*supported)();
};

bool always() { return true; }
#if defined(DCTS_HAVE_AVX2)
bool has_avx2() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("bmi2");
}
#endif
#if defined(DCTS_HAVE_AVX512)
bool has_avx512() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

// Best last: with nothing forced, the last supported level runs.
const Level kLevels[] = {
    {"scalar", isa_scalar::table, always},
#if defined(DCTS_TEST_CHUNKS)
    // Test builds only (DCTSPARSE_TEST_CHUNKS=ON): the AVX2 kernels with the
    // transforms chunked 4 and 16 columns at a time, as NEON and AVX-512
    // chunk them, so those paths run bit-identity tests on an AVX2 machine.
    {"avx2-w4", isa_avx2_w4::table, has_avx2},
    {"avx2-w16", isa_avx2_w16::table, has_avx2},
#endif
#if defined(DCTS_HAVE_NEON)
    {"neon", isa_neon::table, always},  // NEON is part of the aarch64 baseline
#endif
#if defined(DCTS_HAVE_AVX2)
    {"avx2", isa_avx2::table, has_avx2},
#endif
#if defined(DCTS_HAVE_AVX512)
    {"avx512", isa_avx512::table, has_avx512},
#endif
};

std::atomic<const Kernels*> g_active{nullptr};
std::mutex g_mutex;

const Kernels* pick(const std::string& forced) {
    const Kernels* best = nullptr;
    for (const Level& l : kLevels) {
        if (!l.supported()) continue;
        if (!forced.empty() && forced == l.name) return &l.table();
        best = &l.table();
    }
    if (!forced.empty())
        fail("DCTSPARSE_SIMD=" + forced + " is not available on this CPU/build");
    return best;
}

}  // namespace

const Kernels& kernels() {
    const Kernels* k = g_active.load(std::memory_order_acquire);
    if (k) return *k;
    std::lock_guard<std::mutex> lock(g_mutex);
    k = g_active.load(std::memory_order_relaxed);
    if (!k) {
        const char* env = std::getenv("DCTSPARSE_SIMD");
        const std::string forced = env && *env ? env : "";
        try {
            k = pick(forced);
        } catch (const std::invalid_argument&) {
            k = pick("");  // an unusable forced level falls back, loudly in simd_info()
        }
        g_active.store(k, std::memory_order_release);
    }
    return *k;
}

std::vector<std::string> available_simd_levels() {
    std::vector<std::string> out;
    for (const Level& l : kLevels)
        if (l.supported()) out.emplace_back(l.name);
    return out;
}

void set_simd_level(const std::string& level) {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_active.store(pick(level.empty() ? std::string() : level), std::memory_order_release);
}

}  // namespace dcts
