// Element-wise and attention building blocks of a transformer forward pass. Each has a scalar
// reference (namespace ref) and a Highway-dispatched version chosen at run time.
#pragma once

#include <cstdint>

namespace nibble {

enum class RopeStyle {
  kAdjacent,  // rotate (x[2i], x[2i+1]): GGUF llama files, llama2.c checkpoints
  kNeox,      // rotate (x[i], x[i + rot_dim/2]): Gemma, Qwen2, GPT-NeoX
};

// out = x / sqrt(mean(x²) + eps) · w   (out may alias x)
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out);

// Rotates the first rot_dim dims of each of n_heads heads (head_dim apart) at position pos by
// angle pos·freq_scale·base^(−2i/rot_dim) for pair i.
void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float base,
          float freq_scale, RopeStyle style);

// The cos and sin of rope's angles for pairs [0, rot_dim/2) at position pos (rot_dim/2 each).
void rope_angles(int64_t rot_dim, int64_t pos, float base, float freq_scale, float* cos_out,
                 float* sin_out);

// rope with the angles of rope_angles, bit-identical to rope at that position: for callers that
// rotate several tensors, or every layer, at the same positions and compute the angles once.
void rope_with_angles(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim,
                      const float* cos, const float* sin, RopeStyle style);

// In place: x = exp(x − max) / Σ.
void softmax(float* x, int64_t n);

// out[i] = silu(gate[i]) · up[i], silu(g) = g / (1 + e^−g).  (out may alias gate or up)
void silu_mul(const float* gate, const float* up, int64_t n, float* out);

// out[i] = gelu_tanh(gate[i]) · up[i] with GELU's tanh approximation (Gemma's feed-forward)
//   gelu_tanh(g) = ½·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))).   (out may alias gate or up)
void gelu_tanh_mul(const float* gate, const float* up, int64_t n, float* out);

// out[i] = x[i] rounded to bfloat16 (to nearest even; NaN stays NaN), bit-identical to
// fp32_to_bf16 (kernels/fp16.h): the activations oneDNN's bf16 prompt matmul reads.
void to_bf16(const float* x, int64_t n, uint16_t* out);

// Causal attention of a block of consecutive query tokens against one KV head, for all
// n_heads_in_group query heads that share it (GQA). Query token i (0 ≤ i < n_tokens) sits at
// position pos0 + i; head g of token i is at q + i·q_stride + g·head_dim and its result goes to
// out + i·out_stride + g·head_dim. k and v point at position 0 of this KV head; position t is at
// k + t·kv_stride and must exist for t < pos0 + n_tokens. Key t is visible to the query at
// position p iff t ≤ p and, when window > 0, p − t < window.
// Each key/value is read once per block of queries (a flash-attention style running max/sum
// softmax): K/V of a KV head are shared by every token of a prompt and every query head of its
// group. Decode is the n_tokens = 1 case: one pass over the cache serves the group's heads.
// scratch needs attention_batch_scratch_floats(n_heads_in_group, head_dim) floats.
void attention_batch(const float* q, int64_t q_stride, int64_t n_tokens, int64_t pos0, int64_t n_heads_in_group,
                     const float* k, const float* v, int64_t kv_stride, int64_t head_dim, float scale,
                     int64_t window, float* out, int64_t out_stride, float* scratch);

// Query tokens attention_batch processes together (it splits larger n_tokens into blocks of this
// many): about 64 (token, head) rows, so a block's working set stays in L1/L2. Callers that
// parallelise over query blocks should cut at multiples of it.
int64_t attention_batch_block_tokens(int64_t n_heads_in_group);
int64_t attention_batch_scratch_floats(int64_t n_heads_in_group, int64_t head_dim);

namespace ref {
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out);
void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float base,
          float freq_scale, RopeStyle style);
void softmax(float* x, int64_t n);
void silu_mul(const float* gate, const float* up, int64_t n, float* out);
void gelu_tanh_mul(const float* gate, const float* up, int64_t n, float* out);
void to_bf16(const float* x, int64_t n, uint16_t* out);
void attention_head(const float* q, const float* k, const float* v, int64_t n_kv,
                    int64_t head_dim, int64_t kv_stride, float scale, float* scores, float* out);
// Same contract as nibble::attention_batch; scratch is ignored (it may be null).
void attention_batch(const float* q, int64_t q_stride, int64_t n_tokens, int64_t pos0, int64_t n_heads_in_group,
                     const float* k, const float* v, int64_t kv_stride, int64_t head_dim, float scale,
                     int64_t window, float* out, int64_t out_stride, float* scratch);
}  // namespace ref

}  // namespace nibble
