// AArch64 int8 matmul kernels on the dot-product (sdot) and int8 matrix multiply (smmla)
// extensions, which Highway 1.0.3 has no target for, and on plain NEON for CPUs with neither.
// The matmul driver asks here first and falls back to the Highway kernels (dot-inl.h) when this
// returns nullptr: other architectures and weight types without int8 activations.
#pragma once

#include <cstdint>

#include "kernels/matmul_internal.h"

namespace nibble::detail {

using MatmulRowsFn = void (*)(const MatmulArgs&, int64_t, int64_t);

#if defined(__aarch64__)
// Row-range kernel for weight type t in `layout` under the active int8 extension, or nullptr.
MatmulRowsFn arm_int8_rows(TensorType t, uint32_t layout);
// The same per extension (matmul_neon_{plain,dotprod,i8mm}.cpp).
MatmulRowsFn neon_plain_rows(TensorType t, uint32_t layout);
MatmulRowsFn neon_dotprod_rows(TensorType t, uint32_t layout);
MatmulRowsFn neon_i8mm_rows(TensorType t, uint32_t layout);
#else
inline MatmulRowsFn arm_int8_rows(TensorType, uint32_t) { return nullptr; }
#endif

}  // namespace nibble::detail
