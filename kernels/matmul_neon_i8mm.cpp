// Armv8.6 int8 matrix multiply (smmla) tiles for GEMM (two activation rows at a time); single
// activation rows (GEMV and odd M) take the sdot tile, which every i8mm CPU also has.
#include "kernels/matmul_neon.h"

#define NIBBLE_NEON_ATTR __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))
#define NIBBLE_NEON_DOTPROD 1
#define NIBBLE_NEON_I8MM 1
#include "kernels/neon_int8-inl.h"

namespace nibble::detail {

MatmulRowsFn neon_i8mm_rows(TensorType t, uint32_t layout) { return NeonRowsFor<true>(t, layout); }

}  // namespace nibble::detail
