// AArch64 int8 matmul tiles on the Armv8.2 dot product (sdot), on plain Armv8.0 NEON (widening
// multiplies), and, where the including file asks for it, the Armv8.6 int8 matrix multiply
// (smmla). Included by matmul_neon_{plain,dotprod,i8mm}.cpp, which define:
//   NIBBLE_NEON_ATTR     the target attribute every function here carries. Attributes rather
//                        than per-file -march flags: inline functions from shared headers (the
//                        unpackers, the standard library) must stay base Armv8 code, or the
//                        linker could keep a dotprod-compiled copy of one for a CPU without it.
//   NIBBLE_NEON_DOTPROD  1: 16-byte dot products are sdot; 0: smull/smlal2 + sadalp.
//   NIBBLE_NEON_I8MM     1 to compile the smmla GEMM tiles.
// Everything is in an anonymous namespace: each file gets its own instantiations.
//
// Weights reach the tiles through a Blocks policy that loads one 32-block of 4 weight rows as
// signed int8 (elements 0..15 in lo, 16..31 in hi) plus 4-lane float scales (lane r = row r):
//   Q4_0, Q8_0 (plain and kLayoutPacked4)  hand-written loads, one scale per block; Q4_0's
//                                          +8 offset leaves as 8·Σa in the integer domain.
//   every other format                     the shared scalar unpackers (dot-inl.h), with a
//                                          scale and a bias (min) per 16-element half.
// Tiles: 4 weight rows × MA activation rows per sdot tile; 4 weight rows × 2·MP activation rows
// per smmla tile, whose 2×2 int32 blocks pair weight rows (0,1), (2,3) with activation rows.
// Integer block dot products are exact; each is converted to float once and scaled, as on x86.
#pragma once

#include <arm_neon.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/matmul_internal.h"
// Only the target-independent part of dot-inl.h (the unpackers): with its per-target guard macro
// defined and no Highway toggle, it skips its per-target kernels.
#define NIBBLE_KERNELS_DOT_INL_H_
#include "kernels/dot-inl.h"
#undef NIBBLE_KERNELS_DOT_INL_H_

#ifndef NIBBLE_NEON_ATTR
#error "define NIBBLE_NEON_ATTR before including neon_int8-inl.h"
#endif

namespace nibble::detail {
namespace {

// One activation row: int8 blocks of 32 with their scale, sum and half sums (QuantizedInput).
struct Act {
  const int8_t* q;
  const float* d;
  const int32_t* sum;
  const int32_t* sum16;
  const float* dsum_q8_1;  // d·Σq at fp16 precision: what Q4_1 / Q5_1 mins multiply
};

// acc + the products of 16 int8 pairs, spread over the 4 lanes (only the lane sum is used).
NIBBLE_NEON_ATTR inline int32x4_t DotAcc(int32x4_t acc, int8x16_t w, int8x16_t a) {
#if NIBBLE_NEON_DOTPROD
  return vdotq_s32(acc, w, a);
#else
  // Without sdot: elements i and i+8 multiplied and added in int16 (|w·a| ≤ 128·127 since
  // activations stay within ±127, so a pair fits), then pairs of those added into int32.
  const int16x8_t p = vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(a)), w, a);
  return vpadalq_s16(acc, p);
#endif
}

// Lane r ← Σ lanes of v_r: the 4 rows' block dot products as one vector.
NIBBLE_NEON_ATTR inline int32x4_t Reduce4(int32x4_t v0, int32x4_t v1, int32x4_t v2, int32x4_t v3) {
  return vpaddq_s32(vpaddq_s32(v0, v1), vpaddq_s32(v2, v3));
}

NIBBLE_NEON_ATTR inline float32x4_t F16x4(const uint8_t* p0, const uint8_t* p1, const uint8_t* p2,
                                          const uint8_t* p3) {
  const uint16_t h[4] = {load_u16(p0), load_u16(p1), load_u16(p2), load_u16(p3)};
  return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h)));
}

// Where a policy reads its 4 rows: row pointers (GGUF layout) or one kLayoutPacked4 tile.
struct RowSrc {
  const uint8_t* rows[4];
  int64_t nb;
};
struct TileSrc {
  const uint8_t* tile;
  int64_t nb;
};

