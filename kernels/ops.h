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

// In place: x = exp(x − max) / Σ.
void softmax(float* x, int64_t n);

// out[i] = silu(gate[i]) · up[i], silu(g) = g / (1 + e^−g).  (out may alias gate or up)
void silu_mul(const float* gate, const float* up, int64_t n, float* out);

// One query head against n_kv cached positions: out = softmax(scale · q·Kᵀ) · V.
// k and v point at position 0 of this head's keys/values; position t is at k + t·kv_stride.
// scores needs n_kv floats of scratch.
void attention_head(const float* q, const float* k, const float* v, int64_t n_kv,
                    int64_t head_dim, int64_t kv_stride, float scale, float* scores, float* out);

namespace ref {
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out);
void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float base,
          float freq_scale, RopeStyle style);
void softmax(float* x, int64_t n);
void silu_mul(const float* gate, const float* up, int64_t n, float* out);
void attention_head(const float* q, const float* k, const float* v, int64_t n_kv,
                    int64_t head_dim, int64_t kv_stride, float scale, float* scores, float* out);
}  // namespace ref

}  // namespace nibble
