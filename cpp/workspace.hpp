// Coefficient storage reused across calls on the same thread. A 2048x2048
// 4:2:0 image has 6.3 M coefficients (25 MB as int32); allocating that per
// call costs more in page faults and zeroing than the DCT itself.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common.hpp"

namespace dcts {

class CoeffStore {
public:
    // Views of storage for g's planes. `zeroed`: every entry is 0 on return,
    // and the caller must leave them all 0 again (call `dirty()` if it cannot).
    Coeffs acquire(const Geometry& g, bool zeroed);
    // The contents are no longer known to be zero (an error mid-write).
    void dirty() { clean_ = false; }
    // Gives memory back when the last image was large (see kKeepBytes).
    void trim();

    // Buffers up to this size are kept between calls; larger ones are freed.
    static constexpr size_t kKeepBytes = size_t(64) << 20;

private:
    struct Free { void operator()(int32_t* p) const; };
    std::unique_ptr<int32_t, Free> buf_;
    size_t cap_ = 0;       // entries
    size_t used_ = 0;      // entries handed out by the last acquire
    bool clean_ = true;    // all entries are zero
};

// One store per thread and direction: encoding writes every entry (no
// zeroing needed); decoding scatters into zeros and re-zeroes as it reads.
CoeffStore& encode_store();
CoeffStore& decode_store();

// Releases a store's large buffer when a call ends, however it ends.
struct StoreGuard {
    CoeffStore& store;
    ~StoreGuard() { store.trim(); }
};

}  // namespace dcts
