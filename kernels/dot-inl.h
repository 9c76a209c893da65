// Per-target matmul kernels, compiled once per Highway target via foreach_target.h (included by
// matmul.cpp). Three int8 paths:
//   AVX3_DL  512-bit, vpdpbusd (AVX-512 VNNI)             two 32-blocks per vector (Q4_0: four,
//   AVX3     512-bit, vpmaddubsw + vpmaddwd (AVX-512BW)   as low/high nibble halves)
//   AVX2     256-bit, vpmaddubsw + vpmaddwd               one 32-block per vector (prefill on
//            AVX-VNNI CPUs: VEX vpdpbusd panel GEMM, gemm_panel_avx2-inl.h)
//   others   portable Highway (int8 → int32 promote, multiply, add), weights unpacked per block
// The x86 paths feed the unsigned operand with weights made non-negative (nibble q for Q4_0,
// q+32 for Q6_K, |q| with the sign moved onto the activation for Q8_0) and remove the offset with
// the activation block sums, subtracted in the integer domain before the one float conversion
// per block. Q4_0, Q8_0, Q6_K, Q4_K and Q5_K have hand-fused tiles (the K-quant ones sum each
// 256-element super-block in int32 against q8_K activations), AVX-512 also Q4_1, Q5_0, Q5_1,
// Q2_K, Q3_K and, with VNNI, IQ4_NL and IQ4_XS; every other format and target goes through one
// generic tile over a small per-format decoder (TileDecoded), whose offsets and mins enter as a
// float bias × activation half sums.
//
// Tiling: 4 weight rows × one activation row at a time; the driver walks all M activation rows
// for each 4-row tile, so the tile's weights stay in L1 while activations stream.

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/fp16.h"
#include "kernels/matmul_internal.h"
#include "kernels/quant_tables.h"
#include "kernels/unaligned.h"

// Target-independent helpers (normal include guard).
#ifndef NIBBLE_KERNELS_DOT_COMMON_
#define NIBBLE_KERNELS_DOT_COMMON_
namespace nibble::detail {

// Weights of one 32-block as integers plus the scale and bias of each 16-element half, for the
// portable path: element e of half h is half_scale[h]·w[e] + half_bias[h] (the bias, a format's
// min, multiplies the activation half-block sum).
struct UnpackedBlock {
  alignas(64) int8_t w[32];
  float half_scale[2];
  float half_bias[2] = {0.0f, 0.0f};
  bool q8_1_min = false;  // the bias multiplies QuantizedInput::dsum_q8_1 (Q4_1, Q5_1)
};

// Byte indices for vpermb (AVX-512 VBMI) in the Q4_K/Q5_K tile: int16 lane i of dot vector v
// of row r takes byte 16r + sub-block of the scale vector (one row per 128-bit lane); the odd
// bytes are masked to zero. Vector v holds sub-blocks (0|2, 1|3, 4|6, 5|7)[v] in its halves.
struct Q4KScaleSpread {
  alignas(64) uint8_t index[4][4][64];
  constexpr Q4KScaleSpread() : index{} {
    for (int r = 0; r < 4; ++r) {
      for (int v = 0; v < 4; ++v) {
        for (int p = 0; p < 64; ++p) index[r][v][p] = static_cast<uint8_t>(16 * r + 4 * (v / 2) + v % 2 + 2 * (p / 32));
      }
    }
  }
};
inline constexpr Q4KScaleSpread kQ4KScaleSpread{};

// The same for the Q6_K tile, whose 16 scales are sign-extended to int16 first: int16 lane i of
// quarter p's dot vector takes word 4p + i/8 (its sub-block), as byte indices for vpermb
// (AVX-512 VBMI) and as word indices for vpermw.
struct Q6KScaleSpread {
  alignas(64) uint8_t bytes[4][64];
  alignas(64) int16_t words[4][32];
  constexpr Q6KScaleSpread() : bytes{}, words{} {
    for (int p = 0; p < 4; ++p) {
      for (int i = 0; i < 32; ++i) {
        words[p][i] = static_cast<int16_t>(4 * p + i / 8);
        bytes[p][2 * i] = static_cast<uint8_t>(2 * (4 * p + i / 8));
        bytes[p][2 * i + 1] = static_cast<uint8_t>(2 * (4 * p + i / 8) + 1);
      }
    }
  }
};
inline constexpr Q6KScaleSpread kQ6KScaleSpread{};

// Q3_K: signed 6-bit scale k (0..15) from its 12 packed bytes.
inline int q3_k_scale(const uint8_t* sc, int k) {
  const int low4 = k < 8 ? (sc[k] & 0x0F) : (sc[k - 8] >> 4);
  const int high2 = (sc[8 + k % 4] >> (2 * (k / 4))) & 3;
  return (low4 | high2 << 4) - 32;
}

// IQ4_XS: scale of 32-block ib (ls − 32, −32..31).
inline int iq4_xs_scale(const uint8_t* sb, int ib) {
  const int ls = ((sb[4 + ib / 2] >> (4 * (ib % 2))) & 0x0F) | ((load_u16(sb + 2) >> (2 * ib)) & 3) << 4;
  return ls - 32;
}

// Low nibbles of 16 bytes are elements 0..15, high nibbles 16..31 (Q4_x, Q5_x, IQ4 order).
inline int nibble_elem(const uint8_t* qs, int e) { return e < 16 ? (qs[e] & 0x0F) : (qs[e - 16] >> 4); }

// Q4_G64 / Q4_G128 (nibble's formats): block b is part k of its group of G.
template <int G>
inline void unpack_q4_g(const uint8_t* row, int64_t b, UnpackedBlock& u) {
  const uint8_t* grp = row + (2 + G / 2) * (b / (G / 32));
  const int k = static_cast<int>(b % (G / 32));
  for (int i = 0; i < 32; ++i) {
    const int e = 32 * k + i;
    const uint8_t byte = grp[2 + e % (G / 2)];
    u.w[i] = static_cast<int8_t>((e < G / 2 ? (byte & 0x0F) : (byte >> 4)) - 8);
  }
  u.half_scale[0] = u.half_scale[1] = fp16_at(grp);
}
inline void unpack_q4_g64(const uint8_t* row, int64_t b, UnpackedBlock& u) { unpack_q4_g<64>(row, b, u); }
inline void unpack_q4_g128(const uint8_t* row, int64_t b, UnpackedBlock& u) { unpack_q4_g<128>(row, b, u); }

inline void unpack_q8_c(const uint8_t* row, int64_t b, UnpackedBlock& u) {
  std::memcpy(u.w, row + 4 + 32 * b, 32);
  float d;
  std::memcpy(&d, row, 4);
  u.half_scale[0] = u.half_scale[1] = d;
}

inline void unpack_q4_1(const uint8_t* row, int64_t b, UnpackedBlock& u) {
  const uint8_t* blk = row + 20 * b;
  for (int e = 0; e < 32; ++e) u.w[e] = static_cast<int8_t>(nibble_elem(blk + 4, e));
  u.half_scale[0] = u.half_scale[1] = fp16_at(blk);
  u.half_bias[0] = u.half_bias[1] = fp16_at(blk + 2);
  u.q8_1_min = true;
}

inline void unpack_q5_0(const uint8_t* row, int64_t b, UnpackedBlock& u) {
  const uint8_t* blk = row + 22 * b;
  const uint32_t qh = load_u32(blk + 2);
  for (int e = 0; e < 32; ++e) u.w[e] = static_cast<int8_t>((nibble_elem(blk + 6, e) | ((qh >> e) & 1) << 4) - 16);
  u.half_scale[0] = u.half_scale[1] = fp16_at(blk);
}

inline void unpack_q5_1(const uint8_t* row, int64_t b, UnpackedBlock& u) {
  const uint8_t* blk = row + 24 * b;
  const uint32_t qh = load_u32(blk + 4);
  for (int e = 0; e < 32; ++e) u.w[e] = static_cast<int8_t>(nibble_elem(blk + 8, e) | ((qh >> e) & 1) << 4);
  u.half_scale[0] = u.half_scale[1] = fp16_at(blk);
  u.half_bias[0] = u.half_bias[1] = fp16_at(blk + 2);
  u.q8_1_min = true;
}

inline void unpack_iq4_nl(const uint8_t* row, int64_t b, UnpackedBlock& u) {
  const uint8_t* blk = row + 18 * b;
  for (int e = 0; e < 32; ++e) u.w[e] = kIQ4NLValues[nibble_elem(blk + 2, e)];
  u.half_scale[0] = u.half_scale[1] = fp16_at(blk);
}

inline void unpack_iq4_xs(const uint8_t* row, int64_t b, UnpackedBlock& u) {
  const uint8_t* sb = row + 136 * (b / 8);
  const int ib = static_cast<int>(b % 8);
  for (int e = 0; e < 32; ++e) u.w[e] = kIQ4NLValues[nibble_elem(sb + 8 + 16 * ib, e)];
  u.half_scale[0] = u.half_scale[1] = fp16_at(sb) * static_cast<float>(iq4_xs_scale(sb, ib));
}

// Q4_K / Q5_K 32-block b is sub-block b mod 8: low (even) or high (odd) nibbles of the 32 qs
// bytes of its pair.
inline void unpack_q4_k(const uint8_t* row, int64_t b, UnpackedBlock& u) {
  const uint8_t* sb = row + 144 * (b / 8);
  const int sub = static_cast<int>(b % 8);
  const uint8_t* qs = sb + 16 + 32 * (sub / 2);
  for (int l = 0; l < 32; ++l) u.w[l] = static_cast<int8_t>(sub % 2 ? qs[l] >> 4 : qs[l] & 0x0F);
  int sc, mn;
  k4_scale_min(sb + 4, sub, &sc, &mn);
  u.half_scale[0] = u.half_scale[1] = fp16_at(sb) * static_cast<float>(sc);
  u.half_bias[0] = u.half_bias[1] = -fp16_at(sb + 2) * static_cast<float>(mn);
}

inline void unpack_q5_k(const uint8_t* row, int64_t b, UnpackedBlock& u) {
  const uint8_t* sb = row + 176 * (b / 8);
  const int sub = static_cast<int>(b % 8);
  const uint8_t* qs = sb + 48 + 32 * (sub / 2);
  for (int l = 0; l < 32; ++l) {
    const int low4 = sub % 2 ? qs[l] >> 4 : qs[l] & 0x0F;
    u.w[l] = static_cast<int8_t>(low4 | ((sb[16 + l] >> sub) & 1) << 4);
  }
  int sc, mn;
  k4_scale_min(sb + 4, sub, &sc, &mn);
  u.half_scale[0] = u.half_scale[1] = fp16_at(sb) * static_cast<float>(sc);
  u.half_bias[0] = u.half_bias[1] = -fp16_at(sb + 2) * static_cast<float>(mn);
}

// Q2_K / Q3_K 32-block jb = b mod 8 reads 2-bit field j = jb mod 4 of the 32 bytes of half
// h = jb / 4.
inline void unpack_q2_k(const uint8_t* row, int64_t b, UnpackedBlock& u) {
  const uint8_t* sb = row + 84 * (b / 8);
  const int jb = static_cast<int>(b % 8), h = jb / 4, j = jb % 4;
  for (int l = 0; l < 32; ++l) u.w[l] = static_cast<int8_t>((sb[16 + 32 * h + l] >> (2 * j)) & 3);
  const float d = fp16_at(sb + 80), dmin = fp16_at(sb + 82);
  for (int i = 0; i < 2; ++i) {
    u.half_scale[i] = d * static_cast<float>(sb[2 * jb + i] & 0x0F);
    u.half_bias[i] = -dmin * static_cast<float>(sb[2 * jb + i] >> 4);
  }
}

inline void unpack_q3_k(const uint8_t* row, int64_t b, UnpackedBlock& u) {
  const uint8_t* sb = row + 110 * (b / 8);
  const int jb = static_cast<int>(b % 8), h = jb / 4, j = jb % 4;
  for (int l = 0; l < 32; ++l) {
    const int low2 = (sb[32 + 32 * h + l] >> (2 * j)) & 3;
    const int hbit = (sb[l] >> (4 * h + j)) & 1;
    u.w[l] = static_cast<int8_t>(low2 - (hbit ? 0 : 4));
  }
  const float d = fp16_at(sb + 108);
  for (int i = 0; i < 2; ++i) u.half_scale[i] = d * static_cast<float>(q3_k_scale(sb + 96, 2 * jb + i));
}

inline void unpack_q8_0(const uint8_t* row, int64_t b, UnpackedBlock& u) {
  const uint8_t* blk = row + 34 * b;
  std::memcpy(u.w, blk + 2, 32);
  u.half_scale[0] = u.half_scale[1] = fp16_at(blk);
}

inline void unpack_q4_0(const uint8_t* row, int64_t b, UnpackedBlock& u) {
  const uint8_t* blk = row + 18 * b;
  for (int j = 0; j < 16; ++j) {
    u.w[j] = static_cast<int8_t>((blk[2 + j] & 0x0F) - 8);
    u.w[j + 16] = static_cast<int8_t>((blk[2 + j] >> 4) - 8);
  }
  u.half_scale[0] = u.half_scale[1] = fp16_at(blk);
}

inline void unpack_q6_k(const uint8_t* row, int64_t b, UnpackedBlock& u) {
  const uint8_t* sb = row + 210 * (b / 8);
  const int jb = static_cast<int>(b % 8), h = jb / 4, j = jb % 4;
  const uint8_t* ql = sb + 64 * h + 32 * (j % 2);
  const uint8_t* qh = sb + 128 + 32 * h;
  for (int l = 0; l < 32; ++l) {
    const int low4 = j < 2 ? (ql[l] & 0x0F) : (ql[l] >> 4);
    const int high2 = (qh[l] >> (2 * j)) & 3;
    u.w[l] = static_cast<int8_t>((low4 | high2 << 4) - 32);
  }
  const float d = fp16_at(sb + 208);
  const int8_t* scales = reinterpret_cast<const int8_t*>(sb + 192);
  u.half_scale[0] = d * static_cast<float>(scales[2 * jb]);
  u.half_scale[1] = d * static_cast<float>(scales[2 * jb + 1]);
}

}  // namespace nibble::detail
#endif  // NIBBLE_KERNELS_DOT_COMMON_

// Per-target part.
#if defined(NIBBLE_KERNELS_DOT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_KERNELS_DOT_INL_H_
#undef NIBBLE_KERNELS_DOT_INL_H_
#else
#define NIBBLE_KERNELS_DOT_INL_H_
#endif

#include "hwy/highway.h"

#undef NIBBLE_X86_512
#undef NIBBLE_X86_256
#undef NIBBLE_NATIVE_PACKED
#undef NIBBLE_PANEL_GEMM
#undef NIBBLE_PANEL_GEMM_VNNI
#undef NIBBLE_INT_ATTR
#if HWY_TARGET == HWY_AVX3_DL
#define NIBBLE_X86_512 1
// Highway's AVX3_DL attribute string lacks avx512vnni (toolchain-facts.md). Only EVEX 512-bit
// VNNI intrinsics are used under it, so no VEX-only AVX-VNNI instruction can be emitted by us.
#define NIBBLE_INT_ATTR __attribute__((target("avx512vnni")))
#elif HWY_TARGET == HWY_AVX3
#define NIBBLE_X86_512 1
#define NIBBLE_INT_ATTR
#elif HWY_TARGET == HWY_AVX2
#define NIBBLE_X86_256 1
#define NIBBLE_INT_ATTR
#else
#define NIBBLE_INT_ATTR
#endif

#if defined(NIBBLE_X86_512) || defined(NIBBLE_X86_256)
#include <immintrin.h>
#endif

HWY_BEFORE_NAMESPACE();
namespace nibble {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using detail::MatmulArgs;

// Decode (M ≤ 2) streams each weight from DRAM exactly once, and the hardware prefetchers alone
// left the M = 1 kernels at a third to a half of the read bandwidth (bench_matmul, Zen 5: Q4_0
// 11 GB/s per thread cold vs 57 GB/s from cache). So while a tile computes, it prefetches the
// next tile of its row range (contiguous bytes in both layouts): each step of its K loop fetches
// the share of the next tile's lines that matches the blocks the step covers, which keeps
// requests in flight all through the tile. Prefetching the whole next tile in one burst before
// the tile ran (stops 6–27) stalled on the miss buffers and then computed with none in flight:
// against it, bench_matmul M = 1 from DRAM, 2 threads, Zen 5, best of 3 alternated runs:
// Q6_K 5632 → 2048 1.47×, Q8_0 packed 1.37×, Q4_K 1.33×; 2048 → 5632 1.07–1.17×; 2048 → 2048
// 0.98–1.10×.
// Where to: a line is read about one tile after its prefetch; L1 (non-temporal) or L2 depends on
// the tile's size and the CPU (detail::decode_nta_prefetch_max_bytes).
struct NextTile {
  const uint8_t* line = nullptr;  // its first cache line; nullptr: nothing to prefetch
  int64_t lines = 0;
  int64_t lines_per_block_q16 = 0;  // ⌈lines · 2^16 / blocks of this tile⌉
  bool to_l2 = false;               // prefetcht1 instead of prefetchnta

  NextTile() = default;
  NextTile(const uint8_t* p, uint64_t bytes, int64_t blocks, uint64_t nta_max_bytes) {
    const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63};
    line = p - (reinterpret_cast<uintptr_t>(p) - first);
    lines = static_cast<int64_t>((reinterpret_cast<uintptr_t>(p) + bytes - first + 63) / 64);
    const int64_t b = std::max<int64_t>(blocks, 1);
    lines_per_block_q16 = ((lines << 16) + b - 1) / b;
    to_l2 = bytes > nta_max_bytes;
  }
  // The share of blocks [b0, b1) of this tile (K / 32 blocks in all).
  HWY_INLINE void Fetch(int64_t b0, int64_t b1) const {
    if (line == nullptr) return;
    const int64_t end = std::min(lines, (b1 * lines_per_block_q16) >> 16);
    if (to_l2) {
      for (int64_t l = (b0 * lines_per_block_q16) >> 16; l < end; ++l)
        __builtin_prefetch(line + 64 * l, 0, 2);
    } else {
      for (int64_t l = (b0 * lines_per_block_q16) >> 16; l < end; ++l)
        __builtin_prefetch(line + 64 * l, 0, 0);
    }
  }
};

// One activation row as the tile kernels read it.
struct ActRow {
  const float* x;        // float activations (float weight types)
  const int8_t* q;       // int8 activations, K of them
  const float* d;        // K/32 block scales
  const int32_t* sum;    // K/32 block sums
  const int32_t* sum16;  // K/16 half-block sums
  const float* dsum;     // K/32 bias factors (QuantizedInput::dsum)
  const float* dsum16;   // K/16 bias factors of halves
  const float* dsum_q8_1;  // K/32, llama.cpp's q8_1 rounding (Q4_1, Q5_1 mins)
  int64_t K;
  NextTile next;  // read from a[0] only: the weights to prefetch while this tile computes
};

// ---------------------------------------------------------------------------------------------
// Activation quantisation: bit-identical to quantize_input_reference. Rounding is half away from
// zero like roundf: trunc, then step away from zero when the dropped fraction is ≥ 0.5 (the
// fraction v − trunc(v) is exact in float).

void QuantizeBlocks(const float* X, int64_t b0, int64_t b1, QuantizedInput* qx) {
  const hn::CappedTag<float, 16> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const size_t N = hn::Lanes(df);
  // One scale per group of blocks (QuantizedInput::group_blocks); b0 starts a group.
  const int64_t group = qx->group_blocks;
  // A static step (quantize_input_static) clamps instead: inputs beyond ±127 steps saturate.
  const bool fixed = qx->static_step > 0.0f;
  float d = qx->static_step;
  const auto lo = hn::Set(df, -127.0f), hi = hn::Set(df, 127.0f);
  const bool panel = qx->panel_M == qx->M;
  const int64_t nb = qx->K / 32;
  int64_t m = b0 / nb, blk = b0 % nb;  // b's row and block within it
  for (int64_t b = b0; b < b1; ++b) {
    const float* x = X + 32 * b;
    if (!fixed && (b - b0) % group == 0) {
      auto vmax = hn::Zero(df);
      for (size_t i = 0; i < static_cast<size_t>(32 * group); i += N) {
        vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, x + i)));
      }
      d = detail::activation_scale(hn::GetLane(hn::MaxOfLanes(df, vmax)), static_cast<int>(group));
    }
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const auto vid = hn::Set(df, id);
    const auto half = hn::Set(df, 0.5f);
    const auto one = hn::Set(df, 1.0f);
    int8_t* q = qx->q.data() + 32 * b;
    int32_t half_sums[2];
    for (size_t h = 0; h < 2; ++h) {
      auto acc = hn::Zero(di);
      for (size_t i = 16 * h; i < 16 * (h + 1); i += N) {
        const auto v = hn::Mul(hn::LoadU(df, x + i), vid);
        const auto t = hn::Trunc(v);
        const auto away = hn::IfThenElseZero(hn::Ge(hn::Abs(hn::Sub(v, t)), half), hn::CopySign(one, v));
        const auto qi = hn::ConvertTo(di, hn::Min(hn::Max(hn::Add(t, away), lo), hi));
        acc = hn::Add(acc, qi);
        hn::StoreU(hn::DemoteTo(d8, qi), d8, q + i);
      }
      half_sums[h] = hn::GetLane(hn::SumOfLanes(di, acc));
    }
#if defined(NIBBLE_X86_512) || defined(NIBBLE_X86_256)
    const auto f16c = [](float v) { return _cvtsh_ss(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT)); };
    detail::set_block_factors(*qx, b, d, half_sums[0], half_sums[1], f16c);
#else
    detail::set_block_factors(*qx, b, d, half_sums[0], half_sums[1]);
#endif
    if (panel) detail::store_panel_block(*qx, m, blk);
    if (++blk == nb) blk = 0, ++m;
  }
}

// ---------------------------------------------------------------------------------------------
// Float weights (F32/F16/BF16): FMA in f32, Highway on every target.

