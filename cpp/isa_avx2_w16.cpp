// Test level avx2-w16: the avx2 kernels with AVX-512's 16-column chunking
// (built with DCTSPARSE_TEST_CHUNKS=ON only).
#define DCTS_ISA_NS isa_avx2_w16
#define DCTS_ISA_NAME "avx2-w16"
#define DCTS_CHUNK_FLOATS 16
#include "isa_kernels.inl"
