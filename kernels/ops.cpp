// Dispatch of the ops to the best Highway target (ops-inl.h).
#include "kernels/ops.h"

#include <stdexcept>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/ops-inl.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/ops-inl.h"

#if HWY_ONCE
namespace nibble {

HWY_EXPORT(RmsNorm);
HWY_EXPORT(Rope);
HWY_EXPORT(Softmax);
HWY_EXPORT(SiluMul);
HWY_EXPORT(AttentionHead);

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out) {
  HWY_DYNAMIC_DISPATCH(RmsNorm)(x, w, n, eps, out);
}

void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float base, float freq_scale,
          RopeStyle style) {
  if (rot_dim % 2 != 0 || rot_dim > head_dim) throw std::invalid_argument("rope: rot_dim must be even and <= head_dim");
  HWY_DYNAMIC_DISPATCH(Rope)(x, n_heads, head_dim, rot_dim, pos, base, freq_scale, style == RopeStyle::kAdjacent);
}

void softmax(float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(Softmax)(x, n); }

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(SiluMul)(gate, up, n, out);
}

void attention_head(const float* q, const float* k, const float* v, int64_t n_kv, int64_t head_dim,
                    int64_t kv_stride, float scale, float* scores, float* out) {
  HWY_DYNAMIC_DISPATCH(AttentionHead)(q, k, v, n_kv, head_dim, kv_stride, scale, scores, out);
}

}  // namespace nibble
#endif  // HWY_ONCE