struct LoadF32 {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D df, const uint8_t* row, int64_t k) {
    return hn::LoadU(df, reinterpret_cast<const float*>(row) + k);
  }
  static float Scalar(const uint8_t* row, int64_t k) {
    float f;
    std::memcpy(&f, row + 4 * k, 4);
    return f;
  }
};
struct LoadF16 {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D df, const uint8_t* row, int64_t k) {
    const hn::Rebind<hwy::float16_t, D> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(row) + k));
  }
  static float Scalar(const uint8_t* row, int64_t k) { return fp16_to_fp32(detail::load_u16(row + 2 * k)); }
};
struct LoadBF16 {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D df, const uint8_t* row, int64_t k) {
    const hn::Rebind<hwy::bfloat16_t, D> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::bfloat16_t*>(row) + k));
  }
  static float Scalar(const uint8_t* row, int64_t k) { return bf16_to_fp32(detail::load_u16(row + 2 * k)); }
};

// Four named accumulators rather than an array: sizeless vector types (SVE) cannot be array
// elements.
template <class WeightLoad>
HWY_INLINE void FloatTile(const uint8_t* const* rows, const ActRow& a, float* out) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  auto acc0 = hn::Zero(df), acc1 = hn::Zero(df), acc2 = hn::Zero(df), acc3 = hn::Zero(df);
  int64_t k = 0;
  for (; k + N <= a.K; k += N) {
    a.next.Fetch(k / 32, (k + N) / 32);
    const auto xv = hn::LoadU(df, a.x + k);
    acc0 = hn::MulAdd(WeightLoad::Load(df, rows[0], k), xv, acc0);
    acc1 = hn::MulAdd(WeightLoad::Load(df, rows[1], k), xv, acc1);
    acc2 = hn::MulAdd(WeightLoad::Load(df, rows[2], k), xv, acc2);
    acc3 = hn::MulAdd(WeightLoad::Load(df, rows[3], k), xv, acc3);
  }
  out[0] = hn::GetLane(hn::SumOfLanes(df, acc0));
  out[1] = hn::GetLane(hn::SumOfLanes(df, acc1));
  out[2] = hn::GetLane(hn::SumOfLanes(df, acc2));
  out[3] = hn::GetLane(hn::SumOfLanes(df, acc3));
  for (; k < a.K; ++k) {
    for (int r = 0; r < 4; ++r) out[r] += WeightLoad::Scalar(rows[r], k) * a.x[k];
  }
}

// ---------------------------------------------------------------------------------------------
// Int8 kernels.
//
// Each Tile<MA> computes a 4-weight-row × MA-activation-row block of outputs,
// out[m·4 + r]: the weights are unpacked once per tile and reused for MA activation rows, which
// is what makes prefill (M > 1) cheaper per product than decode.

#if defined(NIBBLE_X86_512)

constexpr int kActRows = 4;  // 16 accumulators of the 32 zmm registers

// u8 × s8, groups of 4 adjacent products summed into each int32 lane: lanes 0..7 hold the first
// 32 bytes, lanes 8..15 the second. The maddubs form saturates int16 pairs only above 32767,
// which our operands (u ≤ 128, |s| ≤ 127, so ≤ 2·128·127 = 32512) never reach.
NIBBLE_INT_ATTR HWY_INLINE __m512i DotU8S8(__m512i u, __m512i s) {
#if HWY_TARGET == HWY_AVX3_DL
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
#else
  return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
#endif
}

NIBBLE_INT_ATTR HWY_INLINE __m512i DotU8S8Acc(__m512i acc, __m512i u, __m512i s) {
#if HWY_TARGET == HWY_AVX3_DL
  return _mm512_dpbusd_epi32(acc, u, s);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
#endif
}

// Lanes 4i..4i+3 ← f[i] for i < 4.
NIBBLE_INT_ATTR HWY_INLINE __m512 QuadSpread(__m128 f) {
  const __m512i quad_index = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  return _mm512_permutexvar_ps(quad_index, _mm512_castps128_ps512(f));
}

// Lane 4r + i ← d16[4r + i]·d_a[i]: the four blocks' weight scales of rows 0..3 (the packed
// layout's order) times the activation scales of the same blocks, one multiply for the 4 rows'
// products instead of one per row (bench_matmul M = 1, weights in L2 or L3, 1 thread, Zen 4:
// Q4_0 1.06×, Q4_1 1.03–1.05×, IQ4_NL 1.05×; from DRAM the same speed; the L3-resident KJV
// models' tg256, 1 thread: Q4_0 1.02×, Q4_1 1.03×, Q8_0 1.06×).
NIBBLE_INT_ATTR HWY_INLINE __m512 ScaleRowQuads(__m512 d16, const float* d_a) {
  return _mm512_mul_ps(d16, _mm512_broadcast_f32x4(_mm_loadu_ps(d_a)));
}

// The same for Q8_0's two-block step: lane 2r + k ← d8[2r + k]·d_a[k] for lanes 0..7 (Q8_0
// 1.07–1.10×).
NIBBLE_INT_ATTR HWY_INLINE __m512 ScaleRowPairs(__m256 d8, const float* d_a) {
  const __m256 pair = _mm256_castpd_ps(_mm256_broadcast_sd(reinterpret_cast<const double*>(d_a)));
  return _mm512_castps256_ps512(_mm256_mul_ps(d8, pair));
}

// Lanes 0..7 ← f[0], lanes 8..15 ← f[1].
NIBBLE_INT_ATTR HWY_INLINE __m512 PairScale(const float* f) {
  const __m512i pair_index = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m128 two = _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(f)));
  return _mm512_permutexvar_ps(pair_index, _mm512_castps128_ps512(two));
}

// Two fp16 scales (at p0, p1) as lanes 0..7 / 8..15.
NIBBLE_INT_ATTR HWY_INLINE __m512 PairScaleF16(const uint8_t* p0, const uint8_t* p1) {
  const __m512i pair_index = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m128i h = _mm_insert_epi16(_mm_cvtsi32_si128(detail::load_u16(p0)), detail::load_u16(p1), 1);
  return _mm512_permutexvar_ps(pair_index, _mm512_castps128_ps512(_mm_cvtph_ps(h)));
}

NIBBLE_INT_ATTR HWY_INLINE float F16(const uint8_t* p) { return _cvtsh_ss(detail::load_u16(p)); }

NIBBLE_INT_ATTR HWY_INLINE __m512i Load32Zext(const void* p) {
  return _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void StoreTile(__m512 (&acc)[MA][4], float* out) {
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) out[4 * m + r] = _mm512_reduce_add_ps(acc[m][r]);
  }
}

// Activations of blocks b..b+3 regrouped for Q4_0's four-block step: elements 0..15 of each
// block in a_lo, 16..31 in a_hi (so they meet the low and high nibbles of 4×16 quant bytes),
// and 2^kCorrShift·Σa of block b+i in lane 4i: Q4_0's 8·Σa
// removes its +8 offset, IQ4_NL's 128·Σa its table's +128; kCorrShift < 0 leaves corr unset.
template <int kCorrShift = 3>
NIBBLE_INT_ATTR HWY_INLINE void LoadQ4Activations(const ActRow& a, int64_t b, __m512i& a_lo,
                                                  __m512i& a_hi, __m512i& corr) {
  const __m512i a01 = _mm512_loadu_si512(a.q + 32 * b);
  const __m512i a23 = _mm512_loadu_si512(a.q + 32 * b + 64);
  a_lo = _mm512_shuffle_i64x2(a01, a23, _MM_SHUFFLE(2, 0, 2, 0));
  a_hi = _mm512_shuffle_i64x2(a01, a23, _MM_SHUFFLE(3, 1, 3, 1));
  if constexpr (kCorrShift >= 0) {
    const __m128i sums =
        _mm_slli_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.sum + b)), kCorrShift);
    corr = _mm512_maskz_expand_epi32(0x1111, _mm512_castsi128_si512(sums));
  }
}

template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileQ4_0(const uint8_t* const* rows, const ActRow* a, float* out) {
  const int64_t nb = a[0].K / 32;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm512_setzero_ps();
  }
  int64_t b = 0;
  // Four blocks at a time: the 4×16 qs bytes fill one register, whose low nibbles (elements
  // 0..15 of each block) and high nibbles (16..31) meet the activations regrouped the same way,
  // so no weight shuffles are needed and each int32 lane group 4i..4i+3 is block b+i.
  for (; b + 4 <= nb; b += 4) {
    a[0].next.Fetch(b, b + 4);
    __m512i a_lo[MA], a_hi[MA], corr[MA];
    __m512 da[MA];
    for (int m = 0; m < MA; ++m) {
      LoadQ4Activations(a[m], b, a_lo[m], a_hi[m], corr[m]);
      da[m] = QuadSpread(_mm_loadu_ps(a[m].d + b));
    }
    for (int r = 0; r < 4; ++r) {
      const uint8_t* blk = rows[r] + 18 * b;
      __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2)));
      v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 20)), 1);
      v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 38)), 2);
      v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 56)), 3);
      const __m512i lo = _mm512_and_si512(v, low4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
      __m128i h = _mm_cvtsi32_si128(detail::load_u16(blk));
      h = _mm_insert_epi16(h, detail::load_u16(blk + 18), 1);
      h = _mm_insert_epi16(h, detail::load_u16(blk + 36), 2);
      h = _mm_insert_epi16(h, detail::load_u16(blk + 54), 3);
      const __m512 dw = QuadSpread(_mm_cvtph_ps(h));
      for (int m = 0; m < MA; ++m) {
        const __m512i dot = _mm512_sub_epi32(DotU8S8Acc(DotU8S8(lo, a_lo[m]), hi, a_hi[m]), corr[m]);
        acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, da[m]), acc[m][r]);
      }
    }
  }
  for (; b + 2 <= nb; b += 2) {
    a[0].next.Fetch(b, b + 2);
    __m512i av[MA], corr[MA];
    __m512 da[MA];
    for (int m = 0; m < MA; ++m) {
      av[m] = _mm512_loadu_si512(a[m].q + 32 * b);
      da[m] = PairScale(a[m].d + b);
      // 8·Σa of each block into lanes 0 and 8: removes the +8 offset of the stored nibbles.
      const __m128i sums = _mm_slli_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a[m].sum + b)), 3);
      corr[m] = _mm512_maskz_expand_epi32(0x0101, _mm512_castsi128_si512(sums));
    }
    for (int r = 0; r < 4; ++r) {
      const uint8_t* blk = rows[r] + 18 * b;
      const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 20));
      const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
      // 128-bit lanes [lo q0, lo q1, hi q0, hi q1] reordered to element order.
      __m512i t = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
      t = _mm512_and_si512(t, low4);
      const __m512i u = _mm512_shuffle_i64x2(t, t, _MM_SHUFFLE(3, 1, 2, 0));
      const __m512 dw = PairScaleF16(blk, blk + 18);
      for (int m = 0; m < MA; ++m) {
        const __m512i dot = _mm512_sub_epi32(DotU8S8(u, av[m]), corr[m]);
        acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, da[m]), acc[m][r]);
      }
    }
  }
  if (b < nb) {  // odd block count: the upper half of every operand is zero
    a[0].next.Fetch(b, nb);
    for (int r = 0; r < 4; ++r) {
      const uint8_t* blk = rows[r] + 18 * b;
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m128i m4 = _mm_set1_epi8(0x0F);
      const __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
      const float dw = F16(blk);
      for (int m = 0; m < MA; ++m) {
        const __m512i corr = _mm512_zextsi128_si512(_mm_cvtsi32_si128(8 * a[m].sum[b]));
        const __m512i dot = _mm512_sub_epi32(DotU8S8(_mm512_zextsi256_si512(u), Load32Zext(a[m].q + 32 * b)), corr);
        acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(dw * a[m].d[b]), acc[m][r]);
      }
    }
  }
  StoreTile<MA>(acc, out);
}

template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileQ8_0(const uint8_t* const* rows, const ActRow* a, float* out) {
  const int64_t nb = a[0].K / 32;
  const __m512i zero = _mm512_setzero_si512();
  __m512 acc[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm512_setzero_ps();
  }
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    a[0].next.Fetch(b, b + 2);
    __m512i av[MA];
    __m512 da[MA];
    for (int m = 0; m < MA; ++m) {
      av[m] = _mm512_loadu_si512(a[m].q + 32 * b);
      da[m] = PairScale(a[m].d + b);
    }
    for (int r = 0; r < 4; ++r) {
      const uint8_t* blk = rows[r] + 34 * b;
      const __m512i w = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2))),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 36)), 1);
      // w·a = |w|·(a with w's sign): the unsigned operand must be non-negative.
      const __mmask64 negative = _mm512_movepi8_mask(w);
      const __m512i abs_w = _mm512_abs_epi8(w);
      const __m512 dw = PairScaleF16(blk, blk + 34);
      for (int m = 0; m < MA; ++m) {
        const __m512i s = _mm512_mask_sub_epi8(av[m], negative, zero, av[m]);
        const __m512i dot = DotU8S8(abs_w, s);
        acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, da[m]), acc[m][r]);
      }
    }
  }
  if (b < nb) {
    a[0].next.Fetch(b, nb);
    for (int r = 0; r < 4; ++r) {
      const uint8_t* blk = rows[r] + 34 * b;
      const __m512i w = Load32Zext(blk + 2);
      const __mmask64 negative = _mm512_movepi8_mask(w);
      const __m512i abs_w = _mm512_abs_epi8(w);
      const float dw = F16(blk);
      for (int m = 0; m < MA; ++m) {
        const __m512i av = Load32Zext(a[m].q + 32 * b);
        const __m512i dot = DotU8S8(abs_w, _mm512_mask_sub_epi8(av, negative, zero, av));
        acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(dw * a[m].d[b]), acc[m][r]);
      }
    }
  }
  StoreTile<MA>(acc, out);
}

// kLayoutPacked4 tiles (kernels/repack.h): the same arithmetic as TileQ4_0's four-block loop
// and TileQ8_0's two-block loop — hence bit-identical results — but each row's 64 quant bytes
// are one aligned load and the 4 rows' scales of a group one load + one conversion, instead of
// four (two) unaligned pieces and a 2-byte load per scale. K/32 is a multiple of G here.
#define NIBBLE_NATIVE_PACKED 1


template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void PackedTileQ4_0(const uint8_t* tile, const ActRow* a, float* out) {
  const int64_t nb = a[0].K / 32;
  const uint8_t* scales = tile + nb * 64;  // after nb/4 groups × 4 rows × 64 quant bytes
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i quad_index = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  __m512 acc[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < nb; b += 4) {
    a[0].next.Fetch(b, b + 4);
    __m512i a_lo[MA], a_hi[MA], corr[MA];
    for (int m = 0; m < MA; ++m) LoadQ4Activations(a[m], b, a_lo[m], a_hi[m], corr[m]);
    const uint8_t* group = tile + b * 64;  // (b/4)·4 rows·64 bytes
    // Scales of rows 0..3 × blocks b..b+3 as 16 floats: row r's are lanes 4r..4r+3.
    const __m512 d16 = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(scales + 8 * b)));
    __m512 s16[MA];  // d16 · d_a of the same block
    for (int m = 0; m < MA; ++m) s16[m] = ScaleRowQuads(d16, a[m].d + b);
    for (int r = 0; r < 4; ++r) {
      const __m512i v = _mm512_load_si512(group + 64 * r);
      const __m512i lo = _mm512_and_si512(v, low4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
      const __m512i row_index = _mm512_add_epi32(quad_index, _mm512_set1_epi32(4 * r));
      for (int m = 0; m < MA; ++m) {
        const __m512i dot = _mm512_sub_epi32(DotU8S8Acc(DotU8S8(lo, a_lo[m]), hi, a_hi[m]), corr[m]);
        acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                                    _mm512_permutexvar_ps(row_index, s16[m]), acc[m][r]);
      }
    }
  }
  StoreTile<MA>(acc, out);
}

template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void PackedTileQ8_0(const uint8_t* tile, const ActRow* a, float* out) {
  const int64_t nb = a[0].K / 32;
  const uint8_t* scales = tile + nb * 128;  // after nb/2 groups × 4 rows × 64 quant bytes
  const __m512i pair_index = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  __m512 acc[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < nb; b += 2) {
    a[0].next.Fetch(b, b + 2);
    __m512i av[MA];
    for (int m = 0; m < MA; ++m) av[m] = _mm512_loadu_si512(a[m].q + 32 * b);
    const uint8_t* group = tile + b * 128;  // (b/2)·4 rows·64 bytes
    // Scales of rows 0..3 × blocks b, b+1 as 8 floats: row r's are lanes 2r, 2r+1.
    const __m256 d8 =
        _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(scales + 8 * b)));
    __m512 s8[MA];  // d8 · d_a of the same block
    for (int m = 0; m < MA; ++m) s8[m] = ScaleRowPairs(d8, a[m].d + b);
#if HWY_TARGET == HWY_AVX3_DL
    // vpdpbusd sums in int32 without saturating, so the unsigned operand can be w + 128 (one
    // xor per row, shared by the activation rows) and 128·Σa comes off after — per lane, so
    // that every lane holds the same partial sum as the sign trick below (bit-identical
    // results, and no large lanes cancelling in float).
    __m512i corr[MA];  // lane l: 128·Σ of the 4 activations lane l multiplies
    for (int m = 0; m < MA; ++m)
      corr[m] = DotU8S8(_mm512_set1_epi8(static_cast<char>(0x80)), av[m]);
#endif
    for (int r = 0; r < 4; ++r) {
      const __m512i w = _mm512_load_si512(group + 64 * r);
      const __m512i row_index = _mm512_add_epi32(pair_index, _mm512_set1_epi32(2 * r));
#if HWY_TARGET == HWY_AVX3_DL
      const __m512i biased = _mm512_xor_si512(w, _mm512_set1_epi8(static_cast<char>(0x80)));
#else
      // w·a = |w|·(a with w's sign): maddubs saturates (w + 128)·a, and its unsigned operand
      // must be non-negative.
      const __mmask64 negative = _mm512_movepi8_mask(w);
      const __m512i abs_w = _mm512_abs_epi8(w);
#endif
      for (int m = 0; m < MA; ++m) {
#if HWY_TARGET == HWY_AVX3_DL
        const __m512i dot = _mm512_sub_epi32(DotU8S8(biased, av[m]), corr[m]);
#else
        const __m512i dot =
            DotU8S8(abs_w, _mm512_mask_sub_epi8(av[m], negative, _mm512_setzero_si512(), av[m]));
#endif
        acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                                    _mm512_permutexvar_ps(row_index, s8[m]), acc[m][r]);
      }
    }
  }
  StoreTile<MA>(acc, out);
}

// kLayoutRows16 Q4_0, IQ4_NL and Q4_1 (kernels/repack.h): one vector lane per weight ROW. A block
// of 16 rows is 4 vectors whose lane r holds 4 quant bytes of row r; their low nibbles meet
// activation elements 4k..4k+3 and their high nibbles 16+4k..16+4k+3, each broadcast to every
// lane, so a block is 8 vpdpbusd into one int32 per row and then one conversion and one FMA for
// all 16 rows. The 4-row tiles above spend, per 16 row-blocks, 4 subtractions, conversions, scale
// permutes and FMAs on 4 vectors whose lanes hold quarter-block sums; here that is one each, with
// 12 nibble splits that the broadcasts make necessary (bench_matmul Q4_0 M = 1 from cache, 1
// thread, Zen 4: 1.6× the GB/s of PackedTileQ4_0; docs/design.md).
// Q4_0's and Q4_1's high nibbles stay in place (v & 0xF0 = 16·level) where vpdpbusd sums without
// saturating, and their sum is shifted down once per block instead of every vector once per
// block. IQ4_NL (AVX-512 VNNI only) looks its levels up as table value + 128, an unsigned operand
// (up to 241, which maddubs's int16 pairs would saturate), and removes 128·Σq. Q4_1's levels have
// no offset; its mins (16 per block, after the scales) take one more FMA per block for the 16
// rows, against llama.cpp's q8_1 d·Σa as the other Q4_1 tiles.
template <TensorType kType>
struct Rows16NibbleFormat {
  static constexpr bool kTable = kType == TensorType::IQ4_NL, kMin = kType == TensorType::Q4_1;
  static constexpr int kOffset = kTable ? 128 : kMin ? 0 : 8;  // level = stored − kOffset
  static constexpr int64_t kPairBytes =
      kMin ? detail::kRows16Q4_1PairBytes : detail::kRows16NibblePairBytes;
  static constexpr int64_t kScalesAt = 512;  // in a pair: block i's 16 fp16 d at + 32·i
  static constexpr int64_t kMinsAt = 576;    // Q4_1: block i's 16 fp16 m at + 32·i
};

template <TensorType kType, int MA>
NIBBLE_INT_ATTR HWY_INLINE void Rows16Tile(const uint8_t* strip, const ActRow* a, float* out) {
  using Fmt = Rows16NibbleFormat<kType>;
  const int64_t nb = a[0].K / 32;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
#if HWY_TARGET == HWY_AVX3_DL
  const __m512i high4 = _mm512_set1_epi8(static_cast<char>(0xF0));
  const __m512i table = _mm512_xor_si512(
      _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues))),
      _mm512_set1_epi8(static_cast<char>(0x80)));
#else
  static_assert(!Fmt::kTable, "IQ4_NL strips need vpdpbusd");