// --- Blocks policies ------------------------------------------------------------------------
// kHalves: separate scales (and biases) for the two 16-element halves; otherwise `scale` is the
// block scale and kOffset·Σa is subtracted from the integer dot product.

struct Q4_0Blocks {
  using Src = RowSrc;
  static constexpr bool kHalves = false;
  static constexpr int kOffset = 8;
  int8x16_t lo[4], hi[4];
  float32x4_t scale;
  NIBBLE_NEON_ATTR inline void Load(const Src& s, int64_t b) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (int r = 0; r < 4; ++r) {
      const uint8x16_t v = vld1q_u8(s.rows[r] + 18 * b + 2);
      lo[r] = vreinterpretq_s8_u8(vandq_u8(v, m4));
      hi[r] = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
    }
    scale = F16x4(s.rows[0] + 18 * b, s.rows[1] + 18 * b, s.rows[2] + 18 * b, s.rows[3] + 18 * b);
  }
};

struct Q8_0Blocks {
  using Src = RowSrc;
  static constexpr bool kHalves = false;
  static constexpr int kOffset = 0;
  int8x16_t lo[4], hi[4];
  float32x4_t scale;
  NIBBLE_NEON_ATTR inline void Load(const Src& s, int64_t b) {
    for (int r = 0; r < 4; ++r) {
      lo[r] = vld1q_s8(reinterpret_cast<const int8_t*>(s.rows[r] + 34 * b + 2));
      hi[r] = vld1q_s8(reinterpret_cast<const int8_t*>(s.rows[r] + 34 * b + 18));
    }
    scale = F16x4(s.rows[0] + 34 * b, s.rows[1] + 34 * b, s.rows[2] + 34 * b, s.rows[3] + 34 * b);
  }
};

// kLayoutPacked4 (kernels/repack.h): the same values as Q4_0Blocks / Q8_0Blocks from the packed
// tile, so the tiles below give bit-identical results on both layouts. Q4_0: group g = b/4 holds
// row r's 4 blocks at (4g + r)·64, block j's 16 bytes at +16j; scales at nb·64 + (4g + r)·8 + 2j.
struct PackedQ4_0Blocks : Q4_0Blocks {
  using Src = TileSrc;
  NIBBLE_NEON_ATTR inline void Load(const Src& s, int64_t b) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    const int64_t g = b / 4, j = b % 4;
    for (int r = 0; r < 4; ++r) {
      const uint8x16_t v = vld1q_u8(s.tile + (4 * g + r) * 64 + 16 * j);
      lo[r] = vreinterpretq_s8_u8(vandq_u8(v, m4));
      hi[r] = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
    }
    const uint8_t* sc = s.tile + s.nb * 64 + 32 * g + 2 * j;
    scale = F16x4(sc, sc + 8, sc + 16, sc + 24);
  }
};

// Q8_0: group g = b/2 holds row r's 2 blocks at (4g + r)·64; scales at nb·128 + (4g + r)·4 + 2j.
struct PackedQ8_0Blocks : Q8_0Blocks {
  using Src = TileSrc;
  NIBBLE_NEON_ATTR inline void Load(const Src& s, int64_t b) {
    const int64_t g = b / 2, j = b % 2;
    for (int r = 0; r < 4; ++r) {
      const int8_t* q = reinterpret_cast<const int8_t*>(s.tile + (4 * g + r) * 64 + 32 * j);
      lo[r] = vld1q_s8(q);
      hi[r] = vld1q_s8(q + 16);
    }
    const uint8_t* sc = s.tile + s.nb * 128 + 16 * g + 2 * j;
    scale = F16x4(sc, sc + 4, sc + 8, sc + 12);
  }
};

