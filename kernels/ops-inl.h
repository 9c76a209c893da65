// Per-target element-wise and attention ops (included by ops.cpp through foreach_target.h).
// Tails shorter than a vector fall back to scalar code with the same formulas.

#include <algorithm>
#include <cmath>

#include "kernels/fp16.h"
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

// Rotates pairs [p0, p1) of every head with the angles' cos/sin (index i − p0 for pair i).
HWY_INLINE void RotatePairs(float* x, int64_t n_heads, int64_t head_dim, int64_t half, int64_t p0,
                            int64_t p1, const float* cos_buf, const float* sin_buf, bool adjacent) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
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

void Rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float base,
          float freq_scale, bool adjacent) {
  const int64_t half = rot_dim / 2;
  float cos_buf[detail::kRopeChunk], sin_buf[detail::kRopeChunk];
  for (int64_t p0 = 0; p0 < half; p0 += detail::kRopeChunk) {
    const int64_t p1 = std::min(half, p0 + detail::kRopeChunk);
    detail::rope_cos_sin(p0, p1, rot_dim, pos, base, freq_scale, cos_buf, sin_buf);
    RotatePairs(x, n_heads, head_dim, half, p0, p1, cos_buf, sin_buf, adjacent);
  }
}

void RopeWithAngles(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, const float* cos,
                    const float* sin, bool adjacent) {
  RotatePairs(x, n_heads, head_dim, rot_dim / 2, 0, rot_dim / 2, cos, sin, adjacent);
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

// fp32_to_bf16's rounding on 32-bit lanes: add 0x7FFF plus the lowest kept bit, keep the top 16
// bits; NaNs keep their top bits with the quiet bit set.
void ToBf16(const float* x, int64_t n, uint16_t* out) {
  const DF df;
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<uint16_t, DF> du16;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const auto half = hn::Set(du, 0x7FFFu), one = hn::Set(du, 1u), quiet = hn::Set(du, 0x40u);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(df, x + i);
    const auto bits = hn::BitCast(du, v);
    const auto high = hn::ShiftRight<16>(bits);
    const auto rounded = hn::ShiftRight<16>(hn::Add(bits, hn::Add(half, hn::And(high, one))));
    const auto result =
        hn::IfThenElse(hn::RebindMask(du, hn::IsNaN(v)), hn::Or(high, quiet), rounded);
    // Every lane is below 2^16, so the saturating demotion from int32 only narrows.
    hn::StoreU(hn::DemoteTo(du16, hn::BitCast(di, result)), du16, out + i);
  }
  for (; i < n; ++i) out[i] = fp32_to_bf16(x[i]);
}

// ½·g·(1 + tanh u) written as g·σ(2u) = g / (1 + e^(−2u)), which has no cancellation in 1 + tanh u
// for negative g (the result keeps full relative precision down to where it underflows). The
// exponent is capped at 88, where e^88 is still a finite float: hn::Exp is unspecified above
// +104, and g / (1 + e^88) is below 1e-36·|g| — zero for every purpose.
void GeluTanhMul(const float* gate, const float* up, int64_t n, float* out) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  constexpr float kMinus2C = static_cast<float>(-2.0 * detail::kGeluC);
  constexpr float kA = static_cast<float>(detail::kGeluA);
  constexpr float kCap = 88.0f;
  const auto one = hn::Set(df, 1.0f), m2c = hn::Set(df, kMinus2C), a = hn::Set(df, kA), cap = hn::Set(df, kCap);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto g = hn::LoadU(df, gate + i);
    const auto g3 = hn::Mul(hn::Mul(g, g), g);
    const auto minus_2u = hn::Mul(m2c, hn::MulAdd(a, g3, g));
    const auto e = hn::Exp(df, hn::Min(minus_2u, cap));
    hn::StoreU(hn::Mul(hn::Div(g, hn::Add(one, e)), hn::LoadU(df, up + i)), df, out + i);
  }
  for (; i < n; ++i) {
    const float g = gate[i];
    const float minus_2u = kMinus2C * (kA * g * g * g + g);
    out[i] = g / (1.0f + std::exp(std::min(minus_2u, kCap))) * up[i];
  }
}