#endif
  __m512 acc[MA];
  for (int m = 0; m < MA; ++m) acc[m] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    if (b % 2 == 0) a[0].next.Fetch(b, b + 2);
    const uint8_t* pair = strip + (b / 2) * Fmt::kPairBytes;
    const uint8_t* quants = pair + (b % 2) * 256;
    const __m512 dw = _mm512_cvtph_ps(
        _mm256_load_si256(reinterpret_cast<const __m256i*>(pair + Fmt::kScalesAt + 32 * (b % 2))));
    __m512 mw = _mm512_setzero_ps();
    if constexpr (Fmt::kMin) {
      mw = _mm512_cvtph_ps(
          _mm256_load_si256(reinterpret_cast<const __m256i*>(pair + Fmt::kMinsAt + 32 * (b % 2))));
    }
    __m512i lo[4], hi[4];
    for (int k = 0; k < 4; ++k) {
      const __m512i v = _mm512_load_si512(quants + 64 * k);
      lo[k] = _mm512_and_si512(v, low4);
#if HWY_TARGET == HWY_AVX3_DL
      if constexpr (Fmt::kTable) {
        lo[k] = _mm512_shuffle_epi8(table, lo[k]);
        hi[k] = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
      } else {
        hi[k] = _mm512_and_si512(v, high4);
      }
#else  // maddubs saturates its int16 pairs: 16·level · 127 · 2 would
      hi[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
#endif
    }
    for (int m = 0; m < MA; ++m) {
      const uint8_t* x = reinterpret_cast<const uint8_t*>(a[m].q + 32 * b);
      __m512i l = _mm512_setzero_si512(), h = _mm512_setzero_si512();
      for (int k = 0; k < 4; ++k) {
        l = DotU8S8Acc(l, lo[k], _mm512_set1_epi32(static_cast<int>(detail::load_u32(x + 4 * k))));
        h = DotU8S8Acc(h, hi[k],
                       _mm512_set1_epi32(static_cast<int>(detail::load_u32(x + 16 + 4 * k))));
      }
#if HWY_TARGET == HWY_AVX3_DL
      if constexpr (!Fmt::kTable) h = _mm512_srai_epi32(h, 4);
#endif
      // Σ(stored − kOffset)·q = Σ stored·q − kOffset·Σq.
      __m512i dot = _mm512_add_epi32(l, h);
      if constexpr (Fmt::kOffset != 0)
        dot = _mm512_sub_epi32(dot, _mm512_set1_epi32(Fmt::kOffset * a[m].sum[b]));
      acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                               _mm512_mul_ps(dw, _mm512_set1_ps(a[m].d[b])), acc[m]);
      if constexpr (Fmt::kMin)
        acc[m] = _mm512_fmadd_ps(mw, _mm512_set1_ps(a[m].dsum_q8_1[b]), acc[m]);
    }
  }
  for (int m = 0; m < MA; ++m) _mm512_storeu_ps(out + 16 * m, acc[m]);
}

#if HWY_TARGET == HWY_AVX3_DL
// kLayoutRows16 Q8_0 (kernels/repack.h): a block of 16 rows is 8 vectors whose lane r holds 4
// int8 of row r (elements 4k…4k+3 in vector k), one vpdpbusd each against the activation dword
// broadcast to every lane. The weight is the unsigned operand as w + 128 (one xor per vector,
// shared by the activation rows) and 128·Σa comes off the block's sum; then one conversion and
// one FMA for the 16 rows. PackedTileQ8_0 paid a scale permute, a conversion and an FMA per 2
// vpdpbusd and row.
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void Rows16TileQ8_0(const uint8_t* strip, const ActRow* a, float* out) {
  const int64_t nb = a[0].K / 32;
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[MA];
  for (int m = 0; m < MA; ++m) acc[m] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    if (b % 2 == 0) a[0].next.Fetch(b, b + 2);
    const uint8_t* pair = strip + (b / 2) * detail::kRows16Q8_0PairBytes;
    const uint8_t* quants = pair + (b % 2) * 512;
    const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(
        reinterpret_cast<const __m256i*>(pair + detail::kRows16Q8_0ScalesAt + 32 * (b % 2))));
    __m512i w[8];
    for (int k = 0; k < 8; ++k) w[k] = _mm512_xor_si512(_mm512_load_si512(quants + 64 * k), bias);
    for (int m = 0; m < MA; ++m) {
      const uint8_t* x = reinterpret_cast<const uint8_t*>(a[m].q + 32 * b);
      __m512i dot = _mm512_set1_epi32(-128 * a[m].sum[b]);
      for (int k = 0; k < 8; ++k)
        dot = _mm512_dpbusd_epi32(dot, w[k],
                                  _mm512_set1_epi32(static_cast<int>(detail::load_u32(x + 4 * k))));
      acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                               _mm512_mul_ps(dw, _mm512_set1_ps(a[m].d[b])), acc[m]);
    }
  }
  for (int m = 0; m < MA; ++m) _mm512_storeu_ps(out + 16 * m, acc[m]);
}
#endif

// kLayoutRows16 Q6_K (kernels/repack.h): 16 rows per lane as above, a super-block at a time. Quant
// vector j < 32 holds in lane r row r's low nibbles of elements 4j… (low) and 128 + 4j… (high),
// high-bit vector j < 16 the bit pairs of elements 64g + 4j… at bits 2g (g < 4): one high-bit
// vector and two quant vectors give the four 6-bit dwords of elements 64g + 4j…, each one
// vpdpbusd against an activation dword broadcast to all lanes. Sub-block 4g + j/4's four dword
// sums start at −32·Σa of that sub-block (the level offset), then one conversion and one FMA with
// the 16 rows' sub-block scales. The GGUF tile pays a vpmaddubsw, a vpmaddwd and the 6-bit
// assembly per 64 bytes of ONE row; here they are shared by 16 rows.
// kPerBlock: activations with a scale per 32-block (static scales) instead of per super-block.
template <int MA, bool kPerBlock>
NIBBLE_INT_ATTR HWY_INLINE void Rows16TileQ6_K(const uint8_t* strip, const ActRow* a, float* out) {
  const int64_t n_super = a[0].K / 256;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i bits45 = _mm512_set1_epi8(0x30);
  constexpr int kOr = 0xF8;  // vpternlog: A | (B & C)
  __m512 acc[MA];
  for (int m = 0; m < MA; ++m) acc[m] = _mm512_setzero_ps();
  for (int64_t s = 0; s < n_super; ++s) {
    const uint8_t* quants = strip + detail::rows16_q6_k_quants_at(s);
    const uint8_t* meta = strip + detail::rows16_q6_k_scales_at(s);
    alignas(64) int32_t offset[MA][16];  // −32·Σa of each sub-block
    for (int m = 0; m < MA; ++m) {
      _mm512_store_si512(
          offset[m],
          _mm512_sub_epi32(_mm512_setzero_si512(),
                           _mm512_slli_epi32(_mm512_loadu_si512(a[m].sum16 + 16 * s), 5)));
    }
    __m512 sum[MA];  // Σ sc·dot of the super-block, per row (and d_a where it is per block)
    for (int m = 0; m < MA; ++m) sum[m] = _mm512_setzero_ps();
    for (int t = 0; t < 4; ++t) {  // dwords j = 4t … 4t+3: sub-blocks 4g + t
      a[0].next.Fetch(8 * s + 2 * t, 8 * s + 2 * t + 2);
      for (int half = 0; half < 2; ++half) {  // g = half (low nibbles) and half + 2 (high)
        __m512i dot[MA][2];
        for (int m = 0; m < MA; ++m) {
          dot[m][0] = _mm512_set1_epi32(offset[m][4 * half + t]);
          dot[m][1] = _mm512_set1_epi32(offset[m][4 * (half + 2) + t]);
        }
        for (int i = 0; i < 4; ++i) {
          const int j = 4 * t + i;
          const __m512i v = _mm512_load_si512(quants + detail::rows16_q6_k_low_at(16 * half + j));
          const __m512i h = _mm512_load_si512(quants + detail::rows16_q6_k_high_at(j));
          // Bit pair g to bits 4-5: g = 0 ← 0-1, 1 ← 2-3, 2 in place, 3 ← 6-7.
          const __m512i h_low = half ? _mm512_slli_epi16(h, 2) : _mm512_slli_epi16(h, 4);
          const __m512i h_high = half ? _mm512_srli_epi16(h, 2) : h;
          const __m512i w0 =
              _mm512_ternarylogic_epi32(_mm512_and_si512(v, low4), h_low, bits45, kOr);
          const __m512i w1 = _mm512_ternarylogic_epi32(
              _mm512_and_si512(_mm512_srli_epi16(v, 4), low4), h_high, bits45, kOr);
          for (int m = 0; m < MA; ++m) {
            const uint8_t* x = reinterpret_cast<const uint8_t*>(a[m].q + 256 * s + 4 * j);
            dot[m][0] =
                DotU8S8Acc(dot[m][0], w0,
                           _mm512_set1_epi32(static_cast<int>(detail::load_u32(x + 64 * half))));
            dot[m][1] = DotU8S8Acc(
                dot[m][1], w1,
                _mm512_set1_epi32(static_cast<int>(detail::load_u32(x + 64 * (half + 2)))));
          }
        }
        for (int g2 = 0; g2 < 2; ++g2) {
          const int sub = 4 * (half + 2 * g2) + t;
          const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
              _mm_load_si128(reinterpret_cast<const __m128i*>(meta + 16 * sub))));
          for (int m = 0; m < MA; ++m) {
            const __m512 scale =
                kPerBlock ? _mm512_mul_ps(sc, _mm512_set1_ps(a[m].d[8 * s + sub / 2])) : sc;
            sum[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[m][g2]), scale, sum[m]);
          }
        }
      }
    }
    const __m512 d =
        _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(meta + 256)));
    for (int m = 0; m < MA; ++m) {
      acc[m] = _mm512_fmadd_ps(
          sum[m], kPerBlock ? d : _mm512_mul_ps(d, _mm512_set1_ps(a[m].d[8 * s])), acc[m]);
    }
  }
  for (int m = 0; m < MA; ++m) _mm512_storeu_ps(out + 16 * m, acc[m]);
}

#if HWY_TARGET == HWY_AVX3_DL
// kLayoutRows16 Q4_K's scales (repack.h) as int32 lanes, one row per lane: byte b of each dword
// (b < 4) zero-extended, and bytes (b, b + 1) as an int16 pair.
NIBBLE_INT_ATTR HWY_INLINE __m512i DwordByte(__m512i v, int b) {
  const __m512i index = _mm512_add_epi32(
      _mm512_set4_epi32(0x8080800C, 0x80808008, 0x80808004, static_cast<int>(0x80808000u)),
      _mm512_set1_epi32(b));
  return _mm512_shuffle_epi8(v, index);
}
NIBBLE_INT_ATTR HWY_INLINE __m512i DwordBytePair(__m512i v, int b) {
  const __m512i index = _mm512_add_epi32(
      _mm512_set4_epi32(static_cast<int>(0x800D800Cu), static_cast<int>(0x80098008u),
                        static_cast<int>(0x80058004u), static_cast<int>(0x80018000u)),
      _mm512_set1_epi32(b * 0x10001));
  return _mm512_shuffle_epi8(v, index);
}

// A Q4_K strip super-block's 6-bit scales and mins, 4 per dword lane (one row per lane).
struct Rows16K4Scales {
  __m512i sc03, sc47, mn03, mn47;
  NIBBLE_INT_ATTR HWY_INLINE explicit Rows16K4Scales(const uint8_t* meta) {
    const __m512i low4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
    constexpr int kOr = 0xF8;  // vpternlog: A | (B & C)
    const __m512i v0 = _mm512_load_si512(meta), v1 = _mm512_load_si512(meta + 64);
    const __m512i v2 = _mm512_load_si512(meta + 128);
    sc03 = _mm512_ternarylogic_epi32(_mm512_and_si512(v0, low4), _mm512_slli_epi16(v2, 4), bits45,
                                     kOr);
    sc47 = _mm512_ternarylogic_epi32(_mm512_and_si512(v1, low4), _mm512_slli_epi16(v2, 2), bits45,
                                     kOr);
    mn03 = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(v0, 4), low4), v2, bits45,
                                     kOr);
    mn47 = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(v1, 4), low4),
                                     _mm512_srli_epi16(v2, 2), bits45, kOr);
  }
  NIBBLE_INT_ATTR HWY_INLINE __m512i Scale(int k) const {
    return DwordByte(k < 4 ? sc03 : sc47, k % 4);
  }
  NIBBLE_INT_ATTR HWY_INLINE __m512i Min(int k) const {
    return DwordByte(k < 4 ? mn03 : mn47, k % 4);
  }
};

// kLayoutRows16 Q4_K (kernels/repack.h) against q8_K activations (one d_a per super-block): 16
// rows per lane as Rows16Tile, each sub-block a Q4_0 block's 8 vpdpbusd (high nibbles in place,
// 16·level, shifted down once) and one conversion and FMA against the 16 rows' d·sc_k. The mins
// leave once per super-block as Σ_k m_k·Σa_k, 4 vpdpwssd of the rows' (m_2i, m_2i+1) pairs
// against the activations' block-sum pairs. The 4-row packed tile (PackedTileQ45_K) reduces
// 4 rows' lanes per sub-block with one more vpdpwssd each and sums lanes at the end.
// Q5_K (kFive): each quant vector's two nibble halves get their fifth bit as +16 under a 64-bit
// mask (the high nibbles are then shifted down first: 16·level would not leave room for it).
template <int MA, bool kFive>
NIBBLE_INT_ATTR HWY_INLINE void Rows16TileQ45_K(const uint8_t* strip, const ActRow* a, float* out) {
  const int64_t n_super = a[0].K / 256;
  const __m512i low4 = _mm512_set1_epi8(0x0F), high4 = _mm512_set1_epi8(static_cast<char>(0xF0));
  [[maybe_unused]] const __m512i sixteen = _mm512_set1_epi8(16);
  __m512 acc[MA];
  for (int m = 0; m < MA; ++m) acc[m] = _mm512_setzero_ps();
  for (int64_t s = 0; s < n_super; ++s) {
    const uint8_t* meta = strip + s * detail::rows16_k45_super_bytes(kFive);
    a[0].next.Fetch(8 * s, 8 * s + 2);
    const Rows16K4Scales six(meta);
    const __m512 d =
        _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(meta + 192)));
    const __m512 dmin =
        _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(meta + 224)));
    {
      const __m512i pairs[4] = {DwordBytePair(six.mn03, 0), DwordBytePair(six.mn03, 2),
                                DwordBytePair(six.mn47, 0), DwordBytePair(six.mn47, 2)};
      for (int m = 0; m < MA; ++m) {
        // Block sums (|Σa| ≤ 32·127) as int16 pairs (blocks 2i, 2i + 1).
        alignas(32) int32_t bsum[4];
        _mm_store_si128(reinterpret_cast<__m128i*>(bsum),
                        _mm256_cvtepi32_epi16(_mm256_loadu_si256(
                            reinterpret_cast<const __m256i*>(a[m].sum + 8 * s))));
        __m512i msum = _mm512_setzero_si512();
        for (int i = 0; i < 4; ++i)
          msum = _mm512_dpwssd_epi32(msum, pairs[i], _mm512_set1_epi32(bsum[i]));
        acc[m] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum),
                                  _mm512_mul_ps(dmin, _mm512_set1_ps(a[m].d[8 * s])), acc[m]);
      }
    }
    __m512 sum[MA];  // Σ_k d·sc_k·dot_k of the super-block, per row
    for (int m = 0; m < MA; ++m) sum[m] = _mm512_setzero_ps();
    for (int k = 0; k < 8; ++k) {
      if (k % 2 == 0 && k > 0) a[0].next.Fetch(8 * s + k, 8 * s + k + 2);
      const uint8_t* sub = meta + detail::rows16_k45_sub_at(kFive, k);
      __m512i lo[4], hi[4];
      for (int i = 0; i < 4; ++i) {
        const __m512i v = _mm512_load_si512(sub + 64 * i);
        lo[i] = _mm512_and_si512(v, low4);
        if constexpr (kFive) {
          hi[i] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
          lo[i] = _mm512_mask_add_epi8(lo[i], _cvtu64_mask64(detail::load_u64(sub + 256 + 16 * i)),
                                       lo[i], sixteen);
          hi[i] = _mm512_mask_add_epi8(hi[i], _cvtu64_mask64(detail::load_u64(sub + 264 + 16 * i)),
                                       hi[i], sixteen);
        } else {
          hi[i] = _mm512_and_si512(v, high4);
        }
      }
      const __m512 scale = _mm512_mul_ps(d, _mm512_cvtepi32_ps(six.Scale(k)));
      for (int m = 0; m < MA; ++m) {
        const uint8_t* x = reinterpret_cast<const uint8_t*>(a[m].q + 256 * s + 32 * k);
        __m512i l = _mm512_setzero_si512(), h = _mm512_setzero_si512();
        for (int i = 0; i < 4; ++i) {
          l = _mm512_dpbusd_epi32(l, lo[i],
                                  _mm512_set1_epi32(static_cast<int>(detail::load_u32(x + 4 * i))));
          h = _mm512_dpbusd_epi32(
              h, hi[i], _mm512_set1_epi32(static_cast<int>(detail::load_u32(x + 16 + 4 * i))));
        }
        const __m512i dot = _mm512_add_epi32(l, kFive ? h : _mm512_srai_epi32(h, 4));
        sum[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, sum[m]);
      }
    }
    for (int m = 0; m < MA; ++m)
      acc[m] = _mm512_fmadd_ps(sum[m], _mm512_set1_ps(a[m].d[8 * s]), acc[m]);
  }
  for (int m = 0; m < MA; ++m) _mm512_storeu_ps(out + 16 * m, acc[m]);
}
#endif

// Q6_K with a scale per 32-block of activations (static activation scales). A pair of activation
// blocks is one 64-element quarter of a super-block (4 sub-blocks of 16). Its low nibbles come from 64 consecutive ql bytes, its 2 high bits from 32 qh bytes shifted
// by 2j (j = 0,1 for even quarters, 2,3 for odd ones, one j per 256-bit half).
//
// Per super-block, row and activation row, the 16 combined scales d·sc_k·d_a(k/2) are one vector
// (one multiply instead of one per quarter), and the +32 offset leaves as one FMA against
// 32·Σa of the 16 sub-blocks instead of an integer subtraction per quarter.
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileQ6_KPerBlock(const uint8_t* const* rows, const ActRow* a, float* out) {
  const int64_t n_super = a[0].K / 256;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i bits45 = _mm512_set1_epi8(0x30);
  // Lane group g (4 int32 lanes = 16 elements) of quarter p belongs to sub-block 4p + g.
  const __m512i sub_of_lane = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const __m512i block_of_sub = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  __m512 acc[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm512_setzero_ps();
  }
  for (int64_t s = 0; s < n_super; ++s) {
    a[0].next.Fetch(8 * s, 8 * s + 8);
    __m512 da16[MA], offset16[MA];  // d_a of each sub-block's block; 32·Σa of each sub-block
    for (int m = 0; m < MA; ++m) {
      da16[m] = _mm512_permutexvar_ps(block_of_sub, _mm512_castps256_ps512(_mm256_loadu_ps(a[m].d + 8 * s)));
      offset16[m] = _mm512_cvtepi32_ps(_mm512_slli_epi32(_mm512_loadu_si512(a[m].sum16 + 16 * s), 5));
    }
    __m512 scale[MA][4];  // d·sc_k·d_a per row
    for (int r = 0; r < 4; ++r) {
      const uint8_t* sb = rows[r] + 210 * s;
      const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sb + 192)));
      const __m512 d_sc = _mm512_mul_ps(_mm512_cvtepi32_ps(sc), _mm512_set1_ps(F16(sb + 208)));
      for (int m = 0; m < MA; ++m) {
        scale[m][r] = _mm512_mul_ps(d_sc, da16[m]);
        acc[m][r] = _mm512_fnmadd_ps(scale[m][r], offset16[m], acc[m][r]);
      }
    }
    for (int p = 0; p < 4; ++p) {
      const int64_t b = 8 * s + 2 * p;
      const int h = p >> 1;
      __m512i av[MA];
      for (int m = 0; m < MA; ++m) av[m] = _mm512_loadu_si512(a[m].q + 32 * b);
      const __m512i lane_sub = _mm512_add_epi32(sub_of_lane, _mm512_set1_epi32(4 * p));
      for (int r = 0; r < 4; ++r) {
        const uint8_t* sb = rows[r] + 210 * s;
        const __m512i ql = _mm512_loadu_si512(sb + 64 * h);
        const __m512i lo = (p & 1) ? _mm512_and_si512(_mm512_srli_epi16(ql, 4), low4) : _mm512_and_si512(ql, low4);
        // Both halves need qh's bit pair j at bits 4-5: [qh, qh >> 2] serves j0 = 2 as is and
        // j0 = 0 shifted left by 4.
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 128 + 32 * h)));
        const __m512i qh_pair = _mm512_mask_srli_epi16(qh, 0xFFFF0000u, qh, 2);
        const __m512i hi = (p & 1) ? _mm512_and_si512(qh_pair, bits45) : _mm512_and_si512(_mm512_slli_epi16(qh_pair, 4), bits45);
        const __m512i u = _mm512_or_si512(lo, hi);
        for (int m = 0; m < MA; ++m) {
          acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(DotU8S8(u, av[m])), _mm512_permutexvar_ps(lane_sub, scale[m][r]), acc[m][r]);
        }
      }
    }
  }
  StoreTile<MA>(acc, out);
}

// 16 sub-blocks of 16 with an int16 scale each (Q6_K, Q3_K, Q2_K): sc[p] holds, in int16 lane i,
// the scale of the sub-block that lane i of quarter p's vpmaddubsw pairs belongs to (4p + i/8).
NIBBLE_INT_ATTR HWY_INLINE void SpreadSubBlockScales(__m256i sc16, __m512i (&sc)[4]) {
  for (int p = 0; p < 4; ++p) {
#if HWY_TARGET == HWY_AVX3_DL
    sc[p] = _mm512_permutexvar_epi8(_mm512_load_si512(detail::kQ6KScaleSpread.bytes[p]),
                                    _mm512_castsi256_si512(sc16));
#else
    sc[p] = _mm512_permutexvar_epi16(_mm512_load_si512(detail::kQ6KScaleSpread.words[p]),
                                     _mm512_castsi256_si512(sc16));
#endif
  }
}

// acc + Σ of each int32 lane's two int16 products (vpdpwssd where the target has it).
NIBBLE_INT_ATTR HWY_INLINE __m512i AddPairProducts(__m512i acc, __m512i a, __m512i b) {
#if HWY_TARGET == HWY_AVX3_DL
  return _mm512_dpwssd_epi32(acc, a, b);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
#endif
}

