// Helpers shared by the binding files: C-contiguous array arguments, and
// handing a core std::vector to NumPy without a copy.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <utility>
#include <vector>

#include "common.hpp"

template <typename T>
using carray = pybind11::array_t<T, pybind11::array::c_style>;

// Moves a vector into a NumPy array that owns it (no copy).
template <typename T, typename A>
pybind11::array_t<T> to_numpy(std::vector<T, A>&& v, std::vector<pybind11::ssize_t> shape) {
    using Vec = std::vector<T, A>;
    auto* owner = new Vec(std::move(v));
    pybind11::capsule free_when_done(owner, [](void* p) { delete static_cast<Vec*>(p); });
    return pybind11::array_t<T>(shape, owner->data(), free_when_done);
}

// The (channel, position, value) arrays of a list of n triples stored as
// thirds `third` entries apart from c, as views that keep `owner` alive.
inline pybind11::tuple list_views(int32_t* c, pybind11::ssize_t n, pybind11::ssize_t third,
                                  pybind11::handle owner) {
    return pybind11::make_tuple(pybind11::array_t<int32_t>(n, c, owner),
                                pybind11::array_t<int32_t>(n, c + third, owner),
                                pybind11::array_t<int32_t>(n, c + 2 * third, owner));
}

// Moves a coordinate list into three NumPy arrays (channel, position, value)
// that are views of its one buffer, which the last of them frees.
inline pybind11::tuple list_to_numpy(dcts::SparseList&& s) {
    const auto n = pybind11::ssize_t(s.size());
    auto* owner = new dcts::IntArray(s.release());
    if (owner->empty()) owner->resize(1);  // a real pointer for views of length 0
    pybind11::capsule free_when_done(owner, [](void* p) { delete static_cast<dcts::IntArray*>(p); });
    return list_views(owner->data(), n, n, free_when_done);
}
