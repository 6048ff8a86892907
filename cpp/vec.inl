// A row of N floats as one value, for the block kernels. In the SIMD builds
// it is a GCC vector type (one or a few registers); in the scalar build it is
// a plain array with lane-by-lane operators, so the scalar fallback performs
// exactly the same IEEE operations as the vector code, lane by lane.

#if defined(DCTS_SCALAR_LANES)
constexpr int kNativeFloats = 64;  // lanes are plain arrays: no chunking needed
template <int N>
struct vf {
    float lane[N];
    float operator[](int i) const { return lane[i]; }
    vf operator*(float s) const { vf r; for (int i = 0; i < N; ++i) r.lane[i] = lane[i] * s; return r; }
    vf operator+(float s) const { vf r; for (int i = 0; i < N; ++i) r.lane[i] = lane[i] + s; return r; }
    vf& operator+=(const vf& o) { for (int i = 0; i < N; ++i) lane[i] += o.lane[i]; return *this; }
    vf operator+(const vf& o) const { vf r; for (int i = 0; i < N; ++i) r.lane[i] = lane[i] + o.lane[i]; return r; }
    vf operator-(const vf& o) const { vf r; for (int i = 0; i < N; ++i) r.lane[i] = lane[i] - o.lane[i]; return r; }
};
template <int N>
static inline vf<N> vload(const float* p) { vf<N> r; for (int i = 0; i < N; ++i) r.lane[i] = p[i]; return r; }
template <int N>
static inline void vstore(float* p, const vf<N>& v) { for (int i = 0; i < N; ++i) p[i] = v.lane[i]; }
template <int N>
static inline float lane(const vf<N>& v, int i) { return v.lane[i]; }
template <int N>
static inline vf<N> vreverse(const vf<N>& v) { vf<N> r; for (int i = 0; i < N; ++i) r.lane[i] = v.lane[N - 1 - i]; return r; }
#else
// Floats in one native vector register. Wider GCC vectors are split by the
// compiler, and it splats scalars into them through the stack, so block
// kernels work on columns in chunks of at most this many lanes.
#if defined(DCTS_CHUNK_FLOATS)  // test builds: another level's chunking (isa_avx2_w*.cpp)
constexpr int kNativeFloats = DCTS_CHUNK_FLOATS;
#elif defined(__AVX512F__)
constexpr int kNativeFloats = 16;
#elif defined(__AVX__)
constexpr int kNativeFloats = 8;
#else
constexpr int kNativeFloats = 4;
#endif
// GCC 12 silently drops a template-dependent vector_size in an alias
// template, so each width is spelled out.
template <int N> struct vf_t;
template <> struct vf_t<4> { typedef float type __attribute__((vector_size(16))); };
template <> struct vf_t<8> { typedef float type __attribute__((vector_size(32))); };
template <> struct vf_t<16> { typedef float type __attribute__((vector_size(64))); };
template <> struct vf_t<32> { typedef float type __attribute__((vector_size(128))); };
template <int N>
using vf = typename vf_t<N>::type;
template <int N>
static inline vf<N> vload(const float* p) { vf<N> r; __builtin_memcpy(&r, p, sizeof r); return r; }
template <int N>
static inline void vstore(float* p, const vf<N>& v) { __builtin_memcpy(p, &v, sizeof v); }
// Lanes in reverse order (one permute).
typedef int vi4 __attribute__((vector_size(16)));
typedef int vi8 __attribute__((vector_size(32)));
static inline vf<4> vreverse(const vf<4>& v) { return __builtin_shuffle(v, vi4{3, 2, 1, 0}); }
static inline vf<8> vreverse(const vf<8>& v) { return __builtin_shuffle(v, vi8{7, 6, 5, 4, 3, 2, 1, 0}); }
#if defined(__AVX512F__) || (defined(DCTS_CHUNK_FLOATS) && DCTS_CHUNK_FLOATS >= 16)
typedef int vi16 __attribute__((vector_size(64)));
// (Only where 16-lane chunks are used: elsewhere GCC warns that returning one
// by value changes the ABI.)
static inline vf<16> vreverse(const vf<16>& v) {
    return __builtin_shuffle(v, vi16{15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
}
#endif
// Subscripting a template-dependent vector type is not accepted by GCC 12.
template <int N>
static inline float lane(const vf<N>& v, int i) {
    float out;
    __builtin_memcpy(&out, reinterpret_cast<const char*>(&v) + sizeof(float) * i, sizeof out);
    return out;
}
#endif
