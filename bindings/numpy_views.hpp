// Helpers shared by the binding files: C-contiguous array arguments, and
// handing a core std::vector to NumPy without a copy.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <utility>
#include <vector>

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
