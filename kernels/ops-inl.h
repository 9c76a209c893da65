// Per-target element-wise and attention ops (included by ops.cpp through foreach_target.h).
// Tails shorter than a vector fall back to scalar code with the same formulas.

#include <algorithm>
#include <cmath>

#include "kernels/ops.h"
#include "kernels/ops_internal.h"

#if defined(NIBBLE_KERNELS_OPS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_KERNELS_OPS_INL_H_
#undef NIBBLE_KERNELS_OPS_INL_H_
#else
#define NIBBLE_KERNELS_OPS_INL_H_
#endif

#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace nibble {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

HWY_INLINE float Dot(const float* a, const float* b, int64_t n) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  auto acc0 = hn::Zero(df), acc1 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc0);
    acc1 = hn::MulAdd(hn::LoadU(df, a + i + N), hn::LoadU(df, b + i + N), acc1);
  }
  for (; i + N <= n; i += N) acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* out) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const float ss = Dot(x, x, n);
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  const auto vs = hn::Set(df, scale);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, x + i), vs), hn::LoadU(df, w + i)), df, out + i);
  }
  for (; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void Rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float base, float freq_scale,
          bool adjacent) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t half = rot_dim / 2;
  float cos_buf[detail::kRopeChunk], sin_buf[detail::kRopeChunk];
  for (int64_t p0 = 0; p0 < half; p0 += detail::kRopeChunk) {
    const int64_t p1 = std::min(half, p0 + detail::kRopeChunk);
    detail::rope_cos_sin(p0, p1, rot_dim, pos, base, freq_scale, cos_buf, sin_buf);
    for (int64_t h = 0; h < n_heads; ++h) {
      float* head = x + h * head_dim;
      int64_t i = p0;
      for (; i + N <= p1; i += N) {
        const auto c = hn::LoadU(df, cos_buf + (i - p0));
        const auto s = hn::LoadU(df, sin_buf + (i - p0));
        hn::Vec<DF> x0, x1;
        if (adjacent) {
          hn::LoadInterleaved2(df, head + 2 * i, x0, x1);
        } else {
          x0 = hn::LoadU(df, head + i);
          x1 = hn::LoadU(df, head + i + half);
        }
        const auto y0 = hn::Sub(hn::Mul(x0, c), hn::Mul(x1, s));
        const auto y1 = hn::Add(hn::Mul(x0, s), hn::Mul(x1, c));
        if (adjacent) {
          hn::StoreInterleaved2(y0, y1, df, head + 2 * i);
        } else {
          hn::StoreU(y0, df, head + i);
          hn::StoreU(y1, df, head + i + half);
        }
      }
      for (; i < p1; ++i) {
        const float c = cos_buf[i - p0], s = sin_buf[i - p0];
        const int64_t i0 = adjacent ? 2 * i : i;
        const int64_t i1 = adjacent ? 2 * i + 1 : i + half;
        const float x0 = head[i0], x1 = head[i1];
        head[i0] = x0 * c - x1 * s;
        head[i1] = x0 * s + x1 * c;
      }
    }
  }
}

void Softmax(float* x, int64_t n) {
  if (n <= 0) return;
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  auto vmax = hn::Set(df, x[0]);
  for (; i + N <= n; i += N) vmax = hn::Max(vmax, hn::LoadU(df, x + i));
  float max = hn::GetLane(hn::MaxOfLanes(df, vmax));
  for (; i < n; ++i) max = std::max(max, x[i]);
  const auto vm = hn::Set(df, max);
  auto vsum = hn::Zero(df);
  for (i = 0; i + N <= n; i += N) {
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vm));
    hn::StoreU(e, df, x + i);
    vsum = hn::Add(vsum, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, vsum));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  const auto vinv = hn::Set(df, inv);
  for (i = 0; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(df, x + i), vinv), df, x + i);
  for (; i < n; ++i) x[i] *= inv;
}

void SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const auto one = hn::Set(df, 1.0f);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto g = hn::LoadU(df, gate + i);
    const auto silu = hn::Div(g, hn::Add(one, hn::Exp(df, hn::Neg(g))));
    hn::StoreU(hn::Mul(silu, hn::LoadU(df, up + i)), df, out + i);
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void AttentionHead(const float* q, const float* k, const float* v, int64_t n_kv, int64_t head_dim, int64_t kv_stride,
                   float scale, float* scores, float* out) {
  for (int64_t t = 0; t < n_kv; ++t) scores[t] = Dot(q, k + t * kv_stride, head_dim) * scale;
  Softmax(scores, n_kv);
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  std::fill(out, out + head_dim, 0.0f);
  for (int64_t t = 0; t < n_kv; ++t) {
    const float* vt = v + t * kv_stride;
    const auto p = hn::Set(df, scores[t]);
    int64_t i = 0;
    for (; i + N <= head_dim; i += N) hn::StoreU(hn::MulAdd(p, hn::LoadU(df, vt + i), hn::LoadU(df, out + i)), df, out + i);
    for (; i < head_dim; ++i) out[i] += scores[t] * vt[i];
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace nibble
HWY_AFTER_NAMESPACE();

#endif  // NIBBLE_KERNELS_OPS_INL_H_
