// Test level avx2-w4: the avx2 kernels with NEON's 4-column chunking
// (built with DCTSPARSE_TEST_CHUNKS=ON only).
#define DCTS_ISA_NS isa_avx2_w4
#define DCTS_ISA_NAME "avx2-w4"
#define DCTS_CHUNK_FLOATS 4
#include "isa_kernels.inl"
