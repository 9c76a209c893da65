// Plain Armv8.0 NEON tiles (no dot product: smull/smlal2 + sadalp) for every int8 weight format,
// the fallback for CPUs such as Cortex-A53/A57/A72: GEMV and GEMM.
#include "kernels/matmul_neon.h"

#define NIBBLE_NEON_ATTR
#define NIBBLE_NEON_DOTPROD 0
#define NIBBLE_NEON_I8MM 0
#include "kernels/neon_int8-inl.h"

namespace nibble::detail {

MatmulRowsFn neon_plain_rows(TensorType t, uint32_t layout) { return NeonRowsFor<false>(t, layout); }

}  // namespace nibble::detail
