#include "workspace.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

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

CoeffStore& encode_store() {
    thread_local CoeffStore s;
    return s;
}

CoeffStore& decode_store() {
    thread_local CoeffStore s;
    return s;
}

}  // namespace dcts
