// Coefficient storage reused across calls on the same thread. A 2048x2048
// 4:2:0 image has 6.3 M coefficients (25 MB as int32); allocating that per
// call costs more in page faults and zeroing than the DCT itself.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

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

// Each block's non-zero coefficients as records (zigzag index << 16 | uint16
// value), per plane in raster block order, plus the record count per block.
// 4 bytes per non-zero instead of 4 per coefficient: what the encoder keeps
// between its block pass and building the list.
class BlockRecords {
public:
    void reset(const Geometry& g);
    // Room for `n` more records of plane p; valid until the next reserve.
    uint32_t* reserve(int p, int64_t n) {
        Plane& pl = planes_[p];
        if (pl.used + size_t(n) > pl.cap) grow(pl, pl.used + size_t(n));
        return pl.rec.get() + pl.used;
    }
    // Per-block record counts of plane p from block `first` on, for writers
    // that append a row of blocks at once (then commit_records their total).
    uint16_t* block_counts(int p, int64_t first) { return planes_[p].count.data() + first; }
    void commit_records(int p, int64_t n) { planes_[p].used += size_t(n); }
    const uint32_t* records(int p) const { return planes_[p].rec.get(); }
    const uint16_t* counts(int p) const { return planes_[p].count.data(); }
    size_t size(int p) const { return planes_[p].used; }
    void trim();
    size_t bytes() const;  // memory held

private:
    struct Plane {
        std::unique_ptr<uint32_t[]> rec;
        size_t cap = 0, used = 0;
        std::vector<uint16_t> count;  // per block (<= 64*64 = 4096)
    };
    static void grow(Plane& pl, size_t need);
    Plane planes_[3];
};

BlockRecords& block_records();

// BlockRecords for the images of a batch, all alive at once. Kept between
// batches on a process-wide free list (as the thread_local ones are kept),
// so that their memory stays paged in: fresh buffers per batch were paged in
// anew each time, in the kernel, where two threads' page faults serialise.
// Returned trimmed, up to kKeepBytes in all.
class RecordsLease {
public:
    explicit RecordsLease(size_t n);
    ~RecordsLease();
    RecordsLease(const RecordsLease&) = delete;
    RecordsLease& operator=(const RecordsLease&) = delete;
    BlockRecords& operator[](size_t i) { return *items_[i]; }
    static constexpr size_t kKeepBytes = size_t(256) << 20;

private:
    std::vector<std::unique_ptr<BlockRecords>> items_;
};

struct RecordsGuard {
    BlockRecords& records;
    ~RecordsGuard() { records.trim(); }
};

// Releases a store's large buffer when a call ends, however it ends.
struct StoreGuard {
    CoeffStore& store;
    ~StoreGuard() { store.trim(); }
};

}  // namespace dcts
