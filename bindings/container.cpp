// Bindings of the .dcts container coder (issue 4). Registered into
// dctsparse._core by init_container(), called from core.cpp. Thin: unpack
// buffers, release the GIL, call cpp/container.*, hand vectors to NumPy
// without copying. All validation is in the core.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "container.hpp"
#include "numpy_views.hpp"

namespace py = pybind11;
using namespace dcts;

namespace {

struct Bytes {
    const uint8_t* data;
    size_t size;
};

Bytes bytes_of(const py::buffer_info& info) {
    require(info.ndim == 1 && info.itemsize == 1 && (info.size <= 1 || info.strides[0] == 1),
            "data must be a contiguous bytes-like object");
    return {static_cast<const uint8_t*>(info.ptr), size_t(info.size)};
}

py::dict header_dict(const ContainerHeader& h) {
    py::dict d;
    d["version"] = int(kContainerVersion);
    d["height"] = h.height;
    d["width"] = h.width;
    d["mode"] = h.planes == 3 ? "RGB" : "L";
    d["block_size"] = h.block;
    d["quality"] = h.quality;
    d["subsampling"] = h.sub420 ? "4:2:0" : "4:4:4";
    if (h.order_kind == 0)
        d["order"] = "frequency";
    else if (h.order_kind == 1)
        d["order"] = "luma_first";
    else {
        py::tuple perm(h.permutation.size());
        for (size_t i = 0; i < h.permutation.size(); ++i) perm[i] = py::int_(h.permutation[i]);
        d["order"] = perm;
    }
    d["clip"] = h.clip > 0 ? py::object(py::int_(h.clip)) : py::object(py::none());
    d["count"] = h.count;
    d["canonical"] = h.canonical;
    d["payload_bytes"] = h.payload_bytes;
    d["file_bytes"] = h.file_bytes;
    return d;
}

}  // namespace

void init_container(py::module_& m) {
    m.def("container_encode", [](const carray<int32_t>& c, const carray<int32_t>& p,
                                 const carray<int32_t>& v, int64_t height, int64_t width,
                                 int planes, int block, int quality, bool sub420, int order_kind,
                                 const carray<int32_t>& permutation, int32_t clip) {
        require(c.ndim() == 1 && p.ndim() == 1 && v.ndim() == 1 && c.size() == p.size() &&
                    p.size() == v.size(),
                "channel, position and value must be 1-D and of the same length");
        ContainerHeader h;
        h.height = height;
        h.width = width;
        h.planes = planes;
        h.block = block;
        h.quality = quality;
        h.sub420 = sub420;
        h.order_kind = order_kind;
        h.permutation.assign(permutation.data(), permutation.data() + permutation.size());
        h.clip = clip;
        std::vector<uint8_t> out;
        {
            py::gil_scoped_release nogil;
            out = container_encode(std::move(h), c.data(), p.data(), v.data(), int64_t(c.size()));
        }
        return py::bytes(reinterpret_cast<const char*>(out.data()), out.size());
    }, py::arg("channel"), py::arg("position"), py::arg("value"), py::arg("height"),
       py::arg("width"), py::arg("planes"), py::arg("block"), py::arg("quality"),
       py::arg("sub420"), py::arg("order_kind"), py::arg("permutation"), py::arg("clip"));

    m.def("container_decode", [](const py::buffer& data, int64_t pixel_limit) {
        const py::buffer_info info = data.request();
        const Bytes b = bytes_of(info);
        ContainerHeader h;
        SparseList s;
        {
            py::gil_scoped_release nogil;
            s = container_decode(b.data, b.size, pixel_limit, &h);
        }
        const py::tuple list = list_to_numpy(std::move(s));
        return py::make_tuple(header_dict(h), list[0], list[1], list[2]);
    }, py::arg("data"), py::arg("pixel_limit"));

    m.def("container_header", [](const py::buffer& data, int64_t pixel_limit) {
        const py::buffer_info info = data.request();
        const Bytes b = bytes_of(info);
        ContainerHeader h;
        {
            py::gil_scoped_release nogil;
            h = container_read_header(b.data, b.size, pixel_limit);
        }
        return header_dict(h);
    }, py::arg("data"), py::arg("pixel_limit"));
}
