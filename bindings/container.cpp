// Bindings of the .dcts container coder (issue 4). Registered into
// dctsparse._core by init_container(), called from core.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

namespace py = pybind11;

void init_container(py::module_& m) { (void)m; }