// Σ_k sc_k·(u·q)_k over a super-block, int32 lanes: u[p] the unsigned levels of quarter p (64
// elements, ≤ 63 so vpmaddubsw's int16 pairs cannot saturate against |q| ≤ 127), q its 256
// activations, sc from SpreadSubBlockScales.
NIBBLE_INT_ATTR HWY_INLINE __m512i SuperBlockDot(const __m512i* u, const __m512i* sc,
                                                 const int8_t* q) {
  __m512i dot = _mm512_madd_epi16(_mm512_maddubs_epi16(u[0], _mm512_loadu_si512(q)), sc[0]);
  for (int p = 1; p < 4; ++p) {
    dot = AddPairProducts(dot, _mm512_maddubs_epi16(u[p], _mm512_loadu_si512(q + 64 * p)), sc[p]);
  }
  return dot;
}

// Q6_K against q8_K activations (one d_a per super-block), as Q4_K/Q5_K: the super-block's
// Σ_k sc_k·(q−32)·a over its 16 sub-blocks is exact in int32, so each row takes one conversion
// and one FMA per 256 weights. Per 64-element quarter p (4 sub-blocks of 16): vpmaddubsw of the
// unsigned 6-bit q (≤ 63 × |a| ≤ 127: no int16 saturation), then vpmaddwd (vpdpwssd with
// AVX-512 VNNI) against the sign-extended scales spread over the int16 lanes. The +32 offset
// leaves once per super-block as 32·Σ_k sc_k·Σa_k, one more pair product of 32·sc_k against the
// per-16 activation sums as int16 (|Σa| ≤ 16·127). Against the float-per-quarter tile before it
// (dot product, conversion, scale permute and FMA per quarter), bench_matmul M = 1 from cache, 1
// thread (Zen 5): 45–49 → 52–53 GB/s; M = 8: 1.18×.
//
// Quarter p's 64 bytes: its low nibbles come from 64 consecutive ql bytes, its 2 high bits from
// 32 qh bytes shifted by 2j (j = 0,1 for even quarters, 2,3 for odd ones, one j per 256-bit half).
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileQ6_K(const uint8_t* const* rows, const ActRow* a, float* out) {
  const int64_t n_super = a[0].K / 256;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i bits45 = _mm512_set1_epi8(0x30);
  constexpr int kOr = 0xF8;  // vpternlog: A | (B & C)
  __m512 acc[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm512_setzero_ps();
  }
  for (int64_t s = 0; s < n_super; ++s) {
    a[0].next.Fetch(8 * s, 8 * s + 8);
    __m512i minus_sum16[MA];  // −(the 16 sub-block sums of the activations), int16, low half
    float da[MA];
    for (int m = 0; m < MA; ++m) {
      minus_sum16[m] = _mm512_castsi256_si512(_mm512_cvtepi32_epi16(
          _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(a[m].sum16 + 16 * s))));
      da[m] = a[m].d[8 * s];
    }
    for (int r = 0; r < 4; ++r) {
      const uint8_t* sb = rows[r] + 210 * s;
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sb + 192)));
      // 32·sc_k (|·| ≤ 4096): the offset's products, zero in the upper half.
      const __m512i sc16x32 = _mm512_zextsi256_si512(_mm256_slli_epi16(sc16, 5));
      __m512i sc[4];
      SpreadSubBlockScales(sc16, sc);
      __m512i u[4];
      for (int h = 0; h < 2; ++h) {
        const __m512i ql = _mm512_loadu_si512(sb + 64 * h);
        // Both halves need qh's bit pair j at bits 4-5: [qh, qh >> 2] serves j0 = 2 as is and
        // j0 = 0 shifted left by 4.
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 128 + 32 * h)));
        const __m512i qh_pair = _mm512_mask_srli_epi16(qh, 0xFFFF0000u, qh, 2);
        u[2 * h] = _mm512_ternarylogic_epi32(_mm512_and_si512(ql, low4), _mm512_slli_epi16(qh_pair, 4), bits45, kOr);
        u[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4), qh_pair, bits45, kOr);
      }
      const float d = F16(sb + 208);
      for (int m = 0; m < MA; ++m) {
        const __m512i dot =
            AddPairProducts(SuperBlockDot(u, sc, a[m].q + 256 * s), sc16x32, minus_sum16[m]);
        acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(d * da[m]), acc[m][r]);
      }
    }
  }
  StoreTile<MA>(acc, out);
}

#elif defined(NIBBLE_X86_256)

constexpr int kActRows = 2;  // 8 accumulators of the 16 ymm registers

// u8 × s8 → 8 int32 lanes of 4 products each (no saturation for our operand ranges, see above).
HWY_INLINE __m256i DotU8S8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

HWY_INLINE float F16(const uint8_t* p) { return _cvtsh_ss(detail::load_u16(p)); }

HWY_INLINE float Sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int MA>
HWY_INLINE void StoreTile(__m256 (&acc)[MA][4], float* out) {
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) out[4 * m + r] = Sum8(acc[m][r]);
  }
}

template <int MA>
HWY_INLINE void TileQ4_0(const uint8_t* const* rows, const ActRow* a, float* out) {
  const int64_t nb = a[0].K / 32;
  const __m128i low4 = _mm_set1_epi8(0x0F);
  __m256 acc[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    a[0].next.Fetch(b, b + 1);
    __m256i av[MA], corr[MA];
    for (int m = 0; m < MA; ++m) {
      av[m] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[m].q + 32 * b));
      corr[m] = _mm256_zextsi128_si256(_mm_cvtsi32_si128(8 * a[m].sum[b]));
    }
    for (int r = 0; r < 4; ++r) {
      const uint8_t* blk = rows[r] + 18 * b;
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), low4), _mm_and_si128(q, low4));
      const float dw = F16(blk);
      for (int m = 0; m < MA; ++m) {
        const __m256i dot = _mm256_sub_epi32(DotU8S8(u, av[m]), corr[m]);
        acc[m][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * a[m].d[b]), acc[m][r]);
      }
    }
  }
  StoreTile<MA>(acc, out);
}

template <int MA>
HWY_INLINE void TileQ8_0(const uint8_t* const* rows, const ActRow* a, float* out) {
  const int64_t nb = a[0].K / 32;
  __m256 acc[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    a[0].next.Fetch(b, b + 1);
    __m256i av[MA];
    for (int m = 0; m < MA; ++m) av[m] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[m].q + 32 * b));
    for (int r = 0; r < 4; ++r) {
      const uint8_t* blk = rows[r] + 34 * b;
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      const __m256i abs_w = _mm256_sign_epi8(w, w);  // −128 becomes the unsigned 128
      const float dw = F16(blk);
      for (int m = 0; m < MA; ++m) {
        const __m256i dot = DotU8S8(abs_w, _mm256_sign_epi8(av[m], w));
        acc[m][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * a[m].d[b]), acc[m][r]);
      }
    }
  }
  StoreTile<MA>(acc, out);
}

// Q6_K against q8_K activations (one d_a per super-block): the super-block's Σ_k sc_k·(q−32)·a
// in int32, as the AVX-512 tile. Per 32-block and row: vpmaddubsw of the unsigned 6-bit q, then
// vpmaddwd against the block's two sub-block scales (int16, one per 128-bit lane); the +32 offset
// leaves once per super-block as 32·Σ sc_k·Σa_k. One conversion and FMA per row and super-block
// instead of a conversion, two multiplies and an FMA per 32-block.
template <int MA>
HWY_INLINE void TileQ6_K(const uint8_t* const* rows, const ActRow* a, float* out) {
  const int64_t n_super = a[0].K / 256;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i two_bits = _mm256_set1_epi8(0x03);
  // The int16 pair (sc[2jb], sc[2jb+1]) broadcast to every dword → sc[2jb] in the low lane's
  // words, sc[2jb+1] in the high lane's.
  const __m256i pick = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2,
                                        3, 2, 3, 2, 3);
  __m256 acc[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm256_setzero_ps();
  }
  for (int64_t s = 0; s < n_super; ++s) {
    a[0].next.Fetch(8 * s, 8 * s + 8);
    __m256i sum16[MA];  // the 16 sub-block sums of the activations, int16 (|Σa| ≤ 16·127)
    for (int m = 0; m < MA; ++m) {
      const __m256i s0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[m].sum16 + 16 * s));
      const __m256i s1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[m].sum16 + 16 * s + 8));
      sum16[m] = _mm256_permute4x64_epi64(_mm256_packs_epi32(s0, s1), _MM_SHUFFLE(3, 1, 2, 0));
    }
    for (int r = 0; r < 4; ++r) {
      const uint8_t* sb = rows[r] + 210 * s;
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sb + 192)));
      __m256i dot[MA];
      for (int m = 0; m < MA; ++m) dot[m] = _mm256_setzero_si256();
      for (int jb = 0; jb < 8; ++jb) {
        const int h = jb / 4, j = jb % 4;
        const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 64 * h + 32 * (j & 1)));
        const __m256i lo = j < 2 ? _mm256_and_si256(ql, low4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), low4);
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 128 + 32 * h));
        const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * j)), two_bits);
        const __m256i u = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
        const __m256i sc = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(sc16, _mm256_set1_epi32(jb)), pick);
        for (int m = 0; m < MA; ++m) {
          const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[m].q + 256 * s + 32 * jb));
          dot[m] = _mm256_add_epi32(dot[m], _mm256_madd_epi16(_mm256_maddubs_epi16(u, av), sc));
        }
      }
      const float d = F16(sb + 208);
      for (int m = 0; m < MA; ++m) {
        const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(sc16, sum16[m]), 5);
        acc[m][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(dot[m], offset)),
                                    _mm256_set1_ps(d * a[m].d[8 * s]), acc[m][r]);
      }
    }
  }
  StoreTile<MA>(acc, out);
}

// Q6_K with a scale per 32-block of activations (static activation scales).
template <int MA>
HWY_INLINE void TileQ6_KPerBlock(const uint8_t* const* rows, const ActRow* a, float* out) {
  const int64_t n_super = a[0].K / 256;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i two_bits = _mm256_set1_epi8(0x03);
  __m256 acc[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm256_setzero_ps();
  }
  for (int64_t s = 0; s < n_super; ++s) {
    a[0].next.Fetch(8 * s, 8 * s + 8);
    __m256 sub_scale[4][2];  // d · scales[0..7], d · scales[8..15] per row
    for (int r = 0; r < 4; ++r) {
      const uint8_t* sb = rows[r] + 210 * s;
      const __m256 d = _mm256_set1_ps(F16(sb + 208));
      for (int h = 0; h < 2; ++h) {
        const __m128i sc8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sb + 192 + 8 * h));
        sub_scale[r][h] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc8)), d);
      }
    }
    for (int jb = 0; jb < 8; ++jb) {
      const int64_t b = 8 * s + jb;
      const int h = jb / 4, j = jb % 4;
      __m256i av[MA], corr[MA];
      __m256 da[MA];
      for (int m = 0; m < MA; ++m) {
        av[m] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[m].q + 32 * b));
        da[m] = _mm256_set1_ps(a[m].d[b]);
        corr[m] = _mm256_setr_epi32(32 * a[m].sum16[2 * b], 0, 0, 0, 32 * a[m].sum16[2 * b + 1], 0, 0, 0);
      }
      const __m256i lane_sub = _mm256_setr_epi32(2 * j, 2 * j, 2 * j, 2 * j, 2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j + 1);
      const __m128i shift = _mm_cvtsi32_si128(2 * j);
      for (int r = 0; r < 4; ++r) {
        const uint8_t* sb = rows[r] + 210 * s;
        const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 64 * h + 32 * (j & 1)));
        const __m256i lo = j < 2 ? _mm256_and_si256(ql, low4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), low4);
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 128 + 32 * h));
        const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, shift), two_bits);
        const __m256i u = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
        const __m256 dw = _mm256_permutevar8x32_ps(sub_scale[r][h], lane_sub);
        for (int m = 0; m < MA; ++m) {
          const __m256i dot = _mm256_sub_epi32(DotU8S8(u, av[m]), corr[m]);
          acc[m][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(dw, da[m]), acc[m][r]);
        }
      }
    }
  }
  StoreTile<MA>(acc, out);
}

#else  // portable Highway path

constexpr int kActRows = 1;

// Σ w·a over 16 int8 pairs, exact.
HWY_INLINE int32_t Dot16(const int8_t* w, const int8_t* a) {
  const hn::CappedTag<int32_t, 16> d32;
  const hn::Rebind<int8_t, decltype(d32)> d8;
  const size_t N = hn::Lanes(d32);
  auto acc = hn::Zero(d32);
  for (size_t i = 0; i < 16; i += N) {
    acc = hn::Add(acc, hn::Mul(hn::PromoteTo(d32, hn::LoadU(d8, w + i)), hn::PromoteTo(d32, hn::LoadU(d8, a + i))));
  }
  return hn::GetLane(hn::SumOfLanes(d32, acc));
}

template <int MA, void (*Unpack)(const uint8_t*, int64_t, detail::UnpackedBlock&)>
HWY_INLINE void PortableTile(const uint8_t* const* rows, const ActRow* a, float* out) {
  const int64_t nb = a[0].K / 32;
  detail::UnpackedBlock blk;
  for (int r = 0; r < 4; ++r) {
    a[0].next.Fetch(r * nb / 4, (r + 1) * nb / 4);  // a row of this tile: a quarter of the next
    float acc[MA] = {};
    for (int64_t b = 0; b < nb; ++b) {
      Unpack(rows[r], b, blk);
      for (int m = 0; m < MA; ++m) {
        const int8_t* aq = a[m].q + 32 * b;
        const float block = blk.half_scale[0] * static_cast<float>(Dot16(blk.w, aq)) +
                            blk.half_scale[1] * static_cast<float>(Dot16(blk.w + 16, aq + 16));
        const float bias = blk.q8_1_min ? blk.half_bias[0] * a[m].dsum_q8_1[b]
                                        : a[m].d[b] * (blk.half_bias[0] * static_cast<float>(a[m].sum16[2 * b]) +
                                                       blk.half_bias[1] * static_cast<float>(a[m].sum16[2 * b + 1]));
        acc[m] += a[m].d[b] * block + bias;
      }
    }
    for (int m = 0; m < MA; ++m) out[4 * m + r] = acc[m];
  }
}

template <int MA>
HWY_INLINE void TileQ4_0(const uint8_t* const* rows, const ActRow* a, float* out) {
  PortableTile<MA, detail::unpack_q4_0>(rows, a, out);
}
template <int MA>
HWY_INLINE void TileQ8_0(const uint8_t* const* rows, const ActRow* a, float* out) {
  PortableTile<MA, detail::unpack_q8_0>(rows, a, out);
}
template <int MA>
HWY_INLINE void TileQ6_K(const uint8_t* const* rows, const ActRow* a, float* out) {
  PortableTile<MA, detail::unpack_q6_k>(rows, a, out);
}

#endif

// ---------------------------------------------------------------------------------------------
// The other block formats on x86: one generic tile over a per-format decoder. A decoder turns one
// 32-block of one weight row into 32 bytes v plus the scale and bias of each 16-element half
// (element = scale·v + bias, as the portable UnpackedBlock). Formats whose levels are
// non-negative after an offset (Q5_0 q, Q3_K low2 + 4·hbit) give the unsigned level and fold the
// offset into the bias (−16·d, −4·d·S); formats with mins give the unsigned level and the min.
// kSigned formats (IQ4_NL/IQ4_XS) give signed int8 table values: the tile moves their sign onto
// the activation as TileQ8_0 does, since the unsigned operand must be non-negative and their
// table + 128 would overflow maddubs' int16 pair sums. The bias term costs one FMA against
// d_a·Σa per 16-element half (activation half-block sums), so weights are never expanded.
// kOffset is that offset where the bias is nothing but −kOffset·scale (Q4_0's 8, Q5_0's 16, Q6_K's
// 32, Q3_K's 4): the panel GEMM subtracts it to store signed levels and needs no bias term. 0 for
// signed formats and for formats with real mins.

#if defined(NIBBLE_X86_512) || defined(NIBBLE_X86_256)

struct DecodedBlock {
  __m256i v;
  float scale[2];
  float bias[2];
  // Q4_K/Q5_K: bias = −min_step·min_level, the integer min the panel GEMM sums per super-block.
  int min_level = 0;
  float min_step = 0.0f;
};

// 16 packed bytes → 32 bytes: low nibbles (elements 0..15) then high nibbles (16..31).
NIBBLE_INT_ATTR HWY_INLINE __m256i Nibbles(const uint8_t* p) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i m4 = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
}

// Byte e ← 0x10 when bit e of bits is set: Q5_0/Q5_1's fifth bits in place.
NIBBLE_INT_ATTR HWY_INLINE __m256i FifthBits(uint32_t bits) {
#if defined(NIBBLE_X86_512)
  return _mm256_maskz_set1_epi8(bits, 0x10);
#else
  // Byte e takes byte e/8 of bits, then tests its own bit e mod 8.
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(0x10));
#endif
}

NIBBLE_INT_ATTR HWY_INLINE __m256i IQ4Lookup(__m256i idx) {
  const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues)));
  return _mm256_shuffle_epi8(table, idx);
}

struct DecodeQ4_1 {
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = true;
  static constexpr int kOffset = 0;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    const uint8_t* blk = row + 20 * b;
    x.v = Nibbles(blk + 4);
    x.scale[0] = x.scale[1] = F16(blk);
    x.bias[0] = x.bias[1] = F16(blk + 2);
  }
};

struct DecodeQ5_0 {
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 16;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    const uint8_t* blk = row + 22 * b;
    x.v = _mm256_or_si256(Nibbles(blk + 6), FifthBits(detail::load_u32(blk + 2)));
    x.scale[0] = x.scale[1] = F16(blk);
    x.bias[0] = x.bias[1] = -16.0f * x.scale[0];
  }
};

struct DecodeQ5_1 {
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = true;
  static constexpr int kOffset = 0;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    const uint8_t* blk = row + 24 * b;
    x.v = _mm256_or_si256(Nibbles(blk + 8), FifthBits(detail::load_u32(blk + 4)));
    x.scale[0] = x.scale[1] = F16(blk);
    x.bias[0] = x.bias[1] = F16(blk + 2);
  }
};

struct DecodeIQ4_NL {
  static constexpr bool kSigned = true, kBias = false, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 0;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    const uint8_t* blk = row + 18 * b;
    x.v = IQ4Lookup(Nibbles(blk + 2));
    x.scale[0] = x.scale[1] = F16(blk);
  }
};

struct DecodeIQ4_XS {
  static constexpr bool kSigned = true, kBias = false, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 0;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    const uint8_t* sb = row + 136 * (b / 8);
    const int ib = static_cast<int>(b % 8);
    x.v = IQ4Lookup(Nibbles(sb + 8 + 16 * ib));
    x.scale[0] = x.scale[1] = F16(sb) * static_cast<float>(detail::iq4_xs_scale(sb, ib));
  }
};

// nibble's Q4_G64 / Q4_G128: the 32 bytes holding block b's nibbles are the group's first or
// second 32 quant bytes; the group's first half is in the low nibbles. Offset 8 as a bias.
template <int G>
struct DecodeQ4_G {
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 8;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    const uint8_t* grp = row + (2 + G / 2) * (b / (G / 32));
    const int k = static_cast<int>(b % (G / 32));
    const int half = G / 64;  // 32-blocks per nibble half of the group
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(grp + 2 + 32 * (k % half)));
    x.v = _mm256_and_si256(k >= half ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(0x0F));
    x.scale[0] = x.scale[1] = F16(grp);
    x.bias[0] = x.bias[1] = -8.0f * x.scale[0];
  }
};
using DecodeQ4_G64 = DecodeQ4_G<64>;
using DecodeQ4_G128 = DecodeQ4_G<128>;

struct DecodeQ8_C {
  static constexpr bool kSigned = true, kBias = false, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 0;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    x.v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 4 + 32 * b));
    float d;
    std::memcpy(&d, row, 4);
    x.scale[0] = x.scale[1] = d;
  }
};

// Sub-block `sub`'s scale and min from a Q4_K / Q5_K super-block header (d, dmin, 12 bytes).
NIBBLE_INT_ATTR HWY_INLINE void K4ScaleMin(const uint8_t* head, int sub, DecodedBlock& x) {
  int sc, mn;
  k4_scale_min(head + 4, sub, &sc, &mn);
  x.scale[0] = x.scale[1] = F16(head) * static_cast<float>(sc);
  x.min_level = mn;
  x.min_step = F16(head + 2);
  x.bias[0] = x.bias[1] = -x.min_step * static_cast<float>(mn);
}

struct DecodeQ4_K {
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 0;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    const uint8_t* sb = row + 144 * (b / 8);
    const int sub = static_cast<int>(b % 8);
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 16 + 32 * (sub / 2)));
    x.v = _mm256_and_si256(sub % 2 ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(0x0F));
    K4ScaleMin(sb, sub, x);
  }
};

struct DecodeQ5_K {
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 0;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    const uint8_t* sb = row + 176 * (b / 8);
    const int sub = static_cast<int>(b % 8);
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 48 + 32 * (sub / 2)));
    const __m256i low4 = _mm256_and_si256(sub % 2 ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(0x0F));
    // Bit `sub` of qh[l], moved to bit 4 of each byte (16-bit shifts: the masks drop what crosses).
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 16));
    const __m256i bit = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(sub)), _mm256_set1_epi8(1));
    x.v = _mm256_or_si256(low4, _mm256_slli_epi16(bit, 4));
    K4ScaleMin(sb, sub, x);
  }
};

struct DecodeQ2_K {
  static constexpr bool kSigned = false, kBias = true, kHalves = true, kQ8_1Min = false;
  static constexpr int kOffset = 0;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    const uint8_t* sb = row + 84 * (b / 8);
    const int jb = static_cast<int>(b % 8), h = jb / 4, j = jb % 4;
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 16 + 32 * h));
    x.v = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j)), _mm256_set1_epi8(3));
    const float d = F16(sb + 80), dmin = F16(sb + 82);
    for (int i = 0; i < 2; ++i) {
      x.scale[i] = d * static_cast<float>(sb[2 * jb + i] & 0x0F);
      x.bias[i] = -dmin * static_cast<float>(sb[2 * jb + i] >> 4);
    }
  }
};

