#include "workspace.hpp"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include "parallel.hpp"

namespace dcts {

void CoeffStore::Free::operator()(int32_t* p) const { std::free(p); }

Coeffs CoeffStore::acquire(const Geometry& g, bool zeroed) {
    size_t total = 0;
    for (int p = 0; p < g.planes; ++p) total += size_t(g.plane_blocks(p) * g.bb());
    if (total > cap_) {
        buf_.reset();
        // calloc: fresh pages come zeroed from the OS without a memset.
        auto* p = static_cast<int32_t*>(std::calloc(total, sizeof(int32_t)));
        if (!p) throw std::bad_alloc();
        buf_.reset(p);
        cap_ = total;
        clean_ = true;
    } else if (zeroed && !clean_) {
        std::memset(buf_.get(), 0, cap_ * sizeof(int32_t));
        clean_ = true;
    }
    if (!zeroed) clean_ = false;
    used_ = total;
    Coeffs c;
    size_t off = 0;
    for (int p = 0; p < g.planes; ++p) {
        c.plane[p] = buf_.get() + off;
        off += size_t(g.plane_blocks(p) * g.bb());
    }
    return c;
}

void CoeffStore::trim() {
    if (cap_ * sizeof(int32_t) > kKeepBytes) {
        buf_.reset();
        cap_ = 0;
        clean_ = true;
    }
}

void BlockRecords::reset(const Geometry& g) {
    for (int p = 0; p < 3; ++p) {
        planes_[p].used = 0;
        planes_[p].count.assign(p < g.planes ? size_t(g.plane_blocks(p)) : 0, 0);
    }
}

void BlockRecords::grow(Plane& pl, size_t need) {
    size_t cap = pl.cap ? pl.cap : 4096;
    while (cap < need) cap *= 2;
    std::unique_ptr<uint32_t[]> bigger(new uint32_t[cap]);  // no zeroing: every entry is written first
    if (pl.used) std::memcpy(bigger.get(), pl.rec.get(), pl.used * sizeof(uint32_t));
    pl.rec = std::move(bigger);
    pl.cap = cap;
}

void BlockRecords::trim() {
    for (Plane& pl : planes_) {
        if (pl.cap * sizeof(uint32_t) > CoeffStore::kKeepBytes) {
            pl.rec.reset();
            pl.cap = pl.used = 0;
        }
        if (pl.count.capacity() * sizeof(uint16_t) > CoeffStore::kKeepBytes) {
            pl.count.clear();
            pl.count.shrink_to_fit();
        }
    }
}

size_t BlockRecords::bytes() const {
    size_t b = 0;
    for (const Plane& pl : planes_)
        b += pl.cap * sizeof(uint32_t) + pl.count.capacity() * sizeof(uint16_t);
    return b;
}

namespace {
std::mutex g_spare_mu;
std::vector<std::unique_ptr<BlockRecords>> g_spare;  // guarded by g_spare_mu
size_t g_spare_bytes = 0;
}  // namespace

RecordsLease::RecordsLease(size_t n) {
    keep_fork_safe<g_spare_mu>();
    items_.reserve(n);
    {
        std::lock_guard<std::mutex> lock(g_spare_mu);
        while (items_.size() < n && !g_spare.empty()) {
            g_spare_bytes -= g_spare.back()->bytes();
            items_.push_back(std::move(g_spare.back()));
            g_spare.pop_back();
        }
    }
    while (items_.size() < n) items_.push_back(std::make_unique<BlockRecords>());
}

RecordsLease::~RecordsLease() {
    std::lock_guard<std::mutex> lock(g_spare_mu);
    for (auto& r : items_) {
        r->trim();
        const size_t b = r->bytes();
        if (g_spare_bytes + b > kKeepBytes) continue;  // freed with the lease
        g_spare_bytes += b;
        g_spare.push_back(std::move(r));
    }
}

BlockRecords& block_records() {
    thread_local BlockRecords r;
    return r;
}

CoeffStore& encode_store() {
    thread_local CoeffStore s;
    return s;
}

CoeffStore& decode_store() {
    thread_local CoeffStore s;
    return s;
}

}  // namespace dcts
