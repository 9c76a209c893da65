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
HWY_EXPORT(RopeWithAngles);
HWY_EXPORT(Softmax);
HWY_EXPORT(SiluMul);
HWY_EXPORT(GeluTanhMul);
HWY_EXPORT(ToBf16);
HWY_EXPORT(AttentionBatch);

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out) {
  HWY_DYNAMIC_DISPATCH(RmsNorm)(x, w, n, eps, out);
}

void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float base, float freq_scale,
          RopeStyle style) {
  if (rot_dim % 2 != 0 || rot_dim > head_dim) throw std::invalid_argument("rope: rot_dim must be even and <= head_dim");
  HWY_DYNAMIC_DISPATCH(Rope)(x, n_heads, head_dim, rot_dim, pos, base, freq_scale, style == RopeStyle::kAdjacent);
}

void rope_angles(int64_t rot_dim, int64_t pos, float base, float freq_scale, float* cos_out,
                 float* sin_out) {
  if (rot_dim % 2 != 0) throw std::invalid_argument("rope_angles: rot_dim must be even");
  detail::rope_cos_sin(0, rot_dim / 2, rot_dim, pos, base, freq_scale, cos_out, sin_out);
}

void rope_with_angles(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim,
                      const float* cos, const float* sin, RopeStyle style) {
  if (rot_dim % 2 != 0 || rot_dim > head_dim) {
    throw std::invalid_argument("rope_with_angles: rot_dim must be even and <= head_dim");
  }
  HWY_DYNAMIC_DISPATCH(RopeWithAngles)
  (x, n_heads, head_dim, rot_dim, cos, sin, style == RopeStyle::kAdjacent);
}

void softmax(float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(Softmax)(x, n); }

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(SiluMul)(gate, up, n, out);
}

void gelu_tanh_mul(const float* gate, const float* up, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(GeluTanhMul)(gate, up, n, out);
}

void to_bf16(const float* x, int64_t n, uint16_t* out) { HWY_DYNAMIC_DISPATCH(ToBf16)(x, n, out); }

void attention_batch(const float* q, int64_t q_stride, int64_t n_tokens, int64_t pos0, int64_t n_heads_in_group,
                     const float* k, const float* v, int64_t kv_stride, int64_t head_dim, float scale,
                     int64_t window, float* out, int64_t out_stride, float* scratch) {
  if (n_heads_in_group < 1 || head_dim < 1 || pos0 < 0 || window < 0) {
    throw std::invalid_argument("attention_batch: bad shape");
  }
  if (n_tokens <= 0) return;
  HWY_DYNAMIC_DISPATCH(AttentionBatch)(q, q_stride, n_tokens, pos0, n_heads_in_group, k, v, kv_stride, head_dim,
                                       scale, window, out, out_stride, scratch);
}

int64_t attention_batch_block_tokens(int64_t n_heads_in_group) {
  return detail::attn_block_tokens(n_heads_in_group);
}

int64_t attention_batch_scratch_floats(int64_t n_heads_in_group, int64_t head_dim) {
  return detail::attn_scratch_floats(n_heads_in_group, head_dim);
}

}  // namespace nibble
#endif  // HWY_ONCE