struct DecodeQ3_K {
  static constexpr bool kSigned = false, kBias = true, kHalves = true, kQ8_1Min = false;
  static constexpr int kOffset = 4;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    const uint8_t* sb = row + 110 * (b / 8);
    const int jb = static_cast<int>(b % 8), h = jb / 4, j = jb % 4;
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 32 + 32 * h));
    const __m256i low2 = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j)), _mm256_set1_epi8(3));
    const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb));
    const __m256i hbit = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(4 * h + j)), _mm256_set1_epi8(1));
    // level = low2 + 4·hbit (0..7) = q + 4.
    x.v = _mm256_or_si256(low2, _mm256_slli_epi16(hbit, 2));
    const float d = F16(sb + 108);
    for (int i = 0; i < 2; ++i) {
      x.scale[i] = d * static_cast<float>(detail::q3_k_scale(sb + 96, 2 * jb + i));
      x.bias[i] = -4.0f * x.scale[i];
    }
  }
};

// Q3_K for the panel GEMMs: each sub-block's scale folded into its levels, sc·(4 − level),
// which fits int8 ([−128, 124] for sc in −32..31 and 4 − level in −3..4), with −d as the one
// float scale of the block. The panel then sees a Q8_0-like signed block without half scales:
// its tile does 8 vpdpbusd per float operation instead of 4 (and on AVX-512 VNNI runs the
// grouped tile: one FMA per block, d_a once per super-block).
struct DecodeQ3_KPanel {
  static constexpr bool kSigned = true, kBias = false, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 0;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    DecodeQ3_K::Decode(row, b, x);
    const uint8_t* sb = row + 110 * (b / 8);
    const int jb = static_cast<int>(b % 8);
    const __m256i w = _mm256_sub_epi8(_mm256_set1_epi8(4), x.v);  // 4 − level
    const __m256i lo = _mm256_mullo_epi16(
        _mm256_cvtepi8_epi16(_mm256_castsi256_si128(w)),
        _mm256_set1_epi16(static_cast<int16_t>(detail::q3_k_scale(sb + 96, 2 * jb))));
    const __m256i hi = _mm256_mullo_epi16(
        _mm256_cvtepi8_epi16(_mm256_extracti128_si256(w, 1)),
        _mm256_set1_epi16(static_cast<int16_t>(detail::q3_k_scale(sb + 96, 2 * jb + 1))));
    // packs interleaves 64-bit pieces as (lo 0-7, hi 0-7, lo 8-15, hi 8-15); exact, in range.
    x.v = _mm256_permute4x64_epi64(_mm256_packs_epi16(lo, hi), _MM_SHUFFLE(3, 1, 2, 0));
    x.scale[0] = x.scale[1] = -F16(sb + 108);
    x.bias[0] = x.bias[1] = 0.0f;
  }
};

// What a whole-block bias multiplies (formats without per-half scales).
template <class Dec>
HWY_INLINE float BiasFactor(const ActRow& a, int64_t b) {
  return Dec::kQ8_1Min ? a.dsum_q8_1[b] : a.dsum[b];
}

#if defined(NIBBLE_X86_512)

// Two 32-blocks per 512-bit step (lanes 0..7 block b, 8..15 block b+1; each 16-element half is
// a lane quad). A trailing odd block runs with the second half zero.
template <class Dec, int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileDecoded(const uint8_t* const* rows, const ActRow* a, float* out) {
  const int64_t nb = a[0].K / 32;
  const __m512i zero = _mm512_setzero_si512();
  __m512 acc[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < nb; b += 2) {
    a[0].next.Fetch(b, b + 2);
    const bool pair = b + 1 < nb;
    __m512i av[MA];
    __m512 da[MA], sf[MA];
    for (int m = 0; m < MA; ++m) {
      const float d0 = a[m].d[b], d1 = pair ? a[m].d[b + 1] : 0.0f;
      av[m] = pair ? _mm512_loadu_si512(a[m].q + 32 * b) : Load32Zext(a[m].q + 32 * b);
      da[m] = QuadSpread(_mm_setr_ps(d0, d0, d1, d1));
      if constexpr (Dec::kBias) {
        // d_a·Σa of each half into the first lane of its quad: the bias FMA then adds
        // bias·d_a·Σa once per half.
        // Formats with one bias per block take the whole block's factor in the first half.
        const __m128 hs = Dec::kHalves
                              ? _mm_setr_ps(a[m].dsum16[2 * b], a[m].dsum16[2 * b + 1], pair ? a[m].dsum16[2 * b + 2] : 0.0f,
                                            pair ? a[m].dsum16[2 * b + 3] : 0.0f)
                              : _mm_setr_ps(BiasFactor<Dec>(a[m], b), 0.0f, pair ? BiasFactor<Dec>(a[m], b + 1) : 0.0f, 0.0f);
        sf[m] = _mm512_maskz_expand_ps(0x1111, _mm512_castps128_ps512(hs));
      }
    }
    for (int r = 0; r < 4; ++r) {
      DecodedBlock x0, x1;
      Dec::Decode(rows[r], b, x0);
      if (pair) {
        Dec::Decode(rows[r], b + 1, x1);
      } else {
        x1.v = _mm256_setzero_si256();
        x1.scale[0] = x1.scale[1] = x1.bias[0] = x1.bias[1] = 0.0f;
      }
      const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(x0.v), x1.v, 1);
      const __m512 scale = QuadSpread(_mm_setr_ps(x0.scale[0], x0.scale[1], x1.scale[0], x1.scale[1]));
      __m512 bias = _mm512_setzero_ps();
      if constexpr (Dec::kBias) bias = QuadSpread(_mm_setr_ps(x0.bias[0], x0.bias[1], x1.bias[0], x1.bias[1]));
      __mmask64 negative = 0;
      __m512i u = w;
      if constexpr (Dec::kSigned) {
        negative = _mm512_movepi8_mask(w);
        u = _mm512_abs_epi8(w);
      }
      for (int m = 0; m < MA; ++m) {
        const __m512i s = Dec::kSigned ? _mm512_mask_sub_epi8(av[m], negative, zero, av[m]) : av[m];
        const __m512i dot = DotU8S8(u, s);
        acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(scale, da[m]), acc[m][r]);
        if constexpr (Dec::kBias) acc[m][r] = _mm512_fmadd_ps(bias, sf[m], acc[m][r]);
      }
    }
  }
  StoreTile<MA>(acc, out);
}

#else  // NIBBLE_X86_256

// One 32-block per 256-bit step (lanes 0..3 the first half, 4..7 the second).
template <class Dec, int MA>
HWY_INLINE void TileDecoded(const uint8_t* const* rows, const ActRow* a, float* out) {
  const int64_t nb = a[0].K / 32;
  __m256 acc[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    a[0].next.Fetch(b, b + 1);
    __m256i av[MA];
    __m256 da[MA], sf[MA];
    for (int m = 0; m < MA; ++m) {
      const float d = a[m].d[b];
      av[m] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[m].q + 32 * b));
      da[m] = _mm256_set1_ps(d);
      if constexpr (Dec::kBias) {
        sf[m] = Dec::kHalves ? _mm256_setr_ps(a[m].dsum16[2 * b], 0, 0, 0, a[m].dsum16[2 * b + 1], 0, 0, 0)
                             : _mm256_setr_ps(BiasFactor<Dec>(a[m], b), 0, 0, 0, 0, 0, 0, 0);
      }
    }
    for (int r = 0; r < 4; ++r) {
      DecodedBlock x;
      Dec::Decode(rows[r], b, x);
      const __m256 scale = _mm256_set_m128(_mm_set1_ps(x.scale[1]), _mm_set1_ps(x.scale[0]));
      __m256 bias = _mm256_setzero_ps();
      if constexpr (Dec::kBias) bias = _mm256_set_m128(_mm_set1_ps(x.bias[1]), _mm_set1_ps(x.bias[0]));
      const __m256i u = Dec::kSigned ? _mm256_sign_epi8(x.v, x.v) : x.v;
      for (int m = 0; m < MA; ++m) {
        const __m256i s = Dec::kSigned ? _mm256_sign_epi8(av[m], x.v) : av[m];
        const __m256i dot = DotU8S8(u, s);
        acc[m][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(scale, da[m]), acc[m][r]);
        if constexpr (Dec::kBias) acc[m][r] = _mm256_fmadd_ps(bias, sf[m], acc[m][r]);
      }
    }
  }
  StoreTile<MA>(acc, out);
}

#endif

#define NIBBLE_DECODED_TILE(TYPE, t)                                                           \
  template <int MA>                                                                          \
  NIBBLE_INT_ATTR HWY_INLINE void Tile##TYPE(const uint8_t* const* rows, const ActRow* a, float* out) { \
    TileDecoded<Decode##TYPE, MA>(rows, a, out);                                             \
  }

#if defined(NIBBLE_X86_512)
// Q4_1 and IQ4_NL blocks are Q4_0's 16 nibble bytes with other headers, so they take TileQ4_0's
// four-block step (the generic decoded tile assembles every scale from scalars and left their
// decode compute-bound at ~13 GB/s per thread). Q4_1 adds its mins through one 4-lane FMA per
// four blocks against llama.cpp's q8_1 d·Σa; IQ4_NL looks its nibbles up in the table + 128 (an
// unsigned operand) and takes 128·Σa off, which needs vpdpbusd: maddubs' int16 pairs would
// saturate at 241·127·2. A block count that is not a multiple of 4 ends on the generic tile.
// Q5_0 and Q5_1 are Q4_0 / Q4_1 with a fifth bit per element in a 32-bit field (kQh): bits 0..15
// join the low nibbles (elements 0..15), bits 16..31 the high ones, as a byte-masked add of 16
// to the nibble vectors. Q5_0's offset of 16 leaves as 16·Σa. Against the generic tile
// (bench_matmul M = 1, 2048 → 5632, 1 thread, Zen 5): Q5_0 758 → 391 µs, Q5_1 786 → 378.
struct NibbleQ4_1 {
  using Decoder = DecodeQ4_1;
  static constexpr int64_t kBytes = 20, kQs = 4, kQh = -1;
  static constexpr bool kMin = true, kTable = false;
  static constexpr int kCorrShift = -1;  // no offset
};
struct NibbleIQ4_NL {
  using Decoder = DecodeIQ4_NL;
  static constexpr int64_t kBytes = 18, kQs = 2, kQh = -1;
  static constexpr bool kMin = false, kTable = true;
  static constexpr int kCorrShift = 7;  // 128·Σa
};
struct NibbleQ5_0 {
  using Decoder = DecodeQ5_0;
  static constexpr int64_t kBytes = 22, kQs = 6, kQh = 2;
  static constexpr bool kMin = false, kTable = false;
  static constexpr int kCorrShift = 4;  // 16·Σa
};
struct NibbleQ5_1 {
  using Decoder = DecodeQ5_1;
  static constexpr int64_t kBytes = 24, kQs = 8, kQh = 4;
  static constexpr bool kMin = true, kTable = false;
  static constexpr int kCorrShift = -1;
};

template <class Fmt, int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileNibbles(const uint8_t* const* rows, const ActRow* a, float* out) {
  const int64_t nb = a[0].K / 32, nb4 = nb / 4 * 4;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i bit4 = _mm512_set1_epi8(0x10);
  const __m512i table = _mm512_broadcast_i32x4(
      _mm_add_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues)), _mm_set1_epi8(static_cast<char>(0x80))));
  const __m256i even_odd = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  __m512 acc[MA][4];
  __m128 mins[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) {
      acc[m][r] = _mm512_setzero_ps();
      mins[m][r] = _mm_setzero_ps();
    }
  }
  for (int64_t b = 0; b < nb4; b += 4) {
    a[0].next.Fetch(b, b + 4);
    __m512i a_lo[MA], a_hi[MA], corr[MA];
    __m512 da[MA];
    __m128 dsum[MA];
    for (int m = 0; m < MA; ++m) {
      LoadQ4Activations<Fmt::kCorrShift>(a[m], b, a_lo[m], a_hi[m], corr[m]);
      da[m] = QuadSpread(_mm_loadu_ps(a[m].d + b));
      if constexpr (Fmt::kMin) dsum[m] = _mm_loadu_ps(a[m].dsum_q8_1 + b);
    }
    for (int r = 0; r < 4; ++r) {
      const uint8_t* blk = rows[r] + Fmt::kBytes * b;
      __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + Fmt::kQs)));
      v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + Fmt::kBytes + Fmt::kQs)), 1);
      v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2 * Fmt::kBytes + Fmt::kQs)), 2);
      v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 3 * Fmt::kBytes + Fmt::kQs)), 3);
      __m512i lo = _mm512_and_si512(v, low4);
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
      if constexpr (Fmt::kTable) {
        lo = _mm512_shuffle_epi8(table, lo);
        hi = _mm512_shuffle_epi8(table, hi);
      }
      if constexpr (Fmt::kQh >= 0) {  // byte l of 128-bit lane i ← bit l (lo) / 16 + l (hi) of qh_i
        uint64_t lo_bits = 0, hi_bits = 0;
        for (int i = 0; i < 4; ++i) {
          const uint64_t qh = detail::load_u32(blk + i * Fmt::kBytes + Fmt::kQh);
          lo_bits |= (qh & 0xFFFF) << (16 * i);
          hi_bits |= (qh >> 16) << (16 * i);
        }
        lo = _mm512_mask_add_epi8(lo, lo_bits, lo, bit4);
        hi = _mm512_mask_add_epi8(hi, hi_bits, hi, bit4);
      }
      __m128 d4, m4 = _mm_setzero_ps();
      if constexpr (Fmt::kMin) {  // d, m of each block: 8 halves → d0..d3 | m0..m3
        const __m128i dm = _mm_setr_epi32(static_cast<int>(detail::load_u32(blk)), static_cast<int>(detail::load_u32(blk + Fmt::kBytes)),
                                          static_cast<int>(detail::load_u32(blk + 2 * Fmt::kBytes)),
                                          static_cast<int>(detail::load_u32(blk + 3 * Fmt::kBytes)));
        const __m256 f = _mm256_permutevar8x32_ps(_mm256_cvtph_ps(dm), even_odd);
        d4 = _mm256_castps256_ps128(f);
        m4 = _mm256_extractf128_ps(f, 1);
      } else {
        __m128i h = _mm_cvtsi32_si128(detail::load_u16(blk));
        h = _mm_insert_epi16(h, detail::load_u16(blk + Fmt::kBytes), 1);
        h = _mm_insert_epi16(h, detail::load_u16(blk + 2 * Fmt::kBytes), 2);
        h = _mm_insert_epi16(h, detail::load_u16(blk + 3 * Fmt::kBytes), 3);
        d4 = _mm_cvtph_ps(h);
      }
      const __m512 dw = QuadSpread(d4);
      for (int m = 0; m < MA; ++m) {
        __m512i dot = DotU8S8Acc(DotU8S8(lo, a_lo[m]), hi, a_hi[m]);
        if constexpr (Fmt::kCorrShift >= 0) dot = _mm512_sub_epi32(dot, corr[m]);
        acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, da[m]), acc[m][r]);
        if constexpr (Fmt::kMin) mins[m][r] = _mm_fmadd_ps(m4, dsum[m], mins[m][r]);
      }
    }
  }
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) {
      const __m128 m2 = _mm_add_ps(mins[m][r], _mm_movehl_ps(mins[m][r], mins[m][r]));
      out[4 * m + r] = _mm512_reduce_add_ps(acc[m][r]) + _mm_cvtss_f32(_mm_add_ss(m2, _mm_movehdup_ps(m2)));
    }
  }
  if (nb4 < nb) {  // the last 1–3 blocks: the generic tile on the rows and activations from there
    const uint8_t* tail_rows[4];
    for (int r = 0; r < 4; ++r) tail_rows[r] = rows[r] + Fmt::kBytes * nb4;
    ActRow tail[MA];
    for (int m = 0; m < MA; ++m) {
      tail[m] = a[m];
      tail[m].q += 32 * nb4;
      tail[m].d += nb4;
      tail[m].sum += nb4;
      tail[m].sum16 += 2 * nb4;
      tail[m].dsum += nb4;
      tail[m].dsum16 += 2 * nb4;
      tail[m].dsum_q8_1 += nb4;
      tail[m].K -= 32 * nb4;
    }
    tail[0].next = NextTile();  // this tile's loop fetched the next one's share of these blocks
    float rest[4 * MA];
    TileDecoded<typename Fmt::Decoder, MA>(tail_rows, tail, rest);
    for (int i = 0; i < 4 * MA; ++i) out[i] += rest[i];
  }
}

// TileNibbles on kLayoutPacked4 tiles (kernels/repack.h), as PackedTileQ4_0 is TileQ4_0: each
// row's four blocks of nibbles are one aligned load, the 4 rows' scales of a group (and Q4_1's
// mins right after them) one load and conversion each. The same arithmetic in the same order
// as TileNibbles — bit-identical results. K/32 is a multiple of 4 here. From cache, 1 thread,
// bench_matmul M = 1 (Zen 5): see docs/design.md.
template <class Fmt, int MA>
NIBBLE_INT_ATTR HWY_INLINE void PackedTileNibbles(const uint8_t* tile, const ActRow* a,
                                                  float* out) {
  const int64_t nb = a[0].K / 32;
  constexpr int64_t kFieldBytes = 32;  // one field of 4 rows × 4 blocks
  constexpr int64_t kFields = Fmt::kMin ? 2 : 1;
  const uint8_t* fields = tile + nb * 64;  // after nb/4 groups × 4 rows × 64 quant bytes
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i table = _mm512_broadcast_i32x4(
      _mm_add_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues)),
                   _mm_set1_epi8(static_cast<char>(0x80))));
  const __m512i quad_index = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  __m512 acc[MA][4];
  // Lane 4r + i: row r's min × d·Σa of block i (mod 4), as TileNibbles' per-row quads.
  __m512 mins[MA];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm512_setzero_ps();
    mins[m] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < nb; b += 4) {
    a[0].next.Fetch(b, b + 4);
    __m512i a_lo[MA], a_hi[MA], corr[MA];
    __m512 dsum[MA];
    for (int m = 0; m < MA; ++m) {
      LoadQ4Activations<Fmt::kCorrShift>(a[m], b, a_lo[m], a_hi[m], corr[m]);
      if constexpr (Fmt::kMin) dsum[m] = _mm512_broadcast_f32x4(_mm_loadu_ps(a[m].dsum_q8_1 + b));
    }
    const uint8_t* group = tile + b * 64;  // (b/4)·4 rows·64 bytes
    const uint8_t* f = fields + (b / 4) * kFields * kFieldBytes;
    // Row r's four scales (mins) are lanes 4r..4r+3.
    const __m512 d16 = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(f)));
    __m512 s16[MA];  // d16 · d_a of the same block
    for (int m = 0; m < MA; ++m) s16[m] = ScaleRowQuads(d16, a[m].d + b);
    if constexpr (Fmt::kMin) {
      const __m512 m16 =
          _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(f + kFieldBytes)));
      for (int m = 0; m < MA; ++m) mins[m] = _mm512_fmadd_ps(m16, dsum[m], mins[m]);
    }
    for (int r = 0; r < 4; ++r) {
      const __m512i v = _mm512_load_si512(group + 64 * r);
      __m512i lo = _mm512_and_si512(v, low4);
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
      if constexpr (Fmt::kTable) {
        lo = _mm512_shuffle_epi8(table, lo);
        hi = _mm512_shuffle_epi8(table, hi);
      }
      const __m512i row_index = _mm512_add_epi32(quad_index, _mm512_set1_epi32(4 * r));
      for (int m = 0; m < MA; ++m) {
        __m512i dot = DotU8S8Acc(DotU8S8(lo, a_lo[m]), hi, a_hi[m]);
        if constexpr (Fmt::kCorrShift >= 0) dot = _mm512_sub_epi32(dot, corr[m]);
        acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                                    _mm512_permutexvar_ps(row_index, s16[m]), acc[m][r]);
      }
    }
  }
  for (int m = 0; m < MA; ++m) {
    // Each row's quad summed as TileNibbles sums its __m128: (l0 + l2) + (l1 + l3).
    alignas(64) float quads[16];
    _mm512_store_ps(quads, mins[m]);
    for (int r = 0; r < 4; ++r) {
      const __m128 q = _mm_load_ps(quads + 4 * r);
      const __m128 m2 = _mm_add_ps(q, _mm_movehl_ps(q, q));
      out[4 * m + r] =
          _mm512_reduce_add_ps(acc[m][r]) + _mm_cvtss_f32(_mm_add_ss(m2, _mm_movehdup_ps(m2)));
    }
  }
}
#endif

#if defined(NIBBLE_X86_512)
// The 12 bytes of 6-bit scales and mins of 4 Q4_K/Q5_K super-block headers (d, dmin, 12 bytes:
// 16 bytes per 128-bit lane, one row each) as bytes [sc0-3, sc4-7, mn0-3, mn4-7] per lane:
// dwords [w0 w0 w1 w1] and [w2 w2 w2 w2>>4] of the 12 bytes, masked.
NIBBLE_INT_ATTR HWY_INLINE __m512i K4Scales(__m512i head) {
  const __m512i w2_shift = _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0, 0, 4));
  const __m512i low6_mask = _mm512_broadcast_i32x4(_mm_setr_epi32(0x3F3F3F3F, 0, 0x3F3F3F3F, 0));
  const __m512i top2_mask = _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  const __m512i low4_mask = _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0x0F0F0F0F, 0, 0x0F0F0F0F));
  const __m512i w001 = _mm512_shuffle_epi32(head, _MM_PERM_CCBB);
  const __m512i w2 = _mm512_srlv_epi32(_mm512_shuffle_epi32(head, _MM_PERM_DDDD), w2_shift);
  return _mm512_or_si512(_mm512_and_si512(w001, low6_mask),
                         _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(w001, 2), top2_mask),
                                         _mm512_and_si512(w2, low4_mask)));
}

