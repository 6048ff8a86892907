// Kernels compiled for the scalar level (flags set in CMakeLists.txt).
#define DCTS_ISA_NS isa_scalar
#define DCTS_SCALAR_LANES 1
#define DCTS_ISA_NAME "scalar"
#include "isa_kernels.inl"
