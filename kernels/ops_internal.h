// Shared by the reference and the dispatched ops. Not part of the public interface.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace nibble::detail {

// Rotary angles are computed in double by both implementations, so the two can only differ in
// how they apply the rotation.
inline void rope_cos_sin(int64_t pair_begin, int64_t pair_end, int64_t rot_dim, int64_t pos, float base,
                         float freq_scale, float* cos_out, float* sin_out) {
  for (int64_t i = pair_begin; i < pair_end; ++i) {
    const double theta = static_cast<double>(pos) * freq_scale *
                         std::pow(static_cast<double>(base), -2.0 * static_cast<double>(i) / static_cast<double>(rot_dim));
    cos_out[i - pair_begin] = static_cast<float>(std::cos(theta));
    sin_out[i - pair_begin] = static_cast<float>(std::sin(theta));
  }
}

// GELU's tanh approximation: gelu_tanh(g) = ½·g·(1 + tanh(kGeluC·(g + kGeluA·g³))).
constexpr double kGeluC = 0.79788456080286535588;  // √(2/π)
constexpr double kGeluA = 0.044715;

// Pairs per chunk of angles kept on the stack.
constexpr int64_t kRopeChunk = 64;

// attention_batch tiling. A block has up to kAttnRows (token, head) query rows, padded to a
// multiple of kAttnRowAlign (≥ the widest vector the kernel uses, 16 floats) so the softmax
// statistics can be handled a vector of rows at a time. Keys/values are taken kAttnKvTile
// positions at a time: 64 rows × 64 keys of scores (16 KiB), the rows' Qᵀ and accumulators and
// the 64×head_dim K and V tiles stay in L1/L2 and are reused by every row. (64 rows measured a
// little faster than 128 on Zen 5 for head_dim 64, and the smaller blocks waste less of the
// causal diagonal tile.)
constexpr int64_t kAttnRows = 64;
constexpr int64_t kAttnRowAlign = 16;
constexpr int64_t kAttnKvTile = 64;

inline int64_t attn_block_tokens(int64_t group) { return std::max<int64_t>(1, kAttnRows / group); }
inline int64_t attn_padded_rows(int64_t group) {
  const int64_t rows = attn_block_tokens(group) * group;
  return (rows + kAttnRowAlign - 1) / kAttnRowAlign * kAttnRowAlign;
}
// Scratch layout (floats): Qᵀ [head_dim][rows] | Sᵀ [kv_tile][rows] | acc [rows][head_dim] |
// m, l, c, row position [rows] each | the K and V tiles [kv_tile][head_dim] each.
inline int64_t attn_scratch_floats(int64_t group, int64_t head_dim) {
  const int64_t rows = attn_padded_rows(group);
  return rows * (2 * head_dim + kAttnKvTile + 4) + 2 * kAttnKvTile * head_dim;
}

}  // namespace nibble::detail