// Every other format: the scalar unpacker of dot-inl.h per row, then vector loads.
template <void (*Unpack)(const uint8_t*, int64_t, UnpackedBlock&)>
struct UnpackedBlocks {
  using Src = RowSrc;
  static constexpr bool kHalves = true;
  static constexpr int kOffset = 0;
  int8x16_t lo[4], hi[4];
  float32x4_t scale, scale_hi, bias, bias_hi;
  bool q8_1_min = false;  // bias (one per block) × dsum_q8_1, as llama.cpp's q8_1 pairing
  NIBBLE_NEON_ATTR inline void Load(const Src& s, int64_t b) {
    UnpackedBlock u[4];
    float sc[2][4], bi[2][4];
    for (int r = 0; r < 4; ++r) {
      Unpack(s.rows[r], b, u[r]);
      lo[r] = vld1q_s8(u[r].w);
      hi[r] = vld1q_s8(u[r].w + 16);
      for (int h = 0; h < 2; ++h) {
        sc[h][r] = u[r].half_scale[h];
        bi[h][r] = u[r].half_bias[h];
      }
    }
    q8_1_min = u[0].q8_1_min;  // a property of the format: the same for every row
    scale = vld1q_f32(sc[0]);
    scale_hi = vld1q_f32(sc[1]);
    bias = vld1q_f32(bi[0]);
    bias_hi = vld1q_f32(bi[1]);
  }
};

// --- sdot tile: 4 weight rows × MA activation rows; out[4m + r] --------------------------------
template <class Blocks, int MA>
NIBBLE_NEON_ATTR inline void DotTile(const typename Blocks::Src& src, const Act* a, float* out) {
  Blocks w;
  float32x4_t acc[MA];
  for (int m = 0; m < MA; ++m) acc[m] = vdupq_n_f32(0.0f);
  const int32x4_t zero = vdupq_n_s32(0);
  for (int64_t b = 0; b < src.nb; ++b) {
    w.Load(src, b);
    for (int m = 0; m < MA; ++m) {
      const int8x16_t alo = vld1q_s8(a[m].q + 32 * b), ahi = vld1q_s8(a[m].q + 32 * b + 16);
      if constexpr (!Blocks::kHalves) {
        int32x4_t dot = Reduce4(DotAcc(DotAcc(zero, w.lo[0], alo), w.hi[0], ahi),
                                DotAcc(DotAcc(zero, w.lo[1], alo), w.hi[1], ahi),
                                DotAcc(DotAcc(zero, w.lo[2], alo), w.hi[2], ahi),
                                DotAcc(DotAcc(zero, w.lo[3], alo), w.hi[3], ahi));
        if constexpr (Blocks::kOffset != 0) dot = vsubq_s32(dot, vdupq_n_s32(Blocks::kOffset * a[m].sum[b]));
        acc[m] = vfmaq_f32(acc[m], vcvtq_f32_s32(dot), vmulq_n_f32(w.scale, a[m].d[b]));
      } else {
        const int32x4_t dlo = Reduce4(DotAcc(zero, w.lo[0], alo), DotAcc(zero, w.lo[1], alo),
                                      DotAcc(zero, w.lo[2], alo), DotAcc(zero, w.lo[3], alo));
        const int32x4_t dhi = Reduce4(DotAcc(zero, w.hi[0], ahi), DotAcc(zero, w.hi[1], ahi),
                                      DotAcc(zero, w.hi[2], ahi), DotAcc(zero, w.hi[3], ahi));
        float32x4_t blk = vmulq_f32(w.scale, vcvtq_f32_s32(dlo));
        blk = vfmaq_f32(blk, w.scale_hi, vcvtq_f32_s32(dhi));
        if (w.q8_1_min) {
          acc[m] = vfmaq_n_f32(acc[m], blk, a[m].d[b]);
          acc[m] = vfmaq_n_f32(acc[m], w.bias, a[m].dsum_q8_1[b]);
        } else {
          blk = vfmaq_n_f32(blk, w.bias, static_cast<float>(a[m].sum16[2 * b]));
          blk = vfmaq_n_f32(blk, w.bias_hi, static_cast<float>(a[m].sum16[2 * b + 1]));
          acc[m] = vfmaq_n_f32(acc[m], blk, a[m].d[b]);
        }
      }
    }
  }
  for (int m = 0; m < MA; ++m) vst1q_f32(out + 4 * m, acc[m]);
}

#if NIBBLE_NEON_I8MM
// --- smmla tile: 4 weight rows × 2·MP activation rows; out[4m + r] ----------------------------
// smmla multiplies a 2×8 int8 matrix by the transpose of another: with weight rows (r0, r1) as
// the first operand and activation rows (m0, m1) as the second, the int32 lanes are
// [r0·m0, r0·m1, r1·m0, r1·m1]. Each 16-element half takes two smmla (bytes 0..7, 8..15).