// Q4_K, the weight type of most Q4_K_M files, has its own tile; so has Q5_K, the same
// super-block with a fifth bit per element. Both pair with q8_K activations (one d_a per 256),
// so the whole super-block's sum Σ_k sc_k·(q·a)_k is exact in int32 and takes one conversion
// and one FMA per row instead of one per sub-block — as llama.cpp's own K-quant dot products do.
// The earlier float-per-sub-block tile (dot product, conversion, scale permute and FMA for every
// 64 weights, 6-bit scales unpacked per row) spent ~48 instructions per row and super-block, this
// one ~28: bench_matmul M = 1 from cache, 1 thread (Zen 5), Q4_K 37 → 43 GB/s, Q5_K 39 → 46
// GB/s; from DRAM on 2 threads, where bandwidth decides, 1.00–1.11× the old tile.
//
// The 128 quant bytes are read as two 64-byte vectors: chunk j (32 bytes) holds sub-block 2j in
// its low nibbles and 2j+1 in its high ones, so the low nibbles of chunks 0|1 are sub-blocks 0|2
// and the high ones 1|3 (4|6 and 5|7 for chunks 2|3). The activations are shuffled once per
// super-block into that order, shared by the 4 rows. Per 64 weights: vpmaddubsw (q ≤ 31 × |a| ≤
// 127: no int16 saturation) and vpmaddwd against the sub-block scales spread over the int16
// lanes (vpdpwssd where AVX-512 VNNI has it). The 12 scale bytes of the 4 rows are unpacked
// together, one row per 128-bit lane, and the mins enter as Σ mn_k·Σa_k, also exact in int32,
// for all 4 rows in one vector.
//
// Q5_K's fifth bits (qh: 32 bytes, bit 2j of byte l for element l of sub-block 2j, bit 2j+1 for
// sub-block 2j+1) are ORed in as 16 before the products; its quants start 32 bytes further on.
template <int MA, bool kFive>
NIBBLE_INT_ATTR HWY_INLINE void TileQ45_K(const uint8_t* const* rows, const ActRow* a, float* out) {
  constexpr int64_t kSuperBytes = kFive ? 176 : 144;
  constexpr int64_t kQsOffset = kFive ? 48 : 16;
  const int64_t n_super = a[0].K / 256;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i d_dmin_of_rows = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i dmin_of_lane = _mm512_setr_epi32(1, 1, 1, 1, 3, 3, 3, 3, 5, 5, 5, 5, 7, 7, 7, 7);
#if HWY_TARGET != HWY_AVX3_DL
  // Without VBMI's byte permute: int16 lane i of dot vector v takes scale word kSub[v][i / 16].
  alignas(64) static constexpr int16_t kSpread[4][32] = {
      {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2},
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3},
      {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6},
      {5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}};
#endif
  // Q5_K: qh shifted right by 2j in the half that holds chunk j (64-bit lanes; the masks below
  // drop what crosses bytes).
  const __m512i qh_shift01 = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);
  const __m512i qh_shift23 = _mm512_setr_epi64(4, 4, 4, 4, 6, 6, 6, 6);
  const __m512i bit4 = _mm512_set1_epi8(0x10);
  __m512 acc[MA][4];
  __m512 mins[MA];  // lanes 4r..4r+3: parts of row r's dmin·d_a·Σ mn_k·Σa_k
  for (int m = 0; m < MA; ++m) {
    mins[m] = _mm512_setzero_ps();
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm512_setzero_ps();
  }
  for (int64_t s = 0; s < n_super; ++s) {
    a[0].next.Fetch(8 * s, 8 * s + 8);
    const uint8_t* sb[4];
    for (int r = 0; r < 4; ++r) sb[r] = rows[r] + kSuperBytes * s;
    // Bytes 0-15 of the 4 rows: d, dmin (fp16), then the 12 bytes of 6-bit scales and mins.
    __m512i head = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sb[0])));
    head = _mm512_inserti32x4(head, _mm_loadu_si128(reinterpret_cast<const __m128i*>(sb[1])), 1);
    head = _mm512_inserti32x4(head, _mm_loadu_si128(reinterpret_cast<const __m128i*>(sb[2])), 2);
    head = _mm512_inserti32x4(head, _mm_loadu_si128(reinterpret_cast<const __m128i*>(sb[3])), 3);
    const __m512i six = K4Scales(head);
    const __m512i mn16 = _mm512_unpackhi_epi8(six, _mm512_setzero_si512());  // lane r: row r's 8 mins
    // [d0 dmin0 d1 dmin1 d2 dmin2 d3 dmin3]
    const __m256 d_dmin = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi32(d_dmin_of_rows, head)));
#if HWY_TARGET != HWY_AVX3_DL
    alignas(64) uint8_t six_bytes[64];
    _mm512_store_si512(six_bytes, six);
#endif

    __m512i av[MA][4];            // activations of sub-blocks 0|2, 1|3, 4|6, 5|7
    alignas(32) float dd[MA][8];  // d_dmin · d_a
    for (int m = 0; m < MA; ++m) {
      const int8_t* q = a[m].q + 256 * s;
      const __m512i a01 = _mm512_loadu_si512(q), a23 = _mm512_loadu_si512(q + 64);
      const __m512i a45 = _mm512_loadu_si512(q + 128), a67 = _mm512_loadu_si512(q + 192);
      av[m][0] = _mm512_shuffle_i64x2(a01, a23, _MM_SHUFFLE(1, 0, 1, 0));
      av[m][1] = _mm512_shuffle_i64x2(a01, a23, _MM_SHUFFLE(3, 2, 3, 2));
      av[m][2] = _mm512_shuffle_i64x2(a45, a67, _MM_SHUFFLE(1, 0, 1, 0));
      av[m][3] = _mm512_shuffle_i64x2(a45, a67, _MM_SHUFFLE(3, 2, 3, 2));
      const __m256 scaled = _mm256_mul_ps(d_dmin, _mm256_set1_ps(a[m].d[8 * s]));
      _mm256_store_ps(dd[m], scaled);
      // Block sums (|Σa| ≤ 32·127) as int16, one copy per row lane.
      const __m512i bsum = _mm512_broadcast_i32x4(
          _mm256_cvtepi32_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[m].sum + 8 * s))));
      mins[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_madd_epi16(mn16, bsum)),
                                _mm512_permutexvar_ps(dmin_of_lane, _mm512_castps256_ps512(scaled)), mins[m]);
    }

    for (int r = 0; r < 4; ++r) {
      const __m512i q01 = _mm512_loadu_si512(sb[r] + kQsOffset), q23 = _mm512_loadu_si512(sb[r] + kQsOffset + 64);
      __m512i w[4] = {_mm512_and_si512(q01, low4), _mm512_and_si512(_mm512_srli_epi16(q01, 4), low4),
                      _mm512_and_si512(q23, low4), _mm512_and_si512(_mm512_srli_epi16(q23, 4), low4)};
      if constexpr (kFive) {
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb[r] + 16)));
        const __m512i qh01 = _mm512_srlv_epi64(qh, qh_shift01), qh23 = _mm512_srlv_epi64(qh, qh_shift23);
        w[0] = _mm512_or_si512(w[0], _mm512_and_si512(_mm512_slli_epi16(qh01, 4), bit4));
        w[1] = _mm512_or_si512(w[1], _mm512_and_si512(_mm512_slli_epi16(qh01, 3), bit4));
        w[2] = _mm512_or_si512(w[2], _mm512_and_si512(_mm512_slli_epi16(qh23, 4), bit4));
        w[3] = _mm512_or_si512(w[3], _mm512_and_si512(_mm512_slli_epi16(qh23, 3), bit4));
      }
      __m512i sc[4];  // int16 lanes: the scale of the sub-block each lane's pair belongs to
#if HWY_TARGET == HWY_AVX3_DL
      for (int v = 0; v < 4; ++v) {
        const __m512i index = _mm512_load_si512(detail::kQ4KScaleSpread.index[r][v]);
        sc[v] = _mm512_maskz_permutexvar_epi8(0x5555555555555555ull, index, six);
      }
#else
      const __m512i words = _mm512_castsi256_si512(
          _mm256_cvtepu8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(six_bytes + 16 * r))));
      for (int v = 0; v < 4; ++v) sc[v] = _mm512_permutexvar_epi16(_mm512_load_si512(kSpread[v]), words);
#endif
      for (int m = 0; m < MA; ++m) {
        __m512i dot = _mm512_madd_epi16(_mm512_maddubs_epi16(w[0], av[m][0]), sc[0]);
        for (int v = 1; v < 4; ++v) {
          dot = AddPairProducts(dot, _mm512_maddubs_epi16(w[v], av[m][v]), sc[v]);
        }
        acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(dd[m][2 * r]), acc[m][r]);
      }
    }
  }
  for (int m = 0; m < MA; ++m) {
    alignas(64) float min_parts[16];
    _mm512_store_ps(min_parts, mins[m]);
    for (int r = 0; r < 4; ++r) {
      const float row_min = (min_parts[4 * r] + min_parts[4 * r + 1]) + (min_parts[4 * r + 2] + min_parts[4 * r + 3]);
      out[4 * m + r] = _mm512_reduce_add_ps(acc[m][r]) - row_min;
    }
  }
}
#endif

#if HWY_TARGET == HWY_AVX3_DL
// Q4_K and Q5_K in kLayoutPacked4 (kernels/repack.h): each 64-byte vector holds one sub-block of
// all 4 rows, dword lane 4r + j carrying row r's elements 4j..4j+3 (low nibbles) and 16+4j..16+4j+3
// (high nibbles). One vpdpbusd per nibble half against the sub-block's 16 activations broadcast
// to every row's lane gives each lane a sum of 8 products (|·| ≤ 8·15·127, so it fits int16),
// and one vpdpwssd against the row's 6-bit scale (pshufb of the unpacked scales into the low
// word of each of the row's lanes) adds sc·dot to an int32 lane sum. Per sub-block and 4 rows:
// one load, 3 ops to split nibbles, 2 vpdpbusd, 1 pshufb, 1 vpdpwssd; the GGUF-layout tile
// (TileQ45_K) spends ~20 instructions per row and super-block on vpmaddubsw + vpdpwssd against
// scales spread by vpermb. The mins enter as in TileQ45_K (Σ mn_k·Σa_k in int32), and the lane
// sums meet d·d_a once per super-block. Lanes sum in float at the end, so results equal the
// GGUF tile's within float rounding, not bit for bit.
// Q5_K (kFive) is the same tile with each nibble half's fifth bits as a 64-bit mask per
// sub-block (16 bytes of the run per sub-block), added as 16 under the mask: ≤ 8·31·127 per
// lane still fits int16.
template <int MA, bool kFive>
NIBBLE_INT_ATTR HWY_INLINE void PackedTileQ45_K(const uint8_t* tile, const ActRow* a, float* out) {
  constexpr int64_t kRunBytes = kFive ? detail::kK5RunBytes : detail::kK4RunBytes;
  const int64_t n_super = a[0].K / 256;
  [[maybe_unused]] const __m512i sixteen = _mm512_set1_epi8(16);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i zero = _mm512_setzero_si512();
  // Words 0..15: row i/4's d (header word 8r), 16..31: its dmin (word 8r + 1).
  alignas(64) static constexpr int16_t kDMinWords[32] = {0,  0,  0,  0,  8,  8,  8,  8,  16, 16, 16,
                                                         16, 24, 24, 24, 24, 1,  1,  1,  1,  9,  9,
                                                         9,  9,  17, 17, 17, 17, 25, 25, 25, 25};
  const __m512i d_dmin_words = _mm512_load_si512(kDMinWords);
  // Lane 4r + j ← (mn_2j, mn_2j+1) of row r as int16, from bytes 8.. of K4Scales.
  const __m512i min_pairs = _mm512_broadcast_i32x4(
      _mm_setr_epi8(8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15, -1));
  __m512 acc[MA];
  for (int m = 0; m < MA; ++m) acc[m] = _mm512_setzero_ps();
  for (int64_t s = 0; s < n_super; ++s) {
    a[0].next.Fetch(8 * s, 8 * s + 8);
    const uint8_t* run = tile + kRunBytes * s;
    const __m512i head = _mm512_load_si512(run);
    const __m512i six = K4Scales(head);
    const __m512i d_dmin = _mm512_permutexvar_epi16(d_dmin_words, head);
    const __m512 d = _mm512_cvtph_ps(_mm512_castsi512_si256(d_dmin));
    const __m512 dmin = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(d_dmin, 1));
    const __m512i mins = _mm512_shuffle_epi8(six, min_pairs);
    __m512i msum[MA], isum[MA][2];
    for (int m = 0; m < MA; ++m) {
      // Block sums (|Σa| ≤ 32·127) as int16 pairs, the same 8 in every row's lane.
      const __m512i bsum = _mm512_broadcast_i32x4(_mm256_cvtepi32_epi16(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[m].sum + 8 * s))));
      msum[m] = _mm512_dpwssd_epi32(zero, mins, bsum);
      isum[m][0] = isum[m][1] = zero;
    }
    // Unrolled so that isum[m][k % 2] stays in registers (GCC kept the loop for MA = 4).
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      const __m512i v = _mm512_load_si512(run + 64 + 64 * k);
      __m512i lo = _mm512_and_si512(v, low4);
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
      if constexpr (kFive) {
        const uint8_t* bits = run + detail::kK5FifthBitsAt + 16 * k;
        lo = _mm512_mask_add_epi8(lo, _cvtu64_mask64(detail::load_u64(bits)), lo, sixteen);
        hi = _mm512_mask_add_epi8(hi, _cvtu64_mask64(detail::load_u64(bits + 8)), hi, sixteen);
      }
      // Byte k of the row's lane (its scale) into the low byte of each dword, zeros above.
      const __m512i sc =
          _mm512_shuffle_epi8(six, _mm512_set1_epi32(static_cast<int>(0x80808000u | k)));
      for (int m = 0; m < MA; ++m) {
        const int8_t* q = a[m].q + 256 * s + 32 * k;
        const __m512i a_lo =
            _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
        const __m512i a_hi =
            _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16)));
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, lo, a_lo), hi, a_hi);
        isum[m][k % 2] = _mm512_dpwssd_epi32(isum[m][k % 2], dot, sc);  // two chains
      }
    }
    for (int m = 0; m < MA; ++m) {
      const __m512 d_a = _mm512_set1_ps(a[m].d[8 * s]);
      acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(isum[m][0], isum[m][1])),
                               _mm512_mul_ps(d, d_a), acc[m]);
      acc[m] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum[m]), _mm512_mul_ps(dmin, d_a), acc[m]);
    }
  }
  for (int m = 0; m < MA; ++m) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, acc[m]);
    for (int r = 0; r < 4; ++r)
      out[4 * m + r] = (lanes[4 * r] + lanes[4 * r + 1]) + (lanes[4 * r + 2] + lanes[4 * r + 3]);
  }
}
#endif

#if defined(NIBBLE_X86_256)
// Q4_K/Q5_K against q8_K activations on AVX2, as the AVX-512 tile: each super-block summed in
// int32, one conversion and two FMAs (scales, mins) per row. Per 32-byte chunk j of quants (low
// nibbles: sub-block 2j, high: 2j+1, each one activation block): vpmaddubsw, then vpmaddwd
// against the sub-block's 6-bit scale broadcast over the int16 lanes by one byte shuffle. The
// mins leave as Σ mn_k·Σa_k from one vpmaddwd of the unpacked mins against the block sums.
template <int MA, bool kFive>
HWY_INLINE void TileQ45_K(const uint8_t* const* rows, const ActRow* a, float* out) {
  constexpr int64_t kSuperBytes = kFive ? 176 : 144;
  constexpr int64_t kQsOffset = kFive ? 48 : 16;
  const int64_t n_super = a[0].K / 256;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i bit4 = _mm256_set1_epi8(0x10);
  // Dwords [w0 w0 w1 w1] and [w2 w2 w2 w2>>4] of the 12 scale bytes, masked, give
  // [sc0-3, sc4-7, mn0-3, mn4-7] (see TileQ45_K for AVX-512).
  const __m128i w2_shift = _mm_setr_epi32(0, 0, 0, 4);
  const __m128i low6_mask = _mm_setr_epi32(0x3F3F3F3F, 0, 0x3F3F3F3F, 0);
  const __m128i top2_mask = _mm_setr_epi32(0, 0x30303030, 0, 0x30303030);
  const __m128i low4_mask = _mm_setr_epi32(0, 0x0F0F0F0F, 0, 0x0F0F0F0F);
  __m256 acc[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm256_setzero_ps();
  }
  for (int64_t s = 0; s < n_super; ++s) {
    a[0].next.Fetch(8 * s, 8 * s + 8);
    __m256i bsum[MA];  // int16 words 8-15: the 8 block sums (|Σa| ≤ 32·127); words 0-7 zero
    for (int m = 0; m < MA; ++m) {
      const __m256i sums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[m].sum + 8 * s));
      const __m128i sums16 = _mm_packs_epi32(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
      bsum[m] = _mm256_inserti128_si256(_mm256_setzero_si256(), sums16, 1);
    }
    for (int r = 0; r < 4; ++r) {
      const uint8_t* sb = rows[r] + kSuperBytes * s;
      const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sb));
      const __m128i w001 = _mm_shuffle_epi32(raw, _MM_SHUFFLE(2, 2, 1, 1));
      const __m128i w2 = _mm_srlv_epi32(_mm_shuffle_epi32(raw, _MM_SHUFFLE(3, 3, 3, 3)), w2_shift);
      const __m128i six = _mm_or_si128(_mm_and_si128(w001, low6_mask),
                                       _mm_or_si128(_mm_and_si128(_mm_srli_epi32(w001, 2), top2_mask), _mm_and_si128(w2, low4_mask)));
      const __m256i six16 = _mm256_cvtepu8_epi16(six);  // words 0-7: scales, 8-15: mins
      const __m256i scales = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(six16));
      __m256i qh = _mm256_setzero_si256();
      if constexpr (kFive) qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 16));
      __m256i dot[MA];
      for (int m = 0; m < MA; ++m) dot[m] = _mm256_setzero_si256();
      for (int j = 0; j < 4; ++j) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + kQsOffset + 32 * j));
        __m256i lo = _mm256_and_si256(q, low4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
        if constexpr (kFive) {
          // Bit 2j (2j+1) of qh byte l is the fifth bit of element l of sub-block 2j (2j+1).
          const __m256i h = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * j));
          lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(h, 4), bit4));
          hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(h, 3), bit4));
        }
        // Byte pair (2k, 2k+1) of every word: scale k.
        const __m256i sc_lo = _mm256_shuffle_epi8(scales, _mm256_set1_epi16(static_cast<int16_t>(0x0100 + 0x0404 * j)));
        const __m256i sc_hi = _mm256_shuffle_epi8(scales, _mm256_set1_epi16(static_cast<int16_t>(0x0302 + 0x0404 * j)));
        for (int m = 0; m < MA; ++m) {
          const __m256i* aq = reinterpret_cast<const __m256i*>(a[m].q + 256 * s + 64 * j);
          const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256(aq)), sc_lo);
          const __m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, _mm256_loadu_si256(aq + 1)), sc_hi);
          dot[m] = _mm256_add_epi32(dot[m], _mm256_add_epi32(p_lo, p_hi));
        }
      }
      const float d = F16(sb), dmin = F16(sb + 2);
      for (int m = 0; m < MA; ++m) {
        const float da = a[m].d[8 * s];
        const __m256i mins = _mm256_madd_epi16(six16, bsum[m]);  // lanes 4-7: Σ mn·Σa in pairs
        acc[m][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[m]), _mm256_set1_ps(d * da), acc[m][r]);
        acc[m][r] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(dmin * da), acc[m][r]);
      }
    }
  }
  StoreTile<MA>(acc, out);
}
#endif

// TileQ45_K exists for both x86 widths.
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileQ4_K(const uint8_t* const* rows, const ActRow* a, float* out) {
  TileQ45_K<MA, false>(rows, a, out);
}
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileQ5_K(const uint8_t* const* rows, const ActRow* a, float* out) {
  TileQ45_K<MA, true>(rows, a, out);
}
// Activations with a scale per 32-block (QuantizedInput::group_blocks 1) take the generic tile,
// which applies d_a per block.
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileQ4_KPerBlock(const uint8_t* const* rows, const ActRow* a, float* out) {
  TileDecoded<DecodeQ4_K, MA>(rows, a, out);
}
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileQ5_KPerBlock(const uint8_t* const* rows, const ActRow* a, float* out) {
  TileDecoded<DecodeQ5_K, MA>(rows, a, out);
}

#else  // portable

#define NIBBLE_DECODED_TILE(TYPE, t)                                                           \
  template <int MA>                                                                          \
  HWY_INLINE void Tile##TYPE(const uint8_t* const* rows, const ActRow* a, float* out) {       \
    PortableTile<MA, detail::unpack_##t>(rows, a, out);                                        \
  }

#endif

