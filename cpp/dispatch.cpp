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

#if defined(DCTS_HAVE_AVX512)
// The avx512 level, stage by stage: where its kernels measured slower than
// the avx2 level's on an AVX-512 CPU, the avx2 kernels run instead (same
// bytes: every level is bit-identical). Block transforms above B = 16 span
// several 16-lane chunks per row and lost to the 8-lane code on Zen 4 (one
// core, tiled 2048x2048, q75, `benchmarks.ab --levels avx2,avx512`, 5
// rounds, ratios to libjpeg-turbo): B = 64 encode -11 to -30% and decode
// -12 to -30% (three runs), B = 32 encode -4 to -5% and decode -3 to +2%.
// Up to B = 16 the level's own kernels run: B = 16 encode +12 to +19%,
// decode +3 to +5%; B = 8 takes the two-block encoder kernel (+3 to +4%).
constexpr int kAvx512MaxBlock = 16;
const Kernels& avx512_transforms_for(const BlockTables& t) {
    return t.block > kAvx512MaxBlock ? isa_avx2::table() : isa_avx512::table();
}
int64_t fdct_quant_extract_avx512(const float* src, int64_t stride, int64_t nblocks,
                                  const BlockTables& t, uint32_t* records, uint16_t* counts,
                                  int32_t* qbuf, float* scratch) {
    return avx512_transforms_for(t).fdct_quant_extract(src, stride, nblocks, t, records, counts,
                                                       qbuf, scratch);
}
void dequant_idct_avx512(const int32_t* in, int64_t nblocks, int64_t block_stride,
                         const BlockTables& t, float* dst, int64_t stride, float* scratch) {
    avx512_transforms_for(t).dequant_idct(in, nblocks, block_stride, t, dst, stride, scratch);
}
const Kernels& avx512_by_stage() {
    static const Kernels k = [] {
        Kernels t = isa_avx512::table();
        t.fdct_quant_extract = fdct_quant_extract_avx512;
        t.dequant_idct = dequant_idct_avx512;
        t.stages[kStageDct] = "avx512 (B = 8: two blocks a register); avx2 above B = 16";
        t.stages[kStageIdct] = "avx512; avx2 above B = 16";
        return t;
    }();
    return k;
}
#endif

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
    {"avx512", avx512_by_stage, has_avx512},
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

std::vector<std::pair<std::string, std::string>> simd_stages() {
    const Kernels& k = kernels();
    std::vector<std::pair<std::string, std::string>> out;
    for (int i = 0; i < kNumStages; ++i) out.emplace_back(stage_names()[i], k.stages[i]);
    return out;
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