// Bytes 0..7 of x and of y / bytes 8..15 of x and of y, as one smmla operand each.
NIBBLE_NEON_ATTR inline int8x16_t Low64s(int8x16_t x, int8x16_t y) {
  return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(x), vreinterpretq_s64_s8(y)));
}
NIBBLE_NEON_ATTR inline int8x16_t High64s(int8x16_t x, int8x16_t y) {
  return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(x), vreinterpretq_s64_s8(y)));
}

template <class Blocks, int MP>
NIBBLE_NEON_ATTR inline void MmlaTile(const typename Blocks::Src& src, const Act* a, float* out) {
  Blocks w;
  float32x4_t acc[MP][2];  // [pair of activation rows][pair of weight rows]
  for (int p = 0; p < MP; ++p) acc[p][0] = acc[p][1] = vdupq_n_f32(0.0f);
  const int32x4_t zero = vdupq_n_s32(0);
  for (int64_t b = 0; b < src.nb; ++b) {
    w.Load(src, b);
    // Weight operands: [quarter q of the block][row pair]; quarter q is elements 8q..8q+7.
    int8x16_t wq[4][2];
    for (int rp = 0; rp < 2; ++rp) {
      wq[0][rp] = Low64s(w.lo[2 * rp], w.lo[2 * rp + 1]);
      wq[1][rp] = High64s(w.lo[2 * rp], w.lo[2 * rp + 1]);
      wq[2][rp] = Low64s(w.hi[2 * rp], w.hi[2 * rp + 1]);
      wq[3][rp] = High64s(w.hi[2 * rp], w.hi[2 * rp + 1]);
    }
    // Scales in the lane order of the results: [s_r0, s_r0, s_r1, s_r1] per row pair.
    const float32x4_t s01 = vzip1q_f32(w.scale, w.scale), s23 = vzip2q_f32(w.scale, w.scale);
    for (int p = 0; p < MP; ++p) {
      const Act& a0 = a[2 * p];
      const Act& a1 = a[2 * p + 1];
      const int8x16_t x0lo = vld1q_s8(a0.q + 32 * b), x0hi = vld1q_s8(a0.q + 32 * b + 16);
      const int8x16_t x1lo = vld1q_s8(a1.q + 32 * b), x1hi = vld1q_s8(a1.q + 32 * b + 16);
      const int8x16_t xq0 = Low64s(x0lo, x1lo), xq1 = High64s(x0lo, x1lo);
      const int8x16_t xq2 = Low64s(x0hi, x1hi), xq3 = High64s(x0hi, x1hi);
      const float32x2_t d2 = {a0.d[b], a1.d[b]};
      const float32x4_t da = vcombine_f32(d2, d2);  // [d_m0, d_m1, d_m0, d_m1]
      if constexpr (!Blocks::kHalves) {
        for (int rp = 0; rp < 2; ++rp) {
          int32x4_t dot = vmmlaq_s32(zero, wq[0][rp], xq0);
          dot = vmmlaq_s32(dot, wq[1][rp], xq1);
          dot = vmmlaq_s32(dot, wq[2][rp], xq2);
          dot = vmmlaq_s32(dot, wq[3][rp], xq3);
          if constexpr (Blocks::kOffset != 0) {
            const int32x2_t s2 = {Blocks::kOffset * a0.sum[b], Blocks::kOffset * a1.sum[b]};
            dot = vsubq_s32(dot, vcombine_s32(s2, s2));
          }
          acc[p][rp] = vfmaq_f32(acc[p][rp], vcvtq_f32_s32(dot), vmulq_f32(rp ? s23 : s01, da));
        }
      } else {
        const float32x4_t h01 = vzip1q_f32(w.scale_hi, w.scale_hi), h23 = vzip2q_f32(w.scale_hi, w.scale_hi);
        const float32x4_t b01 = vzip1q_f32(w.bias, w.bias), b23 = vzip2q_f32(w.bias, w.bias);
        const float32x4_t c01 = vzip1q_f32(w.bias_hi, w.bias_hi), c23 = vzip2q_f32(w.bias_hi, w.bias_hi);
        const float32x2_t sum_lo = {static_cast<float>(a0.sum16[2 * b]), static_cast<float>(a1.sum16[2 * b])};
        const float32x2_t sum_hi = {static_cast<float>(a0.sum16[2 * b + 1]), static_cast<float>(a1.sum16[2 * b + 1])};
        const float32x4_t slo = vcombine_f32(sum_lo, sum_lo), shi = vcombine_f32(sum_hi, sum_hi);
        const float32x2_t dq2 = {a0.dsum_q8_1[b], a1.dsum_q8_1[b]};
        const float32x4_t dq = vcombine_f32(dq2, dq2);
        for (int rp = 0; rp < 2; ++rp) {
          const int32x4_t dlo = vmmlaq_s32(vmmlaq_s32(zero, wq[0][rp], xq0), wq[1][rp], xq1);
          const int32x4_t dhi = vmmlaq_s32(vmmlaq_s32(zero, wq[2][rp], xq2), wq[3][rp], xq3);
          float32x4_t blk = vmulq_f32(rp ? s23 : s01, vcvtq_f32_s32(dlo));
          blk = vfmaq_f32(blk, rp ? h23 : h01, vcvtq_f32_s32(dhi));
          if (w.q8_1_min) {
            acc[p][rp] = vfmaq_f32(acc[p][rp], blk, da);
            acc[p][rp] = vfmaq_f32(acc[p][rp], rp ? b23 : b01, dq);
          } else {
            blk = vfmaq_f32(blk, rp ? b23 : b01, slo);
            blk = vfmaq_f32(blk, rp ? c23 : c01, shi);
            acc[p][rp] = vfmaq_f32(acc[p][rp], blk, da);
          }
        }
      }
    }
  }
  // acc[p][rp] lanes [r·m0, r·m1, r'·m0, r'·m1] with r = 2rp, r' = 2rp + 1.
  for (int p = 0; p < MP; ++p) {
    float lanes[2][4];
    vst1q_f32(lanes[0], acc[p][0]);
    vst1q_f32(lanes[1], acc[p][1]);
    for (int i = 0; i < 2; ++i) {
      for (int rp = 0; rp < 2; ++rp) {
        out[4 * (2 * p + i) + 2 * rp] = lanes[rp][i];
        out[4 * (2 * p + i) + 2 * rp + 1] = lanes[rp][2 + i];
      }
    }
  }
}
#endif  // NIBBLE_NEON_I8MM