// ---- attention_batch: flash-attention style tiles --------------------------------------------
// A block of query rows (token-major: row r = token i·group + head g) meets the keys/values one
// tile of kAttnKvTile positions at a time. Scores are kept transposed, Sᵀ[t][r], so the running
// max/sum softmax works a vector of rows at a time, and both products are register-blocked outer
// products whose broadcast operand comes straight from memory:
//   Sᵀ[t][r] = Σ_e K[t][e] · Qᵀ[e][r]     (broadcast K, vectors over rows of Qᵀ)
//   acc[r][:] = c[r]·acc[r][:] + Σ_t Pᵀ[t][r] · V[t][:]   (broadcast P, vectors over V rows)
// Capped at 16 lanes so kAttnRowAlign and kAttnKvTile are multiples of the vector on every target.
using DA = hn::CappedTag<float, 16>;

// Finite stand-in for −∞ on masked scores: hn::Exp is only specified on finite inputs, and
// −∞ − (−∞) would be NaN for a row that has seen no visible key yet.
constexpr float kAttnMasked = -1e30f;

// Vectors per register block: AVX-512 has 32 registers (4×4 accumulators + operands fit), the
// narrower targets 16.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr int kAttnVecs = 4;
#else
constexpr int kAttnVecs = 2;
#endif

// st[t·rows + j] = scale · Σ_e k[t·kv_stride + e] · qt[e·rows + j], t < kT, j < kV·N.
template <int kT, int kV>
HWY_INLINE void AttnScores(const float* HWY_RESTRICT qt, int64_t rows, const float* k, int64_t kv_stride,
                           int64_t head_dim, float scale, float* HWY_RESTRICT st) {
  const DA d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  hn::Vec<DA> acc[kT][kV];
  for (int t = 0; t < kT; ++t)
    for (int j = 0; j < kV; ++j) acc[t][j] = hn::Zero(d);
  for (int64_t e = 0; e < head_dim; ++e) {
    hn::Vec<DA> qv[kV];
    for (int j = 0; j < kV; ++j) qv[j] = hn::LoadU(d, qt + e * rows + j * N);
    for (int t = 0; t < kT; ++t) {
      const auto kb = hn::Set(d, k[t * kv_stride + e]);
      for (int j = 0; j < kV; ++j) acc[t][j] = hn::MulAdd(kb, qv[j], acc[t][j]);
    }
  }
  const auto vs = hn::Set(d, scale);
  for (int t = 0; t < kT; ++t)
    for (int j = 0; j < kV; ++j) hn::StoreU(hn::Mul(acc[t][j], vs), d, st + t * rows + j * N);
}

template <int kV>
HWY_INLINE void AttnScoresRows(const float* qt, int64_t rows, const float* k, int64_t kv_stride, int64_t tn,
                               int64_t head_dim, float scale, float* st) {
  int64_t t = 0;
  for (; t + 4 <= tn; t += 4) AttnScores<4, kV>(qt, rows, k + t * kv_stride, kv_stride, head_dim, scale, st + t * rows);
  for (; t < tn; ++t) AttnScores<1, kV>(qt, rows, k + t * kv_stride, kv_stride, head_dim, scale, st + t * rows);
}

// Four rows r of acc (head_dim apart), columns [0, kV·N): acc = c[r]·acc + Σ_t pt[t·rows + r]·v[t].
template <int kV>
HWY_INLINE void AttnPv(const float* HWY_RESTRICT pt, int64_t rows, const float* v, int64_t kv_stride, int64_t tn,
                       const float* HWY_RESTRICT c, float* HWY_RESTRICT acc, int64_t head_dim) {
  constexpr int kR = 4;
  const DA d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  hn::Vec<DA> a[kR][kV];
  for (int r = 0; r < kR; ++r) {
    const auto cr = hn::Set(d, c[r]);
    for (int j = 0; j < kV; ++j) a[r][j] = hn::Mul(hn::LoadU(d, acc + r * head_dim + j * N), cr);
  }
  for (int64_t t = 0; t < tn; ++t) {
    hn::Vec<DA> vv[kV];
    for (int j = 0; j < kV; ++j) vv[j] = hn::LoadU(d, v + t * kv_stride + j * N);
    for (int r = 0; r < kR; ++r) {
      const auto p = hn::Set(d, pt[t * rows + r]);
      for (int j = 0; j < kV; ++j) a[r][j] = hn::MulAdd(p, vv[j], a[r][j]);
    }
  }
  for (int r = 0; r < kR; ++r)
    for (int j = 0; j < kV; ++j) hn::StoreU(a[r][j], d, acc + r * head_dim + j * N);
}

