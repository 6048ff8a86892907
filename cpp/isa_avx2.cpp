// Kernels compiled for the avx2 level (flags set in CMakeLists.txt).
#define DCTS_ISA_NS isa_avx2
#define DCTS_ISA_NAME "avx2"
#include "isa_kernels.inl"