// --- Row-range drivers -------------------------------------------------------------------------
// Output rows [n0, n1) for every activation row, 4 weight rows at a time (the last real row
// stands in for missing ones at the N tail; their results are dropped). Activation rows go in
// groups of 4 (sdot: MA = 4; smmla: two pairs), then pairs (smmla), then single rows (sdot).

NIBBLE_NEON_ATTR inline Act MakeAct(const MatmulArgs& args, int64_t m) {
  const QuantizedInput& qx = *args.qx;
  const int64_t K = args.K;
  return Act{qx.q.data() + m * K, qx.d.data() + m * (K / 32), qx.sum.data() + m * (K / 32),
             qx.sum16.data() + m * (K / 16), qx.dsum_q8_1.data() + m * (K / 32)};
}

// Decode reads every weight once from memory: fetch the next 4-row tile while computing this one
// (as the x86 drivers do, where MatmulArgs::prefetches_next_tile says so).
inline void PrefetchRange(const uint8_t* p, uint64_t bytes) {
  for (const uint8_t* end = p + bytes; p < end; p += 64) __builtin_prefetch(p);
}

template <class Blocks, bool kMmla>
NIBBLE_NEON_ATTR inline void TileRows(const typename Blocks::Src& src, const MatmulArgs& args, int64_t n,
                                      int64_t nr) {
  float out[16];
  Act a[4];
  int64_t m = 0;
  const auto store = [&](int count) {
    for (int i = 0; i < count; ++i) {
      for (int64_t r = 0; r < nr; ++r) args.y[(m + i) * args.ldy + n + r] = out[4 * i + r];
    }
  };
  for (; m + 4 <= args.M; m += 4) {
    for (int i = 0; i < 4; ++i) a[i] = MakeAct(args, m + i);
#if NIBBLE_NEON_I8MM
    if constexpr (kMmla) {
      MmlaTile<Blocks, 2>(src, a, out);
    } else {
      DotTile<Blocks, 4>(src, a, out);
    }
#else
    DotTile<Blocks, 4>(src, a, out);
#endif
    store(4);
  }
#if NIBBLE_NEON_I8MM
  if constexpr (kMmla) {
    for (; m + 2 <= args.M; m += 2) {
      for (int i = 0; i < 2; ++i) a[i] = MakeAct(args, m + i);
      MmlaTile<Blocks, 1>(src, a, out);
      store(2);
    }
  }
#endif
  for (; m < args.M; ++m) {
    a[0] = MakeAct(args, m);
    DotTile<Blocks, 1>(src, a, out);
    store(1);
  }
}

