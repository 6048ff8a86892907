// pybind11 bindings of the C++ core as the private module dctsparse._core.
// Thin on purpose: unpack NumPy buffers, release the GIL, call the core, hand
// the core's vectors to NumPy without copying. Validation lives in the core
// (std::invalid_argument -> ValueError) and in the Python layer.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <utility>
#include <vector>

#include "codec.hpp"
#include "numpy_views.hpp"
#include "common.hpp"
#include "quant.hpp"
#include "sparse.hpp"
#include "workspace.hpp"
#include "zigzag.hpp"
#include "color.hpp"
#include "kernels.hpp"
#include "profile.hpp"
#include "parallel.hpp"

namespace py = pybind11;
using namespace dcts;

namespace {

int planes_of(const py::array& image) {
    if (image.ndim() == 2) return 1;
    if (image.ndim() == 3) return int(image.shape(2));
    fail("image must have rank 2 or 3, got rank " + std::to_string(image.ndim()));
}

struct ListView {
    const int32_t *c, *p, *v;
    int64_t n;
};
ListView view(const carray<int32_t>& c, const carray<int32_t>& p, const carray<int32_t>& v) {
    require(c.ndim() == 1 && p.ndim() == 1 && v.ndim() == 1, "channel, position and value must be 1-D");
    require(c.size() == p.size() && p.size() == v.size(),
            "channel, position and value must have the same length");
    return {c.data(), p.data(), v.data(), int64_t(c.size())};
}

// Raises the error of a batch's first failing item, naming the item by its
// index in the caller's whole batch (`first`: the index of item 0 here).
void raise_item_error(const ItemError& e, int64_t first) {
    if (e.index < 0) return;
    try {
        std::rethrow_exception(e.error);
    } catch (const std::invalid_argument& x) {
        throw std::invalid_argument("image " + std::to_string(first + e.index) + ": " + x.what());
    }
}

}  // namespace

void init_container(py::module_& m);  // bindings/container.cpp

