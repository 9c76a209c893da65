// Picks the AArch64 int8 kernels for the int8 extension dispatch.h has chosen (none: plain NEON).
#include "kernels/matmul_neon.h"

#include "kernels/dispatch.h"

namespace nibble::detail {

MatmulRowsFn arm_int8_rows(TensorType t, uint32_t layout) {
  switch (active_int8_extension()) {
    case Int8Extension::kI8mm: return neon_i8mm_rows(t, layout);
    case Int8Extension::kDotprod: return neon_dotprod_rows(t, layout);
    default: return neon_plain_rows(t, layout);
  }
}

}  // namespace nibble::detail