void AttentionBatch(const float* q, int64_t q_stride, int64_t n_tokens, int64_t pos0, int64_t group,
                    const float* k, const float* v, int64_t kv_stride, int64_t head_dim, float scale, int64_t window,
                    float* out, int64_t out_stride, float* scratch) {
  const DA d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  constexpr int64_t KT = detail::kAttnKvTile;
  const int64_t block_tokens = detail::attn_block_tokens(group);
  const int64_t max_rows = detail::attn_padded_rows(group);
  float* qt = scratch;                         // [head_dim][rows]
  float* st = qt + head_dim * max_rows;        // [KT][rows]: scores, then probabilities
  float* acc = st + KT * max_rows;             // [rows][head_dim]
  float* m = acc + max_rows * head_dim;        // running max per row
  float* l = m + max_rows;                     // running sum per row
  float* c = l + max_rows;                     // this tile's rescale of acc, per row
  float* rowpos = c + max_rows;                // query position per row (float: compared with keys)
  float* ktile = rowpos + max_rows;            // [KT][head_dim]: this tile's keys, contiguous
  float* vtile = ktile + KT * head_dim;        // [KT][head_dim]: its values
  // Rows padded to whole vectors (and to the 4-row PV block); pad rows repeat the last token's
  // position with a zero query and are never written out.
  const int64_t align = std::max<int64_t>(N, 4);
  const int64_t full_d = head_dim / (kAttnVecs * N) * (kAttnVecs * N);
  const int64_t vec_d = head_dim / N * N;

  for (int64_t i0 = 0; i0 < n_tokens; i0 += block_tokens) {
    const int64_t nt = std::min(block_tokens, n_tokens - i0);
    const int64_t real_rows = nt * group;
    const int64_t rows = (real_rows + align - 1) / align * align;
    // Rows past real_rows only pad vectors of Qᵀ and Sᵀ: the P·V blocks skip them (one token of a
    // group of 8 fills half of a 16-lane vector, so decode did twice the P·V work it needed).
    const int64_t pv_rows = (real_rows + 3) / 4 * 4;
    const int64_t pos_first = pos0 + i0, pos_last = pos0 + i0 + nt - 1;
    for (int64_t r = 0; r < rows; ++r) {
      const float* qr = r < real_rows ? q + (i0 + r / group) * q_stride + (r % group) * head_dim : nullptr;
      for (int64_t e = 0; e < head_dim; ++e) qt[e * rows + r] = qr ? qr[e] : 0.0f;
      rowpos[r] = static_cast<float>(std::min(pos_first + r / group, pos_last));
      m[r] = kAttnMasked;
      l[r] = 0.0f;
    }
    std::fill(acc, acc + rows * head_dim, 0.0f);

    const int64_t key_first = window > 0 ? std::max<int64_t>(0, pos_first - window + 1) : 0;
    for (int64_t t0 = key_first; t0 <= pos_last; t0 += KT) {
      const int64_t tn = std::min(KT, pos_last + 1 - t0);
      // Rows kv_stride apart are first copied into contiguous tiles: with a token-major cache
      // (1 KiB between a head's rows for 4 kv heads of 64) a 64-row tile maps onto a quarter of
      // L1's sets and the P·V pass, which rereads the V tile for every 4 query rows, missed L1
      // (attention alone, 1 thread, 1.1B shape: 172–176 → 178–179 GFLOP/s). nibble's own cache is
      // head-major (kv_stride = head_dim) and is read in place.
      const float* kt = k + t0 * kv_stride;
      const float* vt = v + t0 * kv_stride;
      if (kv_stride != head_dim) {
        for (int64_t t = 0; t < tn; ++t) {
          const float* ks = kt + t * kv_stride;
          const float* vs = vt + t * kv_stride;
          float* kd = ktile + t * head_dim;
          float* vd = vtile + t * head_dim;
          int64_t e = 0;
          for (; e < vec_d; e += N) {
            hn::StoreU(hn::LoadU(d, ks + e), d, kd + e);
            hn::StoreU(hn::LoadU(d, vs + e), d, vd + e);
          }
          for (; e < head_dim; ++e) {
            kd[e] = ks[e];
            vd[e] = vs[e];
          }
        }
        kt = ktile;
        vt = vtile;
      }
      // 1. Scores Sᵀ = scale · K·Qᵀ. Rows outer so a Qᵀ slice stays in L1 while the tile streams.
      int64_t r0 = 0;
      for (; r0 + kAttnVecs * N <= rows; r0 += kAttnVecs * N) {
        AttnScoresRows<kAttnVecs>(qt + r0, rows, kt, head_dim, tn, head_dim, scale, st + r0);
      }
      for (; r0 < rows; r0 += N)
        AttnScoresRows<1>(qt + r0, rows, kt, head_dim, tn, head_dim, scale, st + r0);

      // 2. Online softmax, a vector of rows at a time. Masking is needed only where the tile
      // reaches past the block's first query (causal diagonal) or behind the last one's window.
      const bool need_mask = t0 + tn - 1 > pos_first || (window > 0 && pos_last - t0 >= window);
      const auto masked = hn::Set(d, kAttnMasked);
      const auto half_masked = hn::Set(d, 0.5f * kAttnMasked);
      const auto win = hn::Set(d, static_cast<float>(window));
      for (int64_t j = 0; j < rows; j += N) {
        auto tmax = masked;
        if (need_mask) {
          const auto pos = hn::LoadU(d, rowpos + j);
          for (int64_t t = 0; t < tn; ++t) {
            const auto key = hn::Set(d, static_cast<float>(t0 + t));
            auto vis = hn::Le(key, pos);
            if (window > 0) vis = hn::And(vis, hn::Lt(hn::Sub(pos, key), win));
            const auto sv = hn::IfThenElse(vis, hn::LoadU(d, st + t * rows + j), masked);
            hn::StoreU(sv, d, st + t * rows + j);
            tmax = hn::Max(tmax, sv);
          }
        } else {
          for (int64_t t = 0; t < tn; ++t) tmax = hn::Max(tmax, hn::LoadU(d, st + t * rows + j));
        }
        const auto m_old = hn::LoadU(d, m + j);
        const auto m_new = hn::Max(m_old, tmax);
        const auto cv = hn::Exp(d, hn::Sub(m_old, m_new));
        auto sum = hn::Zero(d);
        for (int64_t t = 0; t < tn; ++t) {
          const auto sv = hn::LoadU(d, st + t * rows + j);
          // A row with no visible key yet has m_new = kAttnMasked, so exp(s − m_new) = 1 on its
          // masked scores: the compare zeroes them.
          const auto p = hn::IfThenElseZero(hn::Gt(sv, half_masked), hn::Exp(d, hn::Sub(sv, m_new)));
          hn::StoreU(p, d, st + t * rows + j);
          sum = hn::Add(sum, p);
        }
        hn::StoreU(cv, d, c + j);
        hn::StoreU(m_new, d, m + j);
        hn::StoreU(hn::MulAdd(hn::LoadU(d, l + j), cv, sum), d, l + j);
      }

      // 3. acc = diag(c)·acc + P·V, four rows × kAttnVecs vectors of head_dim per register block.
      for (int64_t r = 0; r < pv_rows; r += 4) {
        float* ar = acc + r * head_dim;
        int64_t e = 0;
        for (; e < full_d; e += kAttnVecs * N)
          AttnPv<kAttnVecs>(st + r, rows, vt + e, head_dim, tn, c + r, ar + e, head_dim);
        for (; e < vec_d; e += N)
          AttnPv<1>(st + r, rows, vt + e, head_dim, tn, c + r, ar + e, head_dim);
        for (; e < head_dim; ++e) {  // scalar tail of an odd head_dim
          for (int64_t rr = 0; rr < 4; ++rr) {
            float a = ar[rr * head_dim + e] * c[r + rr];
            for (int64_t t = 0; t < tn; ++t) a += st[t * rows + r + rr] * vt[t * head_dim + e];
            ar[rr * head_dim + e] = a;
          }
        }
      }
    }

    for (int64_t r = 0; r < real_rows; ++r) {
      const auto inv = hn::Set(d, 1.0f / l[r]);
      const float* ar = acc + r * head_dim;
      float* o = out + (i0 + r / group) * out_stride + (r % group) * head_dim;
      int64_t e = 0;
      for (; e < vec_d; e += N) hn::StoreU(hn::Mul(hn::LoadU(d, ar + e), inv), d, o + e);
      for (; e < head_dim; ++e) o[e] = ar[e] / l[r];
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace nibble
HWY_AFTER_NAMESPACE();

#endif  // NIBBLE_KERNELS_OPS_INL_H_
