// Shared definitions of the core: the geometry of an encoded image and the
// validation helper. Every stage validates the sizes and indices it is handed
// through `require`, which throws std::invalid_argument (ValueError in Python).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace dcts {

constexpr int kMinBlock = 2;
constexpr int kMaxBlock = 64;
// Positions are int32 and the padded image must be addressable with int64
// arithmetic everywhere; the Python layer applies a (lower, adjustable) pixel limit.
constexpr int64_t kMaxPixels = int64_t(1) << 31;
constexpr double kPi = 3.14159265358979323846;

[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument(msg); }
// The message is built only on failure: a literal, or a callable returning
// it (`[&] { return "got " + std::to_string(x); }`). Building it eagerly cost
// a third of a small image's encode (check_permutation checks every entry).
inline void require(bool ok, const char* msg) {
    if (!ok) fail(msg);
}
template <typename F, typename = decltype(std::declval<F>()())>
inline void require(bool ok, F&& msg) {
    if (!ok) fail(msg());
}

// The one check of an image's size, wherever a size enters the core or the
// Python layer (arrays, SparseDCT headers, .dcts files): height and width
// >= 1, then the caller's limit (dctsparse.MAX_IMAGE_PIXELS; < 0: none),
// then the core's own, kMaxPixels. Overflow-safe for any int64 sizes.
void check_image_size(int64_t height, int64_t width, int64_t pixel_limit);

// The sizes every stage agrees on (SPEC sections 2 and 5). Luma grid is
// (hb, wb); a plane's own grid is (plane_hb(p), plane_wb(p)), half of it for
// chroma under 4:2:0.
struct Geometry {
    int64_t height = 0, width = 0;  // image size
    int planes = 0;                 // 1 (L) or 3 (YCbCr)
    int block = 0;                  // B
    bool sub420 = false;
    int64_t hp = 0, wp = 0;  // padded size
    int64_t hb = 0, wb = 0;  // luma block grid

    int bb() const { return block * block; }
    int64_t channels() const { return int64_t(planes) * bb(); }
    bool subsampled(int p) const { return sub420 && p > 0; }
    int64_t plane_h(int p) const { return subsampled(p) ? hp / 2 : hp; }
    int64_t plane_w(int p) const { return subsampled(p) ? wp / 2 : wp; }
    int64_t plane_hb(int p) const { return subsampled(p) ? hb / 2 : hb; }
    int64_t plane_wb(int p) const { return subsampled(p) ? wb / 2 : wb; }
    int64_t plane_blocks(int p) const { return plane_hb(p) * plane_wb(p); }
    int64_t positions() const { return hb * wb; }
};

// Validates and completes a geometry: padding to a multiple of 2B under 4:2:0
// (for every mode, as SPEC section 2 says), B otherwise.
Geometry make_geometry(int64_t height, int64_t width, int planes, int block, bool sub420);

int32_t max_abs_value(int block, int32_t clip);

// A value a list may hold: non-zero, |v| <= vmax (max_abs_value). Branch-free,
// so loops over many values vectorise.
inline bool valid_value(int32_t v, int32_t vmax) { return (v != 0) & (v <= vmax) & (v >= -vmax); }

// Quantised coefficients of an image: per plane, in the plane's own block
// grid, block-major, natural (row-major) order inside a block:
// plane[p][block_index * B*B + row * B + col]. The zigzag permutation is
// applied where the list or the DCT image is built. A view: the storage is a
// CoeffStore (workspace.hpp).
struct Coeffs {
    int32_t* plane[3] = {nullptr, nullptr, nullptr};
    // Entries from one block to the next; 0: B*B (blocks back to back). Only
    // the stripe decoder pads (StripeScatter::block_stride).
    int64_t block_stride = 0;
};

// Non-zero coefficients per (plane, natural index in the block).
struct NonzeroCounts {
    std::vector<int32_t> plane[3];
    void reset(const Geometry& g) {
        for (int p = 0; p < 3; ++p) plane[p].assign(p < g.planes ? size_t(g.bb()) : 0, 0);
    }
};

// std::allocator whose value-less construct() leaves the element
// uninitialised, so resize() of an array that is about to be written in full
// costs no memset (for a coordinate list, that memset was a tenth of encoding).
template <typename T>
struct NoInitAllocator : std::allocator<T> {
    template <typename U>
    struct rebind { using other = NoInitAllocator<U>; };
    NoInitAllocator() = default;
    template <typename U>
    NoInitAllocator(const NoInitAllocator<U>&) noexcept {}
    template <typename U>
    void construct(U* p) noexcept(std::is_nothrow_default_constructible<U>::value) {
        ::new (static_cast<void*>(p)) U;
    }
    template <typename U, typename... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};
using IntArray = std::vector<int32_t, NoInitAllocator<int32_t>>;

// The coordinate list: channel, position and value, n int32 each, back to
// back in one allocation. One block rather than three: three arrays freed
// together were given back to the kernel by glibc (it trims a freed top of
// heap larger than twice its largest recent allocation), so a loop's next
// list was paged in anew: 2300 page faults, a quarter of a 2048x2048 encode.
class SparseList {
public:
    // Length n; the contents are undefined (not zeroed: the caller writes
    // every entry).
    void resize(size_t n) {
        buf_.resize(3 * n);
        n_ = n;
    }
    size_t size() const { return n_; }
    int32_t* channel() { return buf_.data(); }
    int32_t* position() { return buf_.data() + n_; }
    int32_t* value() { return buf_.data() + 2 * n_; }
    const int32_t* channel() const { return buf_.data(); }
    const int32_t* position() const { return buf_.data() + n_; }
    const int32_t* value() const { return buf_.data() + 2 * n_; }
    // The buffer (3n entries: channel, position, value), leaving the list empty.
    IntArray release() {
        n_ = 0;
        return std::move(buf_);
    }

private:
    IntArray buf_;
    size_t n_ = 0;
};

}  // namespace dcts
