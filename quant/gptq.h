// GPTQ (Frantar et al. 2022, "Accurate Post-Training Quantization for Generative Pre-trained
// Transformers"): quantizes a linear layer's weights column by column, pushing each column's
// rounding error onto the columns not yet quantized so that the layer's output on the
// calibration inputs moves as little as possible (the proxy loss tr((W−Q) H (W−Q)ᵀ), H = XᵀX).
//
// Output is the type's ordinary block layout: every group's scales/mins/sub-block scales are the
// ones the type's own quantizer (quantize_row) picks, and only the levels differ from RTN, so
// every reader and kernel of the type reads GPTQ output unchanged.
#pragma once

#include <cstdint>

#include "kernels/tensor_type.h"

namespace nibble {

struct GptqOptions {
  float damp = 0.01f;      // λ = damp · mean(diag H) added to the diagonal
  int64_t block = 128;     // lazy-batch width (columns); rounded to fit the type's groups
  bool act_order = false;  // columns in order of decreasing diag(H), with static groups
  // Also compute rtn_loss. It costs about rows·cols² flops (as much as GPTQ's own updates), so a
  // caller that only wants the weights can turn it off.
  bool compute_rtn_loss = true;
};

struct GptqReport {  // proxy losses tr((W−Q) H (W−Q)ᵀ) on the *undamped* H
  double rtn_loss = 0, gptq_loss = 0;
  double damp = 0;   // the relative damping used: opt.damp, or more when H needed it
  int64_t dead = 0;  // input columns with H_jj == 0 (weights there are free; zeroed for GPTQ)
};

// True for the types gptq_quantize can write.
bool gptq_supports(TensorType type);

// Cost: one Cholesky of H (cols³/3 flops), rows·cols² flops of lazy-batch gemm updates, one
// call of the type's quantizer per group (as RTN), and rows·cols² more flops for rtn_loss.
// Memory: cols² floats plus about 1.3 (2.3 with act_order) rows·cols floats of working copies.
//
// W: rows × cols floats, row-major (a row = one output channel, cols = input features; GGUF
// order, so a row is what quantize_row takes). H: cols × cols, XᵀX summed over calibration tokens
// (not normalised, symmetric). Writes rows * row_bytes(type, cols) bytes of `type`'s plain layout
// to out. Threads: OpenMP. Throws std::invalid_argument for an unsupported type, cols not whole
// groups, non-finite W or H, or bad options; std::runtime_error when H stays indefinite after four
// tenfold increases of the damping (from 0.01 when opt.damp is 0).
GptqReport gptq_quantize(TensorType type, const float* W, int64_t rows, int64_t cols, const float* H,
                         const GptqOptions& opt, uint8_t* out);

}  // namespace nibble
