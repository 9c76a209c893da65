// Scalar definitions of the ops: plain loops, double accumulation where a sum is long.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "kernels/fp16.h"
#include "kernels/ops.h"
#include "kernels/ops_internal.h"

namespace nibble::ref {

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float base, float freq_scale,
          RopeStyle style) {
  if (rot_dim % 2 != 0 || rot_dim > head_dim) throw std::invalid_argument("rope: rot_dim must be even and <= head_dim");
  const int64_t half = rot_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* head = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      float c, s;
      detail::rope_cos_sin(i, i + 1, rot_dim, pos, base, freq_scale, &c, &s);
      const int64_t i0 = style == RopeStyle::kAdjacent ? 2 * i : i;
      const int64_t i1 = style == RopeStyle::kAdjacent ? 2 * i + 1 : i + half;
      const float x0 = head[i0], x1 = head[i1];
      head[i0] = x0 * c - x1 * s;
      head[i1] = x0 * s + x1 * c;
    }
  }
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  const float max = *std::max_element(x, x + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void to_bf16(const float* x, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_bf16(x[i]);
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

// The defining formula, in double: 1 + tanh(u) cancels badly in float for negative g, and the
// reference should not share the Highway version's way around that.
void gelu_tanh_mul(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    const double gelu = 0.5 * g * (1.0 + std::tanh(detail::kGeluC * (g + detail::kGeluA * g * g * g)));
    out[i] = static_cast<float>(gelu * up[i]);
  }
}

void attention_head(const float* q, const float* k, const float* v, int64_t n_kv, int64_t head_dim,
                    int64_t kv_stride, float scale, float* scores, float* out) {
  for (int64_t t = 0; t < n_kv; ++t) {
    double dot = 0.0;
    for (int64_t i = 0; i < head_dim; ++i) dot += static_cast<double>(q[i]) * k[t * kv_stride + i];
    scores[t] = static_cast<float>(dot) * scale;
  }
  softmax(scores, n_kv);
  for (int64_t i = 0; i < head_dim; ++i) {
    double acc = 0.0;
    for (int64_t t = 0; t < n_kv; ++t) acc += static_cast<double>(scores[t]) * v[t * kv_stride + i];
    out[i] = static_cast<float>(acc);
  }
}

void attention_batch(const float* q, int64_t q_stride, int64_t n_tokens, int64_t pos0, int64_t n_heads_in_group,
                     const float* k, const float* v, int64_t kv_stride, int64_t head_dim, float scale,
                     int64_t window, float* out, int64_t out_stride, float* /*scratch*/) {
  // Plain two-pass softmax per (token, head) over exactly the visible keys.
  std::vector<float> scores;
  for (int64_t i = 0; i < n_tokens; ++i) {
    const int64_t pos = pos0 + i;
    const int64_t first = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
    scores.resize(static_cast<size_t>(pos - first + 1));
    for (int64_t g = 0; g < n_heads_in_group; ++g) {
      attention_head(q + i * q_stride + g * head_dim, k + first * kv_stride, v + first * kv_stride, pos - first + 1,
                     head_dim, kv_stride, scale, scores.data(), out + i * out_stride + g * head_dim);
    }
  }
}

}  // namespace nibble::ref