PYBIND11_MODULE(_core, m) {
    m.doc() = "C++ core of dctsparse (private: use the dctsparse package)";
    init_container(m);

    m.def("zigzag", [](int block) {
        auto z = zigzag(block);
        const auto n = py::ssize_t(z.size());
        return to_numpy(std::move(z), {n});
    }, py::arg("block"));

    m.def("quant_matrix", [](int quality, int block, bool chroma) {
        return to_numpy(quant_matrix(quality, block, chroma), {block, block});
    }, py::arg("quality"), py::arg("block"), py::arg("chroma"));

    m.def("channel_sequence", [](int order, int planes, int block) {
        auto s = channel_sequence(NamedOrder(order), planes, block);
        const auto n = py::ssize_t(s.size());
        return to_numpy(std::move(s), {n});
    }, py::arg("order"), py::arg("planes"), py::arg("block"));

    m.def("check_image_size", [](int64_t height, int64_t width, int64_t pixel_limit) {
        check_image_size(height, width, pixel_limit);
    }, py::arg("height"), py::arg("width"), py::arg("pixel_limit"));

    m.def("check_geometry", [](int64_t height, int64_t width, int planes, int block, bool sub420) {
        make_geometry(height, width, planes, block, sub420);
    }, py::arg("height"), py::arg("width"), py::arg("planes"), py::arg("block"), py::arg("sub420"));

    m.def("check_permutation", [](const carray<int32_t>& seq, int64_t channels) {
        check_permutation(seq.data(), int64_t(seq.size()), channels);
    }, py::arg("seq"), py::arg("channels"));

    m.def("encode", [](const carray<uint8_t>& image, int block, int quality, bool sub420,
                       int32_t clip, const carray<int32_t>& seq) {
        const Geometry g = make_geometry(image.shape(0), image.ndim() > 1 ? image.shape(1) : 0,
                                         planes_of(image), block, sub420);
        check_permutation(seq.data(), int64_t(seq.size()), g.channels());
        const CodecParams prm{block, quality, sub420, clip};
        SparseList s;
        {
            py::gil_scoped_release nogil;
            s = encode(image.data(), g, prm, seq.data());
        }
        return list_to_numpy(std::move(s));
    }, py::arg("image"), py::arg("block"), py::arg("quality"), py::arg("sub420"), py::arg("clip"),
       py::arg("seq"));

    m.def("decode", [](const carray<int32_t>& c, const carray<int32_t>& p, const carray<int32_t>& v,
                       int64_t height, int64_t width, int planes, int block, int quality,
                       bool sub420, int32_t clip) {
        const Geometry g = make_geometry(height, width, planes, block, sub420);
        const ListView l = view(c, p, v);
        const CodecParams prm{block, quality, sub420, clip};
        std::vector<py::ssize_t> shape{height, width};
        if (planes == 3) shape.push_back(3);
        py::array_t<uint8_t> out(shape);
        uint8_t* dst = out.mutable_data();
        {
            py::gil_scoped_release nogil;
            decode(l.c, l.p, l.v, l.n, g, prm, dst);
        }
        return out;
    }, py::arg("channel"), py::arg("position"), py::arg("value"), py::arg("height"),
       py::arg("width"), py::arg("planes"), py::arg("block"), py::arg("quality"), py::arg("sub420"),
       py::arg("clip"));

    // Batches: every item's arguments are checked and its output allocated
    // with the GIL held, then the images run in parallel without it.
    m.def("encode_many", [](const std::vector<carray<uint8_t>>& images, int block, int quality,
                            bool sub420, int32_t clip, const std::vector<carray<int32_t>>& seqs,
                            int threads, int64_t first) {
        require(images.size() == seqs.size(), "encode_many: one channel sequence per image");
        const size_t n = images.size();
        std::vector<Geometry> geo;
        std::vector<int64_t> cost;
        const CodecParams prm{block, quality, sub420, clip};
        for (size_t i = 0; i < n; ++i) {
            const auto& im = images[i];
            try {
                geo.push_back(make_geometry(im.shape(0), im.ndim() > 1 ? im.shape(1) : 0,
                                            planes_of(im), block, sub420));
                check_permutation(seqs[i].data(), int64_t(seqs[i].size()), geo.back().channels());
            } catch (const std::invalid_argument&) {
                raise_item_error({int64_t(i), std::current_exception()}, first);
            }
            cost.push_back(int64_t(im.size()));
        }
        // Two parallel passes: every image's block records, then, once the
        // lists' lengths are known, the lists into one allocation (views
        // per image), so that a batch pages in no fresh memory of its own.
        RecordsLease records(n);
        const std::vector<int64_t> order = largest_first(cost);
        ItemError err;
        {
            py::gil_scoped_release nogil;
            err = parallel_for(order, threads, [&](int64_t i) {
                encode_records(images[size_t(i)].data(), geo[size_t(i)], prm, records[size_t(i)]);
            });
        }
        raise_item_error(err, first);
        std::vector<int64_t> at(n + 1, 0);  // list i is entries [at[i], at[i+1]) of each third
        for (size_t i = 0; i < n; ++i) at[i + 1] = at[i] + list_length(records[i], geo[i]);
        const int64_t total = at[n];
        py::array_t<int32_t> buffer(py::ssize_t(std::max<int64_t>(3 * total, 1)));
        int32_t* base = buffer.mutable_data();
        {
            py::gil_scoped_release nogil;
            err = parallel_for(order, threads, [&](int64_t i) {
                const int64_t o = at[size_t(i)];
                records_to_list(records[size_t(i)], geo[size_t(i)], seqs[size_t(i)].data(),
                                base + o, base + total + o, base + 2 * total + o);
            });
        }
        raise_item_error(err, first);
        py::list lists;
        for (size_t i = 0; i < n; ++i)
            lists.append(list_views(base + at[i], at[i + 1] - at[i], total, buffer));
        return lists;
    }, py::arg("images"), py::arg("block"), py::arg("quality"), py::arg("sub420"), py::arg("clip"),
       py::arg("seqs"), py::arg("threads"), py::arg("first") = 0);

    // items: (channel, position, value, height, width, planes, block, quality, sub420, clip).
    // The images are views into one allocation: N fresh arrays of a few
    // hundred KB are each paged in on first write (glibc gives the memory of
    // a freed batch back to the kernel), which took half the time of decoding
    // a batch of 512x512 images and serialises threads in the kernel.
    m.def("decode_many", [](const std::vector<py::tuple>& items, int threads, int64_t first) {
        struct Job {
            ListView l;
            Geometry g;
            CodecParams prm;
            size_t offset;  // bytes into the batch buffer
        };
        std::vector<carray<int32_t>> keep;  // the lists, alive until the decode ends
        std::vector<Job> jobs;
        std::vector<int64_t> cost;
        size_t total = 0;
        for (size_t i = 0; i < items.size(); ++i) {
            try {
                const py::tuple& t = items[i];
                require(t.size() == 10, "decode_many: items are 10-tuples");
                for (int k = 0; k < 3; ++k) keep.push_back(t[size_t(k)].cast<carray<int32_t>>());
                const auto height = t[3].cast<int64_t>(), width = t[4].cast<int64_t>();
                const int planes = t[5].cast<int>(), block = t[6].cast<int>();
                const CodecParams prm{block, t[7].cast<int>(), t[8].cast<bool>(),
                                      t[9].cast<int32_t>()};
                const Geometry g = make_geometry(height, width, planes, block, prm.sub420);
                const ListView l = view(keep[keep.size() - 3], keep[keep.size() - 2], keep.back());
                jobs.push_back({l, g, prm, total});
                const size_t bytes = size_t(height) * size_t(width) * size_t(planes);
                total += (bytes + 63) & ~size_t(63);  // each image on a cache line of its own
                cost.push_back(height * width);
            } catch (const std::invalid_argument&) {
                raise_item_error({int64_t(i), std::current_exception()}, first);
            }
        }
        py::array_t<uint8_t> buffer(py::ssize_t(std::max<size_t>(total, 1)));
        uint8_t* base = buffer.mutable_data();
        ItemError err;
        {
            py::gil_scoped_release nogil;
            err = parallel_for(largest_first(cost), threads, [&](int64_t i) {
                const Job& j = jobs[size_t(i)];
                decode(j.l.c, j.l.p, j.l.v, j.l.n, j.g, j.prm, base + j.offset);
            });
        }
        raise_item_error(err, first);
        py::list outs;
        for (const Job& j : jobs) {
            std::vector<py::ssize_t> shape{j.g.height, j.g.width};
            if (j.g.planes == 3) shape.push_back(3);
            outs.append(py::array_t<uint8_t>(shape, base + j.offset, buffer));
        }
        return outs;
    }, py::arg("items"), py::arg("threads"), py::arg("first") = 0);

    m.def("validate_list", [](const carray<int32_t>& c, const carray<int32_t>& p,
                              const carray<int32_t>& v, int64_t height, int64_t width, int planes,
                              int block, bool sub420, int32_t clip) {
        const Geometry g = make_geometry(height, width, planes, block, sub420);
        const ListView l = view(c, p, v);
        py::gil_scoped_release nogil;
        list_to_dense(l.c, l.p, l.v, l.n, g, max_abs_value(block, clip), nullptr);
    }, py::arg("channel"), py::arg("position"), py::arg("value"), py::arg("height"),
       py::arg("width"), py::arg("planes"), py::arg("block"), py::arg("sub420"), py::arg("clip"));

    m.def("list_to_dense", [](const carray<int32_t>& c, const carray<int32_t>& p,
                              const carray<int32_t>& v, int64_t height, int64_t width, int planes,
                              int block, bool sub420, int32_t clip) {
        const Geometry g = make_geometry(height, width, planes, block, sub420);
        const ListView l = view(c, p, v);
        py::array_t<int32_t> out({py::ssize_t(g.hb), py::ssize_t(g.wb), py::ssize_t(g.channels())});
        int32_t* dst = out.mutable_data();
        {
            py::gil_scoped_release nogil;
            list_to_dense(l.c, l.p, l.v, l.n, g, max_abs_value(block, clip), dst);
        }
        return out;
    }, py::arg("channel"), py::arg("position"), py::arg("value"), py::arg("height"),
       py::arg("width"), py::arg("planes"), py::arg("block"), py::arg("sub420"), py::arg("clip"));

    m.def("dense_to_list", [](const carray<int32_t>& dense, int64_t height, int64_t width,
                              int planes, int block, bool sub420, int32_t clip,
                              const carray<int32_t>& seq) {
        const Geometry g = make_geometry(height, width, planes, block, sub420);
        require(dense.ndim() == 3 && dense.shape(0) == g.hb && dense.shape(1) == g.wb &&
                    dense.shape(2) == g.channels(), [&] {
            return "DCT image must have shape (" + std::to_string(g.hb) + ", " +
                   std::to_string(g.wb) +
                   ", " + std::to_string(g.channels()) + ") for this header";
        });
        check_permutation(seq.data(), int64_t(seq.size()), g.channels());
        SparseList s;
        {
            py::gil_scoped_release nogil;
            s = dense_to_list(dense.data(), g, max_abs_value(block, clip), seq.data());
        }
        return list_to_numpy(std::move(s));
    }, py::arg("dense"), py::arg("height"), py::arg("width"), py::arg("planes"), py::arg("block"),
       py::arg("sub420"), py::arg("clip"), py::arg("seq"));

    // --- single stages, for the tests against dctsparse.reference -------------------

    m.def("image_to_planes", [](const carray<uint8_t>& image, int block, bool sub420) {
        const Geometry g = make_geometry(image.shape(0), image.ndim() > 1 ? image.shape(1) : 0,
                                         planes_of(image), block, sub420);
        py::list out;
        std::vector<py::array_t<float>> arrs;
        float* ptrs[3] = {nullptr, nullptr, nullptr};
        for (int p = 0; p < g.planes; ++p) {
            arrs.emplace_back(std::vector<py::ssize_t>{py::ssize_t(g.plane_h(p)), py::ssize_t(g.plane_w(p))});
            ptrs[p] = arrs.back().mutable_data();
        }
        {
            py::gil_scoped_release nogil;
            image_to_planes(image.data(), g, ptrs);
        }
        for (auto& a : arrs) out.append(a);
        return out;
    }, py::arg("image"), py::arg("block"), py::arg("sub420"));

    m.def("planes_to_image", [](const std::vector<carray<float>>& planes, int64_t height,
                                int64_t width, int block, bool sub420) {
        const Geometry g = make_geometry(height, width, int(planes.size()), block, sub420);
        const float* ptrs[3] = {nullptr, nullptr, nullptr};
        for (int p = 0; p < g.planes; ++p) {
            const auto& a = planes[size_t(p)];
            require(a.ndim() == 2 && a.shape(0) == g.plane_h(p) && a.shape(1) == g.plane_w(p), [&] {
                return "plane " + std::to_string(p) + " has the wrong shape for this geometry";
            });
            ptrs[p] = a.data();
        }
        std::vector<py::ssize_t> shape{height, width};
        if (g.planes == 3) shape.push_back(3);
        py::array_t<uint8_t> out(shape);
        uint8_t* dst = out.mutable_data();
        {
            py::gil_scoped_release nogil;
            planes_to_image(ptrs, g, dst);
        }
        return out;
    }, py::arg("planes"), py::arg("height"), py::arg("width"), py::arg("block"), py::arg("sub420"));

    // blocks: (n, B, B) float32 -> (n, B, B) float32, through the active kernels.
    auto block_op = [](bool inverse) {
        return [inverse](const carray<float>& blocks) {
            require(blocks.ndim() == 3 && blocks.shape(1) == blocks.shape(2),
                    "blocks must have shape (n, B, B)");
            const int B = int(blocks.shape(1));
            const BlockPlan plan(50, B, false, 0);
            const BlockTables t = plan.tables();
            py::array_t<float> out({blocks.shape(0), blocks.shape(1), blocks.shape(2)});
            const float* src = blocks.data();
            float* dst = out.mutable_data();
            const int64_t n = blocks.shape(0), bb = int64_t(B) * B;
            const Kernels& k = kernels();
            py::gil_scoped_release nogil;
            std::vector<float> scratch(plan.scratch_size());
            for (int64_t i = 0; i < n; ++i)
                (inverse ? k.idct : k.fdct)(src + i * bb, t, dst + i * bb, scratch.data());
            return out;
        };
    };
    m.def("fdct", block_op(false), py::arg("blocks"));
    m.def("idct", block_op(true), py::arg("blocks"));

    // coefficients (n, B, B) float32 -> (n, B, B) int32, natural order.
    m.def("quantize", [](const carray<float>& coeffs, int quality, bool chroma, int32_t clip) {
        require(coeffs.ndim() == 3 && coeffs.shape(1) == coeffs.shape(2),
                "coefficients must have shape (n, B, B)");
        const int B = int(coeffs.shape(1));
        const BlockPlan plan(quality, B, chroma, clip);
        const BlockTables t = plan.tables();
        py::array_t<int32_t> out({coeffs.shape(0), coeffs.shape(1), coeffs.shape(2)});
        const int64_t bb = int64_t(B) * B, n = coeffs.shape(0);
        const float* src = coeffs.data();
        int32_t* dst = out.mutable_data();
        {
            py::gil_scoped_release nogil;
            for (int64_t i = 0; i < n; ++i) kernels().quantize(src + i * bb, t, dst + i * bb);
        }
        return out;
    }, py::arg("coeffs"), py::arg("quality"), py::arg("chroma"), py::arg("clip"));

    // quantised (n, B, B) int32 natural order -> dequantised, inverse DCT, (n, B, B) float32.
    m.def("dequant_idct", [](const carray<int32_t>& values, int quality, bool chroma) {
        require(values.ndim() == 3 && values.shape(1) == values.shape(2),
                "values must have shape (n, B, B)");
        const int B = int(values.shape(1));
        const BlockPlan plan(quality, B, chroma, 0);
        const BlockTables t = plan.tables();
        py::array_t<float> out({values.shape(0), values.shape(1), values.shape(2)});
        std::vector<float> scratch(plan.scratch_size());
        const int64_t bb = int64_t(B) * B, n = values.shape(0);
        const int32_t* src = values.data();
        float* dst = out.mutable_data();
        {
            py::gil_scoped_release nogil;
            for (int64_t i = 0; i < n; ++i)
                kernels().dequant_idct(src + i * bb, 1, bb, t, dst + i * bb, B, scratch.data());
        }
        return out;
    }, py::arg("values"), py::arg("quality"), py::arg("chroma"));

    m.def("profile_encode", [](const carray<uint8_t>& image, int block, int quality, bool sub420,
                               int32_t clip, const carray<int32_t>& seq) {
        const Geometry g = make_geometry(image.shape(0), image.ndim() > 1 ? image.shape(1) : 0,
                                         planes_of(image), block, sub420);
        check_permutation(seq.data(), int64_t(seq.size()), g.channels());
        py::gil_scoped_release nogil;
        return profile_encode(image.data(), g, CodecParams{block, quality, sub420, clip}, seq.data());
    }, py::arg("image"), py::arg("block"), py::arg("quality"), py::arg("sub420"), py::arg("clip"),
       py::arg("seq"));

    m.def("profile_decode", [](const carray<int32_t>& c, const carray<int32_t>& p,
                               const carray<int32_t>& v, int64_t height, int64_t width, int planes,
                               int block, int quality, bool sub420, int32_t clip) {
        const Geometry g = make_geometry(height, width, planes, block, sub420);
        const ListView l = view(c, p, v);
        std::vector<uint8_t> out(size_t(height * width * planes));
        py::gil_scoped_release nogil;
        return profile_decode(l.c, l.p, l.v, l.n, g, CodecParams{block, quality, sub420, clip},
                              out.data());
    }, py::arg("channel"), py::arg("position"), py::arg("value"), py::arg("height"),
       py::arg("width"), py::arg("planes"), py::arg("block"), py::arg("quality"), py::arg("sub420"),
       py::arg("clip"));

    m.def("simd_level", [] { return std::string(kernels().name); });
    m.def("simd_levels", [] { return available_simd_levels(); });
    m.def("simd_stages", [] { return simd_stages(); });
    m.def("set_simd_level", [](const std::string& level) { set_simd_level(level); },
          py::arg("level"));
    // Tests: cut the decoder's stripes into tiles of this many luma block
    // columns (a power of two >= 2), so that small images take the path of
    // very wide ones; 0 restores the default.
    m.def("set_decode_tile_blocks", [](int64_t blocks) { StripeScatter::set_tile_blocks(blocks); },
          py::arg("blocks"));
}