#if defined(NIBBLE_X86_512)
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileQ4_1(const uint8_t* const* rows, const ActRow* a, float* out) {
  TileNibbles<NibbleQ4_1, MA>(rows, a, out);
}
#else
NIBBLE_DECODED_TILE(Q4_1, q4_1)
#endif
#if defined(NIBBLE_X86_512)
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileQ5_0(const uint8_t* const* rows, const ActRow* a, float* out) {
  TileNibbles<NibbleQ5_0, MA>(rows, a, out);
}
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileQ5_1(const uint8_t* const* rows, const ActRow* a, float* out) {
  TileNibbles<NibbleQ5_1, MA>(rows, a, out);
}
#else
NIBBLE_DECODED_TILE(Q5_0, q5_0)
NIBBLE_DECODED_TILE(Q5_1, q5_1)
#endif
#if HWY_TARGET == HWY_AVX3_DL
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileIQ4_NL(const uint8_t* const* rows, const ActRow* a, float* out) {
  TileNibbles<NibbleIQ4_NL, MA>(rows, a, out);
}
#else
NIBBLE_DECODED_TILE(IQ4_NL, iq4_nl)
#endif
#if HWY_TARGET == HWY_AVX3_DL
// IQ4_XS against q8_K activations: each 32-block's 16 nibble bytes are IQ4_NL's, and the 8
// blocks of a super-block are 128 contiguous bytes, so a super-block is two of TileNibbles'
// four-block steps (table + 128 as the unsigned operand, 128·Σa off) with integer scales: the
// block scales ls − 32 multiply the int32 block sums (|Σ| ≤ 8 blocks · 32 · 32·127·127 < 2^31),
// and one conversion and FMA per row and super-block apply d·d_a. The generic tile assembled a
// float scale per block from scalars and ran compute-bound (bench_matmul M = 1, 1 thread, Zen 5:
// 2048 → 5632 in 960 µs, 6.4 GB/s).
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileIQ4_XS(const uint8_t* const* rows, const ActRow* a,
                                           float* out) {
  const int64_t n_super = a[0].K / 256;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i table = _mm512_broadcast_i32x4(
      _mm_add_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues)),
                   _mm_set1_epi8(static_cast<char>(0x80))));
  const __m256i low_shift = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
  const __m256i high_shift = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  // Lane 4i + e ← scale of block i (first four blocks) or 4 + i (last four).
  const __m512i quads_lo = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const __m512i quads_hi = _mm512_add_epi32(quads_lo, _mm512_set1_epi32(4));
  __m512 acc[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm512_setzero_ps();
  }
  for (int64_t s = 0; s < n_super; ++s) {
    a[0].next.Fetch(8 * s, 8 * s + 8);
    __m512i a_lo[MA][2], a_hi[MA][2], corr[MA][2];
    float da[MA];
    for (int m = 0; m < MA; ++m) {
      for (int g = 0; g < 2; ++g)
        LoadQ4Activations<7>(a[m], 8 * s + 4 * g, a_lo[m][g], a_hi[m][g], corr[m][g]);
      da[m] = a[m].d[8 * s];
    }
    for (int r = 0; r < 4; ++r) {
      const uint8_t* sb = rows[r] + 136 * s;
      // ls of block ib: 4 bits at 4·ib of the 32-bit scales_l, 2 bits at 2·ib of scales_h.
      const __m256i low = _mm256_srlv_epi32(
          _mm256_set1_epi32(static_cast<int>(detail::load_u32(sb + 4))), low_shift);
      const __m256i high =
          _mm256_srlv_epi32(_mm256_set1_epi32(detail::load_u16(sb + 2)), high_shift);
      const __m256i ls =
          _mm256_or_si256(_mm256_and_si256(low, _mm256_set1_epi32(0x0F)),
                          _mm256_slli_epi32(_mm256_and_si256(high, _mm256_set1_epi32(3)), 4));
      const __m512i scales = _mm512_castsi256_si512(_mm256_sub_epi32(ls, _mm256_set1_epi32(32)));
      const __m512i sc[2] = {_mm512_permutexvar_epi32(quads_lo, scales),
                             _mm512_permutexvar_epi32(quads_hi, scales)};
      __m512i lo[2], hi[2];
      for (int g = 0; g < 2; ++g) {
        const __m512i v = _mm512_loadu_si512(sb + 8 + 64 * g);
        lo[g] = _mm512_shuffle_epi8(table, _mm512_and_si512(v, low4));
        hi[g] = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
      }
      const float d = F16(sb);
      for (int m = 0; m < MA; ++m) {
        __m512i sum = _mm512_setzero_si512();
        for (int g = 0; g < 2; ++g) {
          const __m512i dot = _mm512_sub_epi32(
              DotU8S8Acc(DotU8S8(lo[g], a_lo[m][g]), hi[g], a_hi[m][g]), corr[m][g]);
          sum = _mm512_add_epi32(sum, _mm512_mullo_epi32(dot, sc[g]));
        }
        acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d * da[m]), acc[m][r]);
      }
    }
  }
  StoreTile<MA>(acc, out);
}
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileIQ4_XSPerBlock(const uint8_t* const* rows, const ActRow* a,
                                                   float* out) {
  TileDecoded<DecodeIQ4_XS, MA>(rows, a, out);
}
#else
NIBBLE_DECODED_TILE(IQ4_XS, iq4_xs)
#endif
#if defined(NIBBLE_X86_512)
// Q3_K and Q2_K against q8_K activations (one d_a per super-block), as TileQ6_K: both have 16
// sub-blocks of 16 with an integer scale each, so the super-block's Σ_k sc_k·(q·a)_k is exact
// in int32 and costs one conversion and one FMA per row (Q2_K: a second for its mins), where
// the generic decoded tile assembled a float scale and bias per 16 elements from scalars — Q3_K
// and Q2_K decode ran compute-bound at ~4 GB/s per thread (bench_matmul M = 1, 2048 → 5632,
// Zen 5: 1325 and 1154 µs against Q4_K's 287).
// Quarter p (64 elements, 32-blocks 2p and 2p + 1) takes its 2-bit fields j0 = 2·(p mod 2) and
// j0 + 1 from the 32 qs bytes of half h = p / 2: [qs, qs >> 2] (one copy per 256-bit half)
// shifted by 2·j0. Q3_K's high bit of element l in block 4h + j is bit 4h + j of hmask[l]:
// [hm, hm >> 1] shifted so that bit 4h + j0 lands on bit 2, giving the level low2 + 4·hbit
// (0..7, offset 4, which leaves once per super-block as 4·Σ_k sc_k·Σa_k like Q6_K's 32).
// Q2_K's level is the field itself (0..3) and its mins leave as dmin·Σ_k mn_k·Σa_k.

// Q3_K's 16 signed 6-bit scales (12 packed bytes) as int16: low 4 bits from bytes 0..7 (low
// nibbles for k < 8, high for k ≥ 8), top 2 bits from byte 8 + k mod 4 at bit 2·(k / 4).
NIBBLE_INT_ATTR HWY_INLINE __m256i Q3KScales(const uint8_t* sc) {
  const __m128i m4 = _mm_set1_epi8(0x0F);
  const __m128i x = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc));
  const __m128i low4 =
      _mm_unpacklo_epi64(_mm_and_si128(x, m4), _mm_and_si128(_mm_srli_epi16(x, 4), m4));
  const __m128i top = _mm_set1_epi32(static_cast<int>(detail::load_u32(sc + 8)));
  const __m128i top2 =
      _mm_and_si128(_mm_srlv_epi32(top, _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(3));
  const __m128i scales =
      _mm_sub_epi8(_mm_or_si128(low4, _mm_slli_epi16(top2, 4)), _mm_set1_epi8(32));
  return _mm256_cvtepi8_epi16(scales);
}

template <int MA, bool kThree>
NIBBLE_INT_ATTR HWY_INLINE void TileQ23_K(const uint8_t* const* rows, const ActRow* a, float* out) {
  constexpr int64_t kSuperBytes = kThree ? 110 : 84;
  constexpr int64_t kQsOffset = kThree ? 32 : 16;
  const int64_t n_super = a[0].K / 256;
  const __m512i two_bits = _mm512_set1_epi8(3);
  const __m512i bit2 = _mm512_set1_epi8(4);
  constexpr int kOr = 0xF8;  // vpternlog: A | (B & C)
  __m512 acc[MA][4];
  for (int m = 0; m < MA; ++m) {
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm512_setzero_ps();
  }
  for (int64_t s = 0; s < n_super; ++s) {
    a[0].next.Fetch(8 * s, 8 * s + 8);
    __m256i sum16[MA];  // the 16 sub-block sums of the activations, int16 (|Σa| ≤ 16·127)
    float da[MA];
    for (int m = 0; m < MA; ++m) {
      sum16[m] = _mm512_cvtepi32_epi16(_mm512_loadu_si512(a[m].sum16 + 16 * s));
      da[m] = a[m].d[8 * s];
    }
    for (int r = 0; r < 4; ++r) {
      const uint8_t* sb = rows[r] + kSuperBytes * s;
      __m256i sc16, mn16 = _mm256_setzero_si256();
      float d, dmin = 0.0f;
      if constexpr (kThree) {
        sc16 = Q3KScales(sb + 96);
        d = F16(sb + 108);
      } else {
        const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sb));
        const __m128i m4 = _mm_set1_epi8(0x0F);
        sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(packed, m4));
        mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), m4));
        d = F16(sb + 80);
        dmin = F16(sb + 82);
      }
      __m512i sc[4];
      SpreadSubBlockScales(sc16, sc);
      __m512i u[4];
      __m512i hm_pair = _mm512_setzero_si512();
      if constexpr (kThree) {
        const __m512i hm =
            _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb)));
        hm_pair = _mm512_mask_srli_epi16(hm, 0xFFFF0000u, hm, 1);
      }
      for (int h = 0; h < 2; ++h) {
        const __m512i qs = _mm512_broadcast_i64x4(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + kQsOffset + 32 * h)));
        const __m512i pair = _mm512_mask_srli_epi16(qs, 0xFFFF0000u, qs, 2);
        u[2 * h] = _mm512_and_si512(pair, two_bits);
        u[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(pair, 4), two_bits);
        if constexpr (kThree) {
          // Bit 4h + j0 of [hm, hm >> 1] to bit 2: j0 = 0 and 2 of half h.
          const __m512i h0 = h == 0 ? _mm512_slli_epi16(hm_pair, 2) : _mm512_srli_epi16(hm_pair, 2);
          const __m512i h2 = h == 0 ? hm_pair : _mm512_srli_epi16(hm_pair, 4);
          u[2 * h] = _mm512_ternarylogic_epi32(u[2 * h], h0, bit2, kOr);
          u[2 * h + 1] = _mm512_ternarylogic_epi32(u[2 * h + 1], h2, bit2, kOr);
        }
      }
      for (int m = 0; m < MA; ++m) {
        __m512i dot = SuperBlockDot(u, sc, a[m].q + 256 * s);
        if constexpr (kThree) {
          const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(sc16, sum16[m]), 2);
          dot = _mm512_sub_epi32(dot, _mm512_zextsi256_si512(offset));
        }
        acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(d * da[m]), acc[m][r]);
        if constexpr (!kThree) {
          const __m256i mins = _mm256_madd_epi16(mn16, sum16[m]);
          acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_zextsi256_si512(mins)),
                                      _mm512_set1_ps(-dmin * da[m]), acc[m][r]);
        }
      }
    }
  }
  StoreTile<MA>(acc, out);
}
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileQ2_K(const uint8_t* const* rows, const ActRow* a, float* out) {
  TileQ23_K<MA, false>(rows, a, out);
}
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileQ3_K(const uint8_t* const* rows, const ActRow* a, float* out) {
  TileQ23_K<MA, true>(rows, a, out);
}
// Activations with a scale per 32-block take the generic tile (d_a per block).
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileQ2_KPerBlock(const uint8_t* const* rows, const ActRow* a,
                                                 float* out) {
  TileDecoded<DecodeQ2_K, MA>(rows, a, out);
}
template <int MA>
NIBBLE_INT_ATTR HWY_INLINE void TileQ3_KPerBlock(const uint8_t* const* rows, const ActRow* a,
                                                 float* out) {
  TileDecoded<DecodeQ3_K, MA>(rows, a, out);
}
#else
NIBBLE_DECODED_TILE(Q2_K, q2_k)
NIBBLE_DECODED_TILE(Q3_K, q3_k)
#endif
#if !defined(NIBBLE_X86_512) && !defined(NIBBLE_X86_256)  // x86 has TileQ4_K and TileQ5_K above
NIBBLE_DECODED_TILE(Q4_K, q4_k)
NIBBLE_DECODED_TILE(Q5_K, q5_k)
#endif
NIBBLE_DECODED_TILE(Q4_G64, q4_g64)
NIBBLE_DECODED_TILE(Q4_G128, q4_g128)
NIBBLE_DECODED_TILE(Q8_C, q8_c)
#undef NIBBLE_DECODED_TILE

#if HWY_TARGET == HWY_AVX3_DL
#include "kernels/gemm_panel-inl.h"
#define NIBBLE_PANEL_GEMM 1
#elif HWY_TARGET == HWY_AVX2
// Only where dispatch made AVX-VNNI active ("AVX2_VNNI"): the AVX2 target also runs on CPUs
// without it.
#include "kernels/gemm_panel_avx2-inl.h"
#define NIBBLE_PANEL_GEMM_VNNI 1
#endif

// Float weights use one activation row per tile: their loads are already the cheap part.
template <class WeightLoad>
struct FloatKernel {
  static constexpr int kRows = 1;
  template <int MA>
  static HWY_INLINE void Tile(const uint8_t* const* rows, const ActRow* a, float* out) {
    static_assert(MA == 1);
    FloatTile<WeightLoad>(rows, a[0], out);
  }
};

#define NIBBLE_INT_KERNEL(NAME, TILE)                                                       \
  struct NAME {                                                                             \
    static constexpr int kRows = kActRows;                                                  \
    template <int MA>                                                                       \
    static NIBBLE_INT_ATTR HWY_INLINE void Tile(const uint8_t* const* rows, const ActRow* a, \
                                                float* out) {                               \
      TILE<MA>(rows, a, out);                                                               \
    }                                                                                       \
  };
NIBBLE_INT_KERNEL(KernelQ4_0, TileQ4_0)
NIBBLE_INT_KERNEL(KernelQ8_0, TileQ8_0)
NIBBLE_INT_KERNEL(KernelQ6_K, TileQ6_K)
NIBBLE_INT_KERNEL(KernelQ4_1, TileQ4_1)
NIBBLE_INT_KERNEL(KernelQ5_0, TileQ5_0)
NIBBLE_INT_KERNEL(KernelQ5_1, TileQ5_1)
NIBBLE_INT_KERNEL(KernelIQ4_NL, TileIQ4_NL)
NIBBLE_INT_KERNEL(KernelIQ4_XS, TileIQ4_XS)
NIBBLE_INT_KERNEL(KernelQ2_K, TileQ2_K)
NIBBLE_INT_KERNEL(KernelQ3_K, TileQ3_K)
NIBBLE_INT_KERNEL(KernelQ4_K, TileQ4_K)
NIBBLE_INT_KERNEL(KernelQ5_K, TileQ5_K)
#if defined(NIBBLE_X86_512) || defined(NIBBLE_X86_256)
NIBBLE_INT_KERNEL(KernelQ6_KPerBlock, TileQ6_KPerBlock)
NIBBLE_INT_KERNEL(KernelQ4_KPerBlock, TileQ4_KPerBlock)
NIBBLE_INT_KERNEL(KernelQ5_KPerBlock, TileQ5_KPerBlock)
#endif
#if defined(NIBBLE_X86_512)
NIBBLE_INT_KERNEL(KernelQ2_KPerBlock, TileQ2_KPerBlock)
NIBBLE_INT_KERNEL(KernelQ3_KPerBlock, TileQ3_KPerBlock)
#endif
#if HWY_TARGET == HWY_AVX3_DL
NIBBLE_INT_KERNEL(KernelIQ4_XSPerBlock, TileIQ4_XSPerBlock)
#endif
NIBBLE_INT_KERNEL(KernelQ4_G64, TileQ4_G64)
NIBBLE_INT_KERNEL(KernelQ4_G128, TileQ4_G128)
NIBBLE_INT_KERNEL(KernelQ8_C, TileQ8_C)
#undef NIBBLE_INT_KERNEL

// ---------------------------------------------------------------------------------------------
// Row-range drivers: output rows [n0, n1) for every activation row, in tiles of 4 weight rows ×
// Kernel::kRows activation rows (single rows for the M tail). A tile always reads 4 weight rows;
// at the N tail the last real row stands in for the missing ones and their results are dropped.

template <bool kQuantized>
HWY_INLINE ActRow MakeActRow(const MatmulArgs& args, int64_t m) {
  ActRow a{};
  const int64_t K = args.K;
  a.K = K;
  if constexpr (kQuantized) {
    const QuantizedInput& qx = *args.qx;
    a.q = qx.q.data() + m * K;
    a.d = qx.d.data() + m * (K / 32);
    a.sum = qx.sum.data() + m * (K / 32);
    a.sum16 = qx.sum16.data() + m * (K / 16);
    a.dsum = qx.dsum.data() + m * (K / 32);
    a.dsum16 = qx.dsum16.data() + m * (K / 16);
    a.dsum_q8_1 = qx.dsum_q8_1.data() + m * (K / 32);
  } else {
    a.x = args.x + m * K;
  }
  return a;
}

// What the tile at output row n of the range [.., n1) prefetches: the tile after it (`bytes` at
// p) where MatmulArgs::prefetches_next_tile says so.
HWY_INLINE NextTile NextTileOf(const MatmulArgs& args, int64_t n, int64_t n1, const uint8_t* p,
                               uint64_t bytes) {
  return args.prefetches_next_tile(n, n1)
             ? NextTile(p, bytes, args.K / 32, args.nta_prefetch_max_bytes)
             : NextTile();
}

// Columns [n, n + nr) (nr ≤ 4) of y for every activation row: Source::Run<MA> computes one tile
// of 4 weight rows × MA activation rows (MA = kRows, single rows for the M tail), the first
// prefetching `next` meanwhile.
template <int kRows, bool kQuantized, class Source>
NIBBLE_INT_ATTR HWY_INLINE void RowTile(const MatmulArgs& args, int64_t n, int64_t nr,
                                        const NextTile& next, const Source& source) {
  float out[4 * kRows];
  ActRow a[kRows];
  int64_t m = 0;
  for (; m + kRows <= args.M; m += kRows) {
    for (int i = 0; i < kRows; ++i) a[i] = MakeActRow<kQuantized>(args, m + i);
    if (m == 0) a[0].next = next;
    source.template Run<kRows>(a, out);
    for (int i = 0; i < kRows; ++i) {
      for (int64_t r = 0; r < nr; ++r) args.y[(m + i) * args.ldy + n + r] = out[4 * i + r];
    }
  }
  if constexpr (kRows > 1) {
    for (; m < args.M; ++m) {
      a[0] = MakeActRow<kQuantized>(args, m);
      if (m == 0) a[0].next = next;
      source.template Run<1>(a, out);
      for (int64_t r = 0; r < nr; ++r) args.y[m * args.ldy + n + r] = out[r];
    }
  }
}

// A tile's weights as 4 row pointers (GGUF layout; at the N tail the last real row repeats).
template <class Kernel>
struct RowsSource {
  const uint8_t* rows[4];
  RowsSource(const MatmulArgs& args, int64_t n, int64_t nr) {
    for (int64_t r = 0; r < 4; ++r) rows[r] = args.w + (n + std::min(r, nr - 1)) * args.w_row_bytes;
  }
  template <int MA>
  NIBBLE_INT_ATTR HWY_INLINE void Run(const ActRow* a, float* out) const {
    Kernel::template Tile<MA>(rows, a, out);
  }
};

template <class Kernel, bool kQuantized>
NIBBLE_INT_ATTR HWY_INLINE void RowRange(const MatmulArgs& args, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; n += 4) {
    const NextTile next =
        NextTileOf(args, n, n1, args.w + (n + 4) * args.w_row_bytes, 4 * args.w_row_bytes);
    const int64_t nr = std::min<int64_t>(4, n1 - n);
    RowTile<Kernel::kRows, kQuantized>(args, n, nr, next, RowsSource<Kernel>(args, n, nr));
  }
}

// Packed weights on a target without a native packed tile for the type: unpack each tile's rows
// to GGUF blocks in per-thread scratch and run the target's usual kernel on them (the same
// results as the plain layout).
template <class Kernel>
NIBBLE_INT_ATTR HWY_INLINE void UnpackingRowRange(const MatmulArgs& args, TensorType type,
                                                  int64_t n0, int64_t n1) {
  thread_local std::vector<uint8_t> scratch;
  scratch.resize(4 * args.w_row_bytes);
  WeightMatrix W;  // what unpack_rows reads of the packed weight
  W.type = type;
  W.data = args.w;
  W.cols = args.K;
  W.row_bytes = args.w_row_bytes;
  W.layout = args.w_tile_rows == detail::kRows16 ? kLayoutRows16 : kLayoutPacked4;
  for (int64_t n = n0; n < n1; n += 4) {
    const int nr = static_cast<int>(std::min<int64_t>(4, n1 - n));
    detail::unpack_rows(W, n, nr, scratch.data(), args.w_row_bytes);
    MatmulArgs sub = args;
    sub.w = scratch.data();
    sub.y = args.y + n;
    // The next packed tile, not the scratch: without it the AVX2 target decoded repacked Q4_0 /
    // Q8_0 at 8–9 GB/s from DRAM against 38–55 for the same kernel on the file layout.
    const NextTile next =
        NextTileOf(args, n, n1, args.w + args.row_offset(n + args.tile_rows()), args.w_tile_bytes);
    RowTile<Kernel::kRows, true>(sub, 0, nr, next, RowsSource<Kernel>(sub, 0, nr));
  }
}

// kLayoutPacked4 row ranges (n0 a multiple of 4: the driver hands out whole tiles).
#if defined(NIBBLE_NATIVE_PACKED)
template <int MA, void (*Tile)(const uint8_t*, const ActRow*, float*)>
struct PackedTileFn {
  static NIBBLE_INT_ATTR HWY_INLINE void Run(const uint8_t* tile, const ActRow* a, float* out) { Tile(tile, a, out); }
};

// A tile's weights as one kLayoutPacked4 tile.
template <template <int> class TileOf>
struct PackedSource {
  const uint8_t* tile;
  template <int MA>
  NIBBLE_INT_ATTR HWY_INLINE void Run(const ActRow* a, float* out) const {
    TileOf<MA>::Run(tile, a, out);
  }
};

template <template <int> class TileOf>
NIBBLE_INT_ATTR HWY_INLINE void PackedRowRange(const MatmulArgs& args, TensorType, int64_t n0,
                                               int64_t n1) {
  for (int64_t n = n0; n < n1; n += 4) {
    const uint8_t* tile = args.w + (n / 4) * args.w_tile_bytes;
    const NextTile next = NextTileOf(args, n, n1, tile + args.w_tile_bytes, args.w_tile_bytes);
    RowTile<kActRows, true>(args, n, std::min<int64_t>(4, n1 - n), next,
                            PackedSource<TileOf>{tile});
  }
}
template <int MA>
struct PackedQ4_0 : PackedTileFn<MA, PackedTileQ4_0<MA>> {};
template <int MA>
struct PackedQ8_0 : PackedTileFn<MA, PackedTileQ8_0<MA>> {};
template <int MA>
struct PackedQ4_1 : PackedTileFn<MA, PackedTileNibbles<NibbleQ4_1, MA>> {};
#if HWY_TARGET == HWY_AVX3_DL
template <int MA>
struct PackedIQ4_NL : PackedTileFn<MA, PackedTileNibbles<NibbleIQ4_NL, MA>> {};
template <int MA>
struct PackedQ4_K : PackedTileFn<MA, PackedTileQ45_K<MA, false>> {};
template <int MA>
struct PackedQ5_K : PackedTileFn<MA, PackedTileQ45_K<MA, true>> {};
#endif
#define NIBBLE_PACKED_RANGE(NATIVE, KERNEL) PackedRowRange<NATIVE>
#else
#define NIBBLE_PACKED_RANGE(NATIVE, KERNEL) UnpackingRowRange<KERNEL>
#endif

