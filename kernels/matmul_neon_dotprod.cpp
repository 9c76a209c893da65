// Armv8.2 dot-product (sdot) tiles for every int8 weight format: GEMV and GEMM.
#include "kernels/matmul_neon.h"

#define NIBBLE_NEON_ATTR __attribute__((target("arch=armv8.2-a+dotprod")))
#define NIBBLE_NEON_DOTPROD 1
#define NIBBLE_NEON_I8MM 0
#include "kernels/neon_int8-inl.h"

namespace nibble::detail {

MatmulRowsFn neon_dotprod_rows(TensorType t, uint32_t layout) { return NeonRowsFor<false>(t, layout); }

}  // namespace nibble::detail
