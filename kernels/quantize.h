// Row conversions between floats and stored weight formats (scalar reference code: used at
// load time for embeddings, by writers and quantizers, and by tests).
#pragma once

#include <cstdint>

#include "kernels/tensor_type.h"

namespace nibble {

// True when dequantize_row() handles the type.
bool can_dequantize(TensorType type);
// True when quantize_row() can produce the type.
bool can_quantize(TensorType type);

// n elements (a whole number of blocks) from src in `type`'s layout to floats.
void dequantize_row(TensorType type, const uint8_t* src, int64_t n, float* dst);

// n floats to `type`'s block layout, bit-exact with llama.cpp's reference quantizers
// (quantize_row_*_ref) for F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q6_K; Q2_K, Q3_K, Q4_K,
// Q5_K, IQ4_NL and IQ4_XS by nibble's own error-minimising search (deterministic; same layouts,
// different choices than llama.cpp). Writes row_bytes(type, n) bytes.
void quantize_row(TensorType type, const float* src, int64_t n, uint8_t* dst);

// quantize_row for Q2_K, Q3_K, Q4_K, Q5_K, IQ4_NL, IQ4_XS that also writes the n values the
// quantizer chose (what dequantize_row must give back from dst, bit for bit). Throws
// std::invalid_argument for other types.
void quantize_row_values(TensorType type, const float* src, int64_t n, uint8_t* dst, float* values);

}  // namespace nibble
