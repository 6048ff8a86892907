// Kernels compiled for the neon level (flags set in CMakeLists.txt).
#define DCTS_ISA_NS isa_neon
#define DCTS_ISA_NAME "neon"
#include "isa_kernels.inl"
