// Shared between the matmul driver, its per-target kernels (dot-inl.h) and the reference.
// Not part of the public interface.
#pragma once

#include <cstdint>

#include "kernels/matmul.h"

namespace nibble::detail {

// One matmul call as the per-target kernels see it: they compute output rows [n0, n1) for all
// M activation rows.
struct MatmulArgs {
  const uint8_t* w = nullptr;       // weight row 0
  uint64_t w_row_bytes = 0;
  int64_t K = 0;
  int64_t M = 0;
  const float* x = nullptr;         // float activations (F32/F16/BF16 weights)
  const QuantizedInput* qx = nullptr;  // int8 activations (quantized weights)
  float* y = nullptr;
  int64_t ldy = 0;
};

// Sizes the QuantizedInput for M×K (K a multiple of 32); allocation only when it grows.
void resize_quantized_input(int64_t M, int64_t K, QuantizedInput& q);

}  // namespace nibble::detail