// kLayoutRows16 row ranges (n0 a multiple of 16: chunks and decode pieces are whole strips):
// strips of 16 weight rows × 4 activation rows, single rows for the M tail.
#if defined(NIBBLE_X86_512)
// A format's strip tile for MA activation rows, as TileOf<MA>::Run.
template <int MA>
struct Rows16Q4_0 : PackedTileFn<MA, Rows16Tile<TensorType::Q4_0, MA>> {};
template <int MA>
struct Rows16Q4_1 : PackedTileFn<MA, Rows16Tile<TensorType::Q4_1, MA>> {};
template <int MA>
struct Rows16Q6_K : PackedTileFn<MA, Rows16TileQ6_K<MA, false>> {};
template <int MA>
struct Rows16Q6_KPerBlock : PackedTileFn<MA, Rows16TileQ6_K<MA, true>> {};
#if HWY_TARGET == HWY_AVX3_DL
template <int MA>
struct Rows16IQ4_NL : PackedTileFn<MA, Rows16Tile<TensorType::IQ4_NL, MA>> {};
template <int MA>
struct Rows16Q8_0 : PackedTileFn<MA, Rows16TileQ8_0<MA>> {};
template <int MA>
struct Rows16Q4_K : PackedTileFn<MA, Rows16TileQ45_K<MA, false>> {};
template <int MA>
struct Rows16Q5_K : PackedTileFn<MA, Rows16TileQ45_K<MA, true>> {};
#endif

template <template <int> class TileOf, int MA>
NIBBLE_INT_ATTR HWY_INLINE void Rows16Strip(const MatmulArgs& args, const uint8_t* strip, int64_t m,
                                            int64_t n, int64_t nr, const NextTile& next) {
  ActRow a[MA];
  for (int i = 0; i < MA; ++i) a[i] = MakeActRow<true>(args, m + i);
  if (m == 0) a[0].next = next;
  float out[16 * MA];
  TileOf<MA>::Run(strip, a, out);
  const __mmask16 valid = static_cast<__mmask16>((1u << nr) - 1);
  for (int i = 0; i < MA; ++i)
    _mm512_mask_storeu_ps(args.y + (m + i) * args.ldy + n, valid, _mm512_loadu_ps(out + 16 * i));
}

// What a strip prefetches in decode. A range's strips are one contiguous stream, so where L1
// non-temporal prefetches pay (AMD, MatmulArgs::nta_prefetch_max_bytes) the strip fetches the
// bytes kRows16AheadBytes ahead of the ones it reads, into the next strip at its end; elsewhere
// the next strip goes to L2 as the 4-row tiles' next tile does. bench_matmul M = 1 from DRAM,
// 1 thread, Zen 4, GB/s (three alternated rounds): K = 2048 → 5632 next strip to L2 20.8–21.6,
// no software prefetch 21.5–23.5, 2 KB ahead to L1 26.3–29.3 (1 KB 24.0–26.0, 4 KB 26.9–28.6,
// 6 KB 25.9–27.1), PackedTileQ4_0 on 4-row tiles 24.2–27.1; K = 5632 → 2048 the same order,
// 2 KB ahead 22.6–24.7 against 22.6–25.5. At 2 threads all of them sat at the host's bandwidth.
constexpr uint64_t kRows16AheadBytes = 2048;

HWY_INLINE NextTile Rows16Ahead(const MatmulArgs& args, int64_t n, int64_t n1,
                                const uint8_t* strip) {
  if (args.M > 2) return NextTile();
  if (args.nta_prefetch_max_bytes == 0)
    return NextTileOf(args, n, n1, strip + args.w_tile_bytes, args.w_tile_bytes);
  // Past the range's last strip only where the rows after it are this thread's too.
  const bool on = args.prefetches_next_tile(n, n1);
  if (!on && args.w_tile_bytes <= kRows16AheadBytes) return NextTile();
  const uint64_t bytes = on ? args.w_tile_bytes : args.w_tile_bytes - kRows16AheadBytes;
  return NextTile(strip + kRows16AheadBytes, bytes, args.K / 32, ~uint64_t{0});
}

template <template <int> class TileOf>
NIBBLE_INT_ATTR HWY_INLINE void Rows16RowRange(const MatmulArgs& args, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; n += detail::kRows16) {
    const uint8_t* strip = args.w + args.row_offset(n);
    const NextTile next = Rows16Ahead(args, n, n1, strip);
    const int64_t nr = std::min<int64_t>(detail::kRows16, n1 - n);
    int64_t m = 0;
    for (; m + kActRows <= args.M; m += kActRows)
      Rows16Strip<TileOf, kActRows>(args, strip, m, n, nr, next);
    for (; m < args.M; ++m) Rows16Strip<TileOf, 1>(args, strip, m, n, nr, next);
  }
}
#endif

// Prefill (M ≥ kPanelMinM) takes the panel GEMM where the target has it.
#if defined(NIBBLE_PANEL_GEMM)
#define NIBBLE_TRY_PANEL(ROWS, DEC) \
  if (a.M >= detail::kPanelMinM && a.qx->panel_M == a.M) return PanelRowRange<ROWS, DEC>(a, n0, n1);
#elif defined(NIBBLE_PANEL_GEMM_VNNI)
#define NIBBLE_TRY_PANEL(ROWS, DEC)                                                          \
  if (a.M >= detail::kPanelMinM && a.qx->panel_M == a.M &&                                           \
      active_int8_extension() == Int8Extension::kAvxVnni)                                            \
    return PanelRowRange<ROWS, DEC>(a, n0, n1);
#else
#define NIBBLE_TRY_PANEL(ROWS, DEC)
#endif

// Whether this target's int8 kernels read QuantizedInput's block-major panel copy for M ≥ kPanelMinM.
bool HasPanelGemm() {
#if defined(NIBBLE_PANEL_GEMM)
  return true;
#elif defined(NIBBLE_PANEL_GEMM_VNNI)
  return active_int8_extension() == Int8Extension::kAvxVnni;
#else
  return false;
#endif
}

// Rows [m0, m1) × blocks [blk0, blk1) of X into qx, whose panel copy is sized (panel_M == M):
// straight into the copy by QuantizePanelRows where this target has the panel GEMM, else row by
// row through QuantizeBlocks (row-major arrays and copy). blk0 starts an activation group.
NIBBLE_INT_ATTR void QuantizePanelTile(const float* X, int64_t m0, int64_t m1, int64_t blk0,
                                       int64_t blk1, QuantizedInput* qx) {
#if defined(NIBBLE_PANEL_GEMM)
  for (int64_t m = m0; m < m1; m += 16)
    QuantizePanelRows(X, m, std::min(m1, m + 16), blk0, blk1, *qx);
#else
  const int64_t nb = qx->K / 32;
  for (int64_t m = m0; m < m1; ++m) QuantizeBlocks(X, m * nb + blk0, m * nb + blk1, qx);
#endif
}

NIBBLE_INT_ATTR void MatmulRowsQ4_0Packed(const MatmulArgs& a, int64_t n0, int64_t n1) {
  if (a.w_tile_rows == detail::kRows16) {
#if defined(NIBBLE_X86_512)
#if defined(NIBBLE_PANEL_GEMM)
    if (a.M >= detail::kPanelMinM && a.qx->panel_M == a.M)
      return PanelRowRange<Rows16PanelRows, DecodeRows16Q4_0>(a, n0, n1);
#endif
    return Rows16RowRange<Rows16Q4_0>(a, n0, n1);
#else
    return UnpackingRowRange<KernelQ4_0>(a, TensorType::Q4_0, n0, n1);
#endif
  }
  NIBBLE_TRY_PANEL(PackedPanelRows, DecodePackedQ4_0)
  NIBBLE_PACKED_RANGE(PackedQ4_0, KernelQ4_0)(a, TensorType::Q4_0, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsQ8_0Packed(const MatmulArgs& a, int64_t n0, int64_t n1) {
  if (a.w_tile_rows == detail::kRows16) {
#if HWY_TARGET == HWY_AVX3_DL
    if (a.M >= detail::kPanelMinM && a.qx->panel_M == a.M)
      return PanelRowRange<Rows16PanelRows, DecodeRows16Q8_0>(a, n0, n1);
    return Rows16RowRange<Rows16Q8_0>(a, n0, n1);
#else
    return UnpackingRowRange<KernelQ8_0>(a, TensorType::Q8_0, n0, n1);
#endif
  }
  NIBBLE_TRY_PANEL(PackedPanelRows, DecodePackedQ8_0)
  NIBBLE_PACKED_RANGE(PackedQ8_0, KernelQ8_0)(a, TensorType::Q8_0, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsQ4_1Packed(const MatmulArgs& a, int64_t n0, int64_t n1) {
  if (a.w_tile_rows == detail::kRows16) {
#if defined(NIBBLE_X86_512)
#if defined(NIBBLE_PANEL_GEMM)
    if (a.M >= detail::kPanelMinM && a.qx->panel_M == a.M)
      return PanelRowRange<Rows16PanelRows, DecodeRows16Q4_1>(a, n0, n1);
#endif
    return Rows16RowRange<Rows16Q4_1>(a, n0, n1);
#else
    return UnpackingRowRange<KernelQ4_1>(a, TensorType::Q4_1, n0, n1);
#endif
  }
  NIBBLE_TRY_PANEL(PackedPanelRows, DecodePackedQ4_1)
#if defined(NIBBLE_X86_512)
  PackedRowRange<PackedQ4_1>(a, TensorType::Q4_1, n0, n1);
#else
  UnpackingRowRange<KernelQ4_1>(a, TensorType::Q4_1, n0, n1);
#endif
}
NIBBLE_INT_ATTR void MatmulRowsIQ4_NLPacked(const MatmulArgs& a, int64_t n0, int64_t n1) {
  if (a.w_tile_rows == detail::kRows16) {
#if HWY_TARGET == HWY_AVX3_DL
    if (a.M >= detail::kPanelMinM && a.qx->panel_M == a.M)
      return PanelRowRange<Rows16PanelRows, DecodeRows16IQ4_NL>(a, n0, n1);
    return Rows16RowRange<Rows16IQ4_NL>(a, n0, n1);
#else
    return UnpackingRowRange<KernelIQ4_NL>(a, TensorType::IQ4_NL, n0, n1);
#endif
  }
  NIBBLE_TRY_PANEL(PackedPanelRows, DecodePackedIQ4_NL)
#if HWY_TARGET == HWY_AVX3_DL
  PackedRowRange<PackedIQ4_NL>(a, TensorType::IQ4_NL, n0, n1);
#else
  UnpackingRowRange<KernelIQ4_NL>(a, TensorType::IQ4_NL, n0, n1);
#endif
}
// Q6_K has only kLayoutRows16 (no 4-row packed tile).
NIBBLE_INT_ATTR void MatmulRowsQ6_KPacked(const MatmulArgs& a, int64_t n0, int64_t n1) {
#if defined(NIBBLE_X86_512)
#if defined(NIBBLE_PANEL_GEMM)
  if (a.M >= detail::kPanelMinM && a.qx->panel_M == a.M)
    return PanelRowRange<Rows16PanelRows, DecodeRows16Q6_K>(a, n0, n1);
#endif
  if (a.qx->group_blocks != 8) return Rows16RowRange<Rows16Q6_KPerBlock>(a, n0, n1);
  return Rows16RowRange<Rows16Q6_K>(a, n0, n1);
#else
#if defined(NIBBLE_X86_256)
  if (a.qx->group_blocks != 8)
    return UnpackingRowRange<KernelQ6_KPerBlock>(a, TensorType::Q6_K, n0, n1);
#endif
  UnpackingRowRange<KernelQ6_K>(a, TensorType::Q6_K, n0, n1);
#endif
}
NIBBLE_INT_ATTR void MatmulRowsQ4_KPacked(const MatmulArgs& a, int64_t n0, int64_t n1) {
  if (a.w_tile_rows == detail::kRows16) {
#if HWY_TARGET == HWY_AVX3_DL
    if (a.M >= detail::kPanelMinM && a.qx->panel_M == a.M)
      return PanelRowRange<Rows16PanelRows, DecodeRows16Q4_K>(a, n0, n1);
    if (a.qx->group_blocks == 8) return Rows16RowRange<Rows16Q4_K>(a, n0, n1);
#endif
#if defined(NIBBLE_X86_512) || defined(NIBBLE_X86_256)
    if (a.qx->group_blocks != 8)
      return UnpackingRowRange<KernelQ4_KPerBlock>(a, TensorType::Q4_K, n0, n1);
#endif
    return UnpackingRowRange<KernelQ4_K>(a, TensorType::Q4_K, n0, n1);
  }
  NIBBLE_TRY_PANEL(PackedPanelRows, DecodePackedQ4_K)
#if HWY_TARGET == HWY_AVX3_DL
  if (a.qx->group_blocks == 8) return PackedRowRange<PackedQ4_K>(a, TensorType::Q4_K, n0, n1);
#endif
#if defined(NIBBLE_X86_512) || defined(NIBBLE_X86_256)
  if (a.qx->group_blocks != 8)
    return UnpackingRowRange<KernelQ4_KPerBlock>(a, TensorType::Q4_K, n0, n1);
#endif
  UnpackingRowRange<KernelQ4_K>(a, TensorType::Q4_K, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsQ5_KPacked(const MatmulArgs& a, int64_t n0, int64_t n1) {
  if (a.w_tile_rows == detail::kRows16) {
#if HWY_TARGET == HWY_AVX3_DL
    if (a.M >= detail::kPanelMinM && a.qx->panel_M == a.M)
      return PanelRowRange<Rows16PanelRows, DecodeRows16Q5_K>(a, n0, n1);
    if (a.qx->group_blocks == 8) return Rows16RowRange<Rows16Q5_K>(a, n0, n1);
#endif
#if defined(NIBBLE_X86_512) || defined(NIBBLE_X86_256)
    if (a.qx->group_blocks != 8)
      return UnpackingRowRange<KernelQ5_KPerBlock>(a, TensorType::Q5_K, n0, n1);
#endif
    return UnpackingRowRange<KernelQ5_K>(a, TensorType::Q5_K, n0, n1);
  }
  NIBBLE_TRY_PANEL(PackedPanelRows, DecodePackedQ5_K)
#if HWY_TARGET == HWY_AVX3_DL
  if (a.qx->group_blocks == 8) return PackedRowRange<PackedQ5_K>(a, TensorType::Q5_K, n0, n1);
#endif
#if defined(NIBBLE_X86_512) || defined(NIBBLE_X86_256)
  if (a.qx->group_blocks != 8)
    return UnpackingRowRange<KernelQ5_KPerBlock>(a, TensorType::Q5_K, n0, n1);
#endif
  UnpackingRowRange<KernelQ5_K>(a, TensorType::Q5_K, n0, n1);
}
// Whether this target has its own packed tile for t (detail::packed_layout_pays). AArch64 runs
// kernels/matmul_neon.cpp's packed Q4_0 / Q8_0 rows instead of these targets'. Elsewhere a packed
// tile would be unpacked to GGUF blocks per call (UnpackingRowRange): on AVX2, Q4_0 / Q8_0 from
// cache 1 thread 6–13 GB/s that way against 20–50 on the file layout, so they stay unpacked.
bool HasNativePackedTile(TensorType t) {
  const bool q4_0_q8_0 = t == TensorType::Q4_0 || t == TensorType::Q8_0;
#if HWY_TARGET == HWY_AVX3_DL
  return q4_0_q8_0 || t == TensorType::Q4_1 || t == TensorType::IQ4_NL || t == TensorType::Q4_K ||
         t == TensorType::Q5_K;
#elif defined(NIBBLE_X86_512)
  return q4_0_q8_0 || t == TensorType::Q4_1;
#elif HWY_ARCH_ARM_A64
  return q4_0_q8_0;
#else
  (void)q4_0_q8_0;
  return false;
#endif
}
#undef NIBBLE_PACKED_RANGE

// Whether this target reads kLayoutRows16 natively for t (detail::rows16_layout_pays): AVX-512.
bool HasNativeRows16Tile(TensorType t) {
#if HWY_TARGET == HWY_AVX3_DL
  return t == TensorType::Q4_0 || t == TensorType::Q4_1 || t == TensorType::IQ4_NL ||
         t == TensorType::Q8_0 || t == TensorType::Q4_K || t == TensorType::Q5_K ||
         t == TensorType::Q6_K;
#elif defined(NIBBLE_X86_512)
  return t == TensorType::Q4_0 || t == TensorType::Q4_1 || t == TensorType::Q6_K;
#else
  (void)t;
  return false;
#endif
}

NIBBLE_INT_ATTR void MatmulRowsQ4_0(const MatmulArgs& a, int64_t n0, int64_t n1) {
  NIBBLE_TRY_PANEL(GgufPanelRows, DecodeQ4_0)
  RowRange<KernelQ4_0, true>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsQ8_0(const MatmulArgs& a, int64_t n0, int64_t n1) {
  NIBBLE_TRY_PANEL(GgufPanelRows, DecodeQ8_0)
  RowRange<KernelQ8_0, true>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsQ6_K(const MatmulArgs& a, int64_t n0, int64_t n1) {
  NIBBLE_TRY_PANEL(GgufPanelRows, DecodeQ6_K)
#if defined(NIBBLE_X86_512) || defined(NIBBLE_X86_256)
  if (a.qx->group_blocks != 8) return RowRange<KernelQ6_KPerBlock, true>(a, n0, n1);
#endif
  RowRange<KernelQ6_K, true>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsQ4_1(const MatmulArgs& a, int64_t n0, int64_t n1) {
  NIBBLE_TRY_PANEL(GgufPanelRows, DecodeQ4_1)
  RowRange<KernelQ4_1, true>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsQ5_0(const MatmulArgs& a, int64_t n0, int64_t n1) {
  NIBBLE_TRY_PANEL(GgufPanelRows, DecodeQ5_0)
  RowRange<KernelQ5_0, true>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsQ5_1(const MatmulArgs& a, int64_t n0, int64_t n1) {
  NIBBLE_TRY_PANEL(GgufPanelRows, DecodeQ5_1)
  RowRange<KernelQ5_1, true>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsIQ4_NL(const MatmulArgs& a, int64_t n0, int64_t n1) {
  NIBBLE_TRY_PANEL(GgufPanelRows, DecodeIQ4_NL)
  RowRange<KernelIQ4_NL, true>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsIQ4_XS(const MatmulArgs& a, int64_t n0, int64_t n1) {
  NIBBLE_TRY_PANEL(GgufPanelRows, DecodeIQ4_XS)
#if HWY_TARGET == HWY_AVX3_DL
  if (a.qx->group_blocks != 8) return RowRange<KernelIQ4_XSPerBlock, true>(a, n0, n1);
#endif
  RowRange<KernelIQ4_XS, true>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsQ2_K(const MatmulArgs& a, int64_t n0, int64_t n1) {
  NIBBLE_TRY_PANEL(GgufPanelRows, DecodeQ2_K)
#if defined(NIBBLE_X86_512)
  if (a.qx->group_blocks != 8) return RowRange<KernelQ2_KPerBlock, true>(a, n0, n1);
#endif
  RowRange<KernelQ2_K, true>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsQ3_K(const MatmulArgs& a, int64_t n0, int64_t n1) {
  NIBBLE_TRY_PANEL(GgufPanelRows, DecodeQ3_KPanel)
#if defined(NIBBLE_X86_512)
  if (a.qx->group_blocks != 8) return RowRange<KernelQ3_KPerBlock, true>(a, n0, n1);
#endif
  RowRange<KernelQ3_K, true>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsQ4_K(const MatmulArgs& a, int64_t n0, int64_t n1) {
  NIBBLE_TRY_PANEL(GgufPanelRows, DecodeQ4_K)
#if defined(NIBBLE_X86_512) || defined(NIBBLE_X86_256)
  if (a.qx->group_blocks != 8) return RowRange<KernelQ4_KPerBlock, true>(a, n0, n1);
#endif
  RowRange<KernelQ4_K, true>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsQ5_K(const MatmulArgs& a, int64_t n0, int64_t n1) {
  NIBBLE_TRY_PANEL(GgufPanelRows, DecodeQ5_K)
#if defined(NIBBLE_X86_512) || defined(NIBBLE_X86_256)
  if (a.qx->group_blocks != 8) return RowRange<KernelQ5_KPerBlock, true>(a, n0, n1);
#endif
  RowRange<KernelQ5_K, true>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsQ4_G64(const MatmulArgs& a, int64_t n0, int64_t n1) {
  NIBBLE_TRY_PANEL(GgufPanelRows, DecodeQ4_G64)
  RowRange<KernelQ4_G64, true>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsQ4_G128(const MatmulArgs& a, int64_t n0, int64_t n1) {
  NIBBLE_TRY_PANEL(GgufPanelRows, DecodeQ4_G128)
  RowRange<KernelQ4_G128, true>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsQ8_C(const MatmulArgs& a, int64_t n0, int64_t n1) {
  NIBBLE_TRY_PANEL(GgufPanelRows, DecodeQ8_C)
  RowRange<KernelQ8_C, true>(a, n0, n1);
}
#undef NIBBLE_TRY_PANEL

NIBBLE_INT_ATTR void MatmulRowsF32(const MatmulArgs& a, int64_t n0, int64_t n1) {
  RowRange<FloatKernel<LoadF32>, false>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsF16(const MatmulArgs& a, int64_t n0, int64_t n1) {
  RowRange<FloatKernel<LoadF16>, false>(a, n0, n1);
}
NIBBLE_INT_ATTR void MatmulRowsBF16(const MatmulArgs& a, int64_t n0, int64_t n1) {
  RowRange<FloatKernel<LoadBF16>, false>(a, n0, n1);
}

}  // namespace HWY_NAMESPACE
}  // namespace nibble
HWY_AFTER_NAMESPACE();

#endif  // NIBBLE_KERNELS_DOT_INL_H_
