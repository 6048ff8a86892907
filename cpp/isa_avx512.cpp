// Kernels compiled for the avx512 level (flags set in CMakeLists.txt).
#define DCTS_ISA_NS isa_avx512
#define DCTS_ISA_NAME "avx512"
#include "isa_kernels.inl"
