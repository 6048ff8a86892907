// Assembles the kernel table of one instruction set. Included by isa_*.cpp
// after defining DCTS_ISA_NS (the namespace) and DCTS_ISA_NAME.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels.hpp"

// The hand-written AVX-512 kernels need F, BW and DQ (the level's flags).
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__)
#define DCTS_AVX512_KERNELS 1
#else
#define DCTS_AVX512_KERNELS 0
#endif

namespace dcts {
namespace DCTS_ISA_NS {

#include "vec.inl"
#include "color_kernels.inl"
#include "dct_kernels.inl"
#include "quant_kernels.inl"

const Kernels& table() {
    static const Kernels k = {
        DCTS_ISA_NAME,
        {kColorKernels, kColorKernels, kFdctKernels, kQuantKernels, kQuantKernels, kIdctKernels,
         kColorKernels},
        rgb_to_ycbcr, grey_to_y, rgb_to_ycbcr420, ycbcr_to_rgb, ycbcr420_to_rgb2,
        y_to_grey,     fdct_quant_extract, dequant_idct, fdct, idct, quantize, nonzero_mask,
    };
    return k;
}

}  // namespace DCTS_ISA_NS
}  // namespace dcts