template <class Blocks, bool kMmla>
NIBBLE_NEON_ATTR void Rows(const MatmulArgs& args, int64_t n0, int64_t n1) {
  RowSrc src;
  src.nb = args.K / 32;
  for (int64_t n = n0; n < n1; n += 4) {
    const int64_t nr = std::min<int64_t>(4, n1 - n);
    if (args.prefetches_next_tile(n, n1))
      PrefetchRange(args.w + (n + 4) * args.w_row_bytes, 4 * args.w_row_bytes);
    for (int64_t r = 0; r < 4; ++r) src.rows[r] = args.w + (n + std::min(r, nr - 1)) * args.w_row_bytes;
    TileRows<Blocks, kMmla>(src, args, n, nr);
  }
}

// kLayoutPacked4: n0 is a multiple of 4 (the matmul driver hands out whole tiles).
template <class Blocks, bool kMmla>
NIBBLE_NEON_ATTR void PackedRows(const MatmulArgs& args, int64_t n0, int64_t n1) {
  TileSrc src;
  src.nb = args.K / 32;
  for (int64_t n = n0; n < n1; n += 4) {
    const int64_t nr = std::min<int64_t>(4, n1 - n);
    src.tile = args.w + (n / 4) * args.w_tile_bytes;
    if (args.prefetches_next_tile(n, n1))
      PrefetchRange(src.tile + args.w_tile_bytes, args.w_tile_bytes);
    TileRows<Blocks, kMmla>(src, args, n, nr);
  }
}

using RowsFn = void (*)(const MatmulArgs&, int64_t, int64_t);

// The row-range function for one weight type and layout, nullptr where there is none here.
template <bool kMmla>
RowsFn NeonRowsFor(TensorType t, uint32_t layout) {
  if (layout == kLayoutPacked4) {
    if (t == TensorType::Q4_0) return PackedRows<PackedQ4_0Blocks, kMmla>;
    if (t == TensorType::Q8_0) return PackedRows<PackedQ8_0Blocks, kMmla>;
    return nullptr;
  }
  if (layout != kLayoutGguf) return nullptr;
  switch (t) {
    case TensorType::Q4_0: return Rows<Q4_0Blocks, kMmla>;
    case TensorType::Q8_0: return Rows<Q8_0Blocks, kMmla>;
    case TensorType::Q6_K: return Rows<UnpackedBlocks<unpack_q6_k>, kMmla>;
    case TensorType::Q4_1: return Rows<UnpackedBlocks<unpack_q4_1>, kMmla>;
    case TensorType::Q5_0: return Rows<UnpackedBlocks<unpack_q5_0>, kMmla>;
    case TensorType::Q5_1: return Rows<UnpackedBlocks<unpack_q5_1>, kMmla>;
    case TensorType::IQ4_NL: return Rows<UnpackedBlocks<unpack_iq4_nl>, kMmla>;
    case TensorType::IQ4_XS: return Rows<UnpackedBlocks<unpack_iq4_xs>, kMmla>;
    case TensorType::Q2_K: return Rows<UnpackedBlocks<unpack_q2_k>, kMmla>;
    case TensorType::Q3_K: return Rows<UnpackedBlocks<unpack_q3_k>, kMmla>;
    case TensorType::Q4_K: return Rows<UnpackedBlocks<unpack_q4_k>, kMmla>;
    case TensorType::Q5_K: return Rows<UnpackedBlocks<unpack_q5_k>, kMmla>;
    case TensorType::Q4_G64: return Rows<UnpackedBlocks<unpack_q4_g64>, kMmla>;
    case TensorType::Q4_G128: return Rows<UnpackedBlocks<unpack_q4_g128>, kMmla>;
    case TensorType::Q8_C: return Rows<UnpackedBlocks<unpack_q8_c>, kMmla>;
    default: return nullptr;
  }
}

}  // namespace
}  // namespace nibble::detail
