// Prefill GEMM for the AVX-512 VNNI target (included by dot-inl.h inside HWY_AVX3_DL's namespace;
// no include guard, like every per-target file).
//
// Why a second kernel for M > 1: the 4-row tiles (dot-inl.h) put four 32-blocks side by side in
// one vector, so every 2 vpdpbusd of work pay for a subtract, an int→float conversion, a scale
// product and an FMA — prefill ran at ~20 % of the int8 peak. Here one vector holds 16 weight
// ROWS instead: lane r accumulates row r, and one 32-block of K is 8 vpdpbusd steps, each
// multiplying 4 weight bytes per lane by 4 activation bytes broadcast to every lane. The float
// work then happens once per 8 dot products (per 4 where a format scales 16-element halves).
//
// The 16-row "panel" that layout needs is built per call from whatever the weight is stored as
// (GGUF blocks or kLayoutPacked4), by the same per-format decoders the generic tile uses, and
// lives in per-thread scratch (L2-sized): for each 32-block b
//   W   8 × 64 bytes   step j (elements 4j..4j+3): lane r = row r's 4 levels, SIGNED
//   C   2 × 16 int32   −128·Σ levels of each row's first / second 16-element half (whole block
//                      in the first where the format has one scale per block)
//   S   2 × 16 floats  scale of each half
//   B   2 × 16 floats  min of each half (formats with mins only: element = scale·level + min)
// The activations are the unsigned operand: QuantizedInput's panel copy stores q + 128, so a
// dot product is Σ(q+128)·w = Σq·w + 128·Σw, and starting the accumulator at C (−128·Σw) leaves
// exactly Σq·w. Offset formats (Q4_0's level − 8, Q6_K's − 32, …) store the signed level, so
// unlike the unsigned-weight layout this needs no bias FMA per block: the float work per 8
// vpdpbusd is one conversion, one product with d_a and one FMA with the weight scale. On Zen 5
// vpdpbusd shares its two pipes with the float multiplies, which puts the ceiling of this loop
// at 8/10 of the int8 peak (8/11 with a min term). Building a panel costs ~250 instructions per
// block; at M = 512 the dot products on it cost ~4000, so rebuilding per call is cheaper than
// storing a second, byte-per-weight copy of the model (decode must keep reading nibbles).
//
// The activations are read block-major (QuantizedInput::panel_*: block b of rows m…m+5 is 192
// contiguous bytes), so a tile needs one activation pointer, not one per row — the row-major
// layout spilled registers in the 2 × 6 tile.
//
// Register blocking: 2 panels (32 rows) × 6 activation rows: 12 float and 12 int32
// accumulators, the 6 broadcasts and one weight vector (5 rows for formats with half-block
// scales, see kPanelTileRows; 4 for the grouped tiles of activations with a scale per 256, see
// kGroupedTileRows).

// Lanes of a panel and bytes of one 32-block in it.
constexpr int kPanelRows = 16;
constexpr int64_t kPanelBlockBytes = 8 * 64 + 6 * 64;
// Panels computed together (they share each activation broadcast).
constexpr int kPanelGroup = 2;
// Blocks of K per pass of the activation tiles over the panels: a slice of kPanelGroup panels
// (2 · 16 · 896 bytes) stays in L1 while every activation tile passes over it, instead of each
// tile streaming whole panels from L2 (Zen 5's L2 kept up either way: same speed measured; the
// slices are for cores with less L2 bandwidth). Partial sums between slices stay in a contiguous
// per-thread buffer (PanelGroupPass).
// A slice is whole super-blocks (a multiple of 8). See PanelRowRange for the order of the loops.
constexpr int64_t kPanelSliceBlocks = 16;

#include "kernels/gemm_panel_rows-inl.h"

// A kLayoutRows16 strip is already one row per lane: block b's 4 quant vectors split into the 8
// steps (low nibbles: elements 4k…, high: 16+4k…) without the transposes below.
// IQ4_NL's levels are its table's values; Q4_1's mins go to the B area as floats.
template <TensorType kType>
NIBBLE_INT_ATTR HWY_INLINE void BuildPanelFromRows16(const uint8_t* strip, int64_t nb,
                                                     uint8_t* panel) {
  using Fmt = Rows16NibbleFormat<kType>;
  const __m512i u128 = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i low4 = _mm512_set1_epi8(0x0F), offset = _mm512_set1_epi8(Fmt::kOffset);
  const __m512i table =
      _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues)));
  const auto level = [&](__m512i idx) HWY_ATTR {
    if constexpr (Fmt::kTable) return _mm512_shuffle_epi8(table, idx);
    return Fmt::kOffset == 0 ? idx : _mm512_sub_epi8(idx, offset);
  };
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* pair = strip + (b / 2) * Fmt::kPairBytes;
    const uint8_t* quants = pair + (b % 2) * 256;
    uint8_t* out = panel + b * kPanelBlockBytes;
    __m512i* W = reinterpret_cast<__m512i*>(out);
    __m512i sum = _mm512_setzero_si512();
    for (int k = 0; k < 4; ++k) {
      const __m512i v = _mm512_load_si512(quants + 64 * k);
      const __m512i lo = level(_mm512_and_si512(v, low4));
      const __m512i hi = level(_mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
      _mm512_store_si512(W + k, lo);
      _mm512_store_si512(W + 4 + k, hi);
      sum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(sum, u128, lo), u128, hi);
    }
    _mm512_store_si512(out + 8 * 64, _mm512_sub_epi32(_mm512_setzero_si512(), sum));
    const auto halves = [&](int64_t at) HWY_ATTR {
      return _mm512_cvtph_ps(
          _mm256_load_si256(reinterpret_cast<const __m256i*>(pair + at + 32 * (b % 2))));
    };
    const __m512 scale = halves(Fmt::kScalesAt);
    _mm512_store_ps(reinterpret_cast<float*>(out + 10 * 64), scale);
    _mm512_store_ps(reinterpret_cast<float*>(out + 11 * 64), scale);
    if constexpr (Fmt::kMin) {
      const __m512 min = halves(Fmt::kMinsAt);
      _mm512_store_ps(reinterpret_cast<float*>(out + 12 * 64), min);
      _mm512_store_ps(reinterpret_cast<float*>(out + 13 * 64), min);
    }
  }
}

// Q8_0 (kLayoutRows16, repack.h): block b's 8 quant vectors are its 8 steps already.
NIBBLE_INT_ATTR HWY_INLINE void BuildPanelFromRows16Q8_0(const uint8_t* strip, int64_t nb,
                                                         uint8_t* panel) {
  const __m512i u128 = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* pair = strip + (b / 2) * detail::kRows16Q8_0PairBytes;
    const uint8_t* quants = pair + (b % 2) * 512;
    uint8_t* out = panel + b * kPanelBlockBytes;
    __m512i* W = reinterpret_cast<__m512i*>(out);
    __m512i sum = _mm512_setzero_si512();
    for (int k = 0; k < 8; ++k) {
      const __m512i v = _mm512_load_si512(quants + 64 * k);
      _mm512_store_si512(W + k, v);
      sum = _mm512_dpbusd_epi32(sum, u128, v);
    }
    _mm512_store_si512(out + 8 * 64, _mm512_sub_epi32(_mm512_setzero_si512(), sum));
    const __m512 scale = _mm512_cvtph_ps(_mm256_load_si256(
        reinterpret_cast<const __m256i*>(pair + detail::kRows16Q8_0ScalesAt + 32 * (b % 2))));
    _mm512_store_ps(reinterpret_cast<float*>(out + 10 * 64), scale);
    _mm512_store_ps(reinterpret_cast<float*>(out + 11 * 64), scale);
  }
}

// Q6_K (kLayoutRows16, repack.h): block b is dwords j = 8(b % 2) … + 7 of element group
// g = b % 8 / 2 (elements 64g + 4j…): the low (g < 2) or high nibbles of quant vector
// 16(g % 2) + j, bit pair g of high-bit vector j; its halves are sub-blocks 2(b % 8) and + 1.
NIBBLE_INT_ATTR HWY_INLINE void BuildPanelFromRows16Q6_K(const uint8_t* strip, int64_t nb,
                                                         uint8_t* panel) {
  const __m512i u128 = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i low4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
  const __m512i offset = _mm512_set1_epi8(32);
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t s = b / 8;
    const int bl = static_cast<int>(b % 8), g = bl / 2;
    const uint8_t* quants = strip + detail::rows16_q6_k_quants_at(s);
    const uint8_t* meta = strip + detail::rows16_q6_k_scales_at(s);
    uint8_t* out = panel + b * kPanelBlockBytes;
    __m512i* W = reinterpret_cast<__m512i*>(out);
    __m512i sum[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int step = 0; step < 8; ++step) {
      const int j = 8 * (bl % 2) + step;
      const __m512i v = _mm512_load_si512(quants + detail::rows16_q6_k_low_at(16 * (g % 2) + j));
      const __m512i h = _mm512_load_si512(quants + detail::rows16_q6_k_high_at(j));
      const __m512i nibble = _mm512_and_si512(g < 2 ? v : _mm512_srli_epi16(v, 4), low4);
      const __m512i pair = g == 0   ? _mm512_slli_epi16(h, 4)
                           : g == 1 ? _mm512_slli_epi16(h, 2)
                           : g == 2 ? h
                                    : _mm512_srli_epi16(h, 2);
      const __m512i level =
          _mm512_sub_epi8(_mm512_or_si512(nibble, _mm512_and_si512(pair, bits45)), offset);
      _mm512_store_si512(W + step, level);
      sum[step / 4] = _mm512_dpbusd_epi32(sum[step / 4], u128, level);
    }
    _mm512_store_si512(out + 8 * 64, _mm512_sub_epi32(_mm512_setzero_si512(), sum[0]));
    _mm512_store_si512(out + 9 * 64, _mm512_sub_epi32(_mm512_setzero_si512(), sum[1]));
    const __m512 d =
        _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(meta + 256)));
    for (int i = 0; i < 2; ++i) {
      const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
          _mm_load_si128(reinterpret_cast<const __m128i*>(meta + 16 * (2 * bl + i)))));
      _mm512_store_ps(reinterpret_cast<float*>(out + (10 + i) * 64), _mm512_mul_ps(d, sc));
    }
  }
}

// The B area of kIntMinFormat for panel block b at `out` (blocks are built in order): the 16 rows'
// integer min levels paired with the odd block's (even block's area: level | odd level << 16),
// and in block 1 of each super-block the rows' −step.
NIBBLE_INT_ATTR HWY_INLINE void StoreIntMins(uint8_t* out, int64_t b, __m512i level,
                                             __m512 minus_step) {
  if (b % 2 == 0) {
    _mm512_store_si512(out + 12 * 64, level);
  } else {
    uint8_t* pair = out - kPanelBlockBytes + 12 * 64;  // the even block's
    _mm512_store_si512(pair,
                       _mm512_or_si512(_mm512_load_si512(pair), _mm512_slli_epi32(level, 16)));
  }
  if (b % 8 == 1) _mm512_store_ps(reinterpret_cast<float*>(out + 12 * 64), minus_step);
}

// Q4_K and Q5_K (kLayoutRows16, repack.h): block b is sub-block b % 8 of super-block b / 8, its
// quants a Q4_0 block's (Q5_K: + 16 under the fifth-bit masks); scale d·sc, and the min as the B
// area of kIntMinFormat (kIntMins) or as floats.
template <bool kFive, bool kIntMins>
NIBBLE_INT_ATTR HWY_INLINE void BuildPanelFromRows16Q45_K(const uint8_t* strip, int64_t nb,
                                                          uint8_t* panel) {
  const __m512i u128 = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  [[maybe_unused]] const __m512i sixteen = _mm512_set1_epi8(16);
  for (int64_t b = 0; b < nb; ++b) {
    const int k = static_cast<int>(b % 8);
    const uint8_t* meta = strip + (b / 8) * detail::rows16_k45_super_bytes(kFive);
    const uint8_t* quants = meta + detail::rows16_k45_sub_at(kFive, k);
    uint8_t* out = panel + b * kPanelBlockBytes;
    __m512i* W = reinterpret_cast<__m512i*>(out);
    __m512i sum = _mm512_setzero_si512();
    for (int i = 0; i < 4; ++i) {
      const __m512i v = _mm512_load_si512(quants + 64 * i);
      __m512i lo = _mm512_and_si512(v, low4);
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
      if constexpr (kFive) {  // + 16 where the fifth bit is set (repack.h)
        lo = _mm512_mask_add_epi8(lo, _cvtu64_mask64(detail::load_u64(quants + 256 + 16 * i)), lo,
                                  sixteen);
        hi = _mm512_mask_add_epi8(hi, _cvtu64_mask64(detail::load_u64(quants + 264 + 16 * i)), hi,
                                  sixteen);
      }
      _mm512_store_si512(W + i, lo);
      _mm512_store_si512(W + 4 + i, hi);
      sum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(sum, u128, lo), u128, hi);
    }
    _mm512_store_si512(out + 8 * 64, _mm512_sub_epi32(_mm512_setzero_si512(), sum));
    const Rows16K4Scales six(meta);
    const __m512 d =
        _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(meta + 192)));
    const __m512 dmin =
        _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(meta + 224)));
    const __m512 scale = _mm512_mul_ps(d, _mm512_cvtepi32_ps(six.Scale(k)));
    _mm512_store_ps(reinterpret_cast<float*>(out + 10 * 64), scale);
    _mm512_store_ps(reinterpret_cast<float*>(out + 11 * 64), scale);
    const __m512i level = six.Min(k);
    if constexpr (kIntMins) {
      StoreIntMins(out, b, level, _mm512_sub_ps(_mm512_setzero_ps(), dmin));
    } else {
      const __m512 bias =
          _mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(level)));
      _mm512_store_ps(reinterpret_cast<float*>(out + 12 * 64), bias);
      _mm512_store_ps(reinterpret_cast<float*>(out + 13 * 64), bias);
    }
  }
}

template <class Rows>
constexpr bool kRows16Source = false;
template <class Dec>
constexpr bool kRows16Source<Rows16PanelRows<Dec>> = true;

// Decodes 16 rows × all blocks into `panel`. Transposing 16 rows of 8 dwords: pair rows g, 4+g
// and 8+g, 12+g into two 512-bit vectors, take their low / high 128-bit quarters (dwords 0..3
// and 4..7 of rows g, 4+g, 8+g, 12+g, one row per 128-bit lane), then a 4 × 4 dword transpose
// inside each 128-bit lane over g = 0..3 leaves dword j of row 4L+g in lane 4L+g of vector j.
template <class Rows, bool kIntMins>
NIBBLE_INT_ATTR HWY_INLINE void BuildPanelFromDecoder(const Rows& rows, int64_t nb,
                                                      uint8_t* panel) {
  using Dec = typename Rows::Decoder;
  const __m512i u128 = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t b = 0; b < nb; ++b) {
    rows.Prefetch(b + kBuildPrefetchBlocks, nb);
    uint8_t* out = panel + b * kPanelBlockBytes;
    int32_t* C = reinterpret_cast<int32_t*>(out + 8 * 64);
    __m256i v[kPanelRows];
    alignas(64) int32_t min_level[kPanelRows];
    alignas(64) float min_step[kPanelRows];
    DecodePanelBlock<Rows, kIntMins>(rows, b, v, reinterpret_cast<float*>(out + 10 * 64), min_level,
                                     min_step);
    if constexpr (kIntMins)
      StoreIntMins(out, b, _mm512_load_si512(min_level), _mm512_load_ps(min_step));
    __m512i E[4], F[4];
    for (int g = 0; g < 4; ++g) {
      const __m512i X = _mm512_inserti64x4(_mm512_castsi256_si512(v[g]), v[4 + g], 1);
      const __m512i Y = _mm512_inserti64x4(_mm512_castsi256_si512(v[8 + g]), v[12 + g], 1);
      E[g] = _mm512_shuffle_i32x4(X, Y, _MM_SHUFFLE(2, 0, 2, 0));
      F[g] = _mm512_shuffle_i32x4(X, Y, _MM_SHUFFLE(3, 1, 3, 1));
    }
    const __m512i* halves[2] = {E, F};
    __m512i sum[2];
    for (int h = 0; h < 2; ++h) {
      const __m512i* Q = halves[h];
      const __m512i t0 = _mm512_unpacklo_epi32(Q[0], Q[1]), t1 = _mm512_unpackhi_epi32(Q[0], Q[1]);
      const __m512i t2 = _mm512_unpacklo_epi32(Q[2], Q[3]), t3 = _mm512_unpackhi_epi32(Q[2], Q[3]);
      const __m512i w[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2),
                            _mm512_unpacklo_epi64(t1, t3), _mm512_unpackhi_epi64(t1, t3)};
      __m512i* W = reinterpret_cast<__m512i*>(out) + 4 * h;
      sum[h] = _mm512_setzero_si512();
      for (int j = 0; j < 4; ++j) {
        _mm512_store_si512(W + j, w[j]);
        sum[h] = _mm512_dpbusd_epi32(sum[h], u128, w[j]);  // 128·Σ of the 16 levels, per row
      }
    }
    const __m512i zero = _mm512_setzero_si512();
    if constexpr (Dec::kHalves) {
      _mm512_store_si512(C, _mm512_sub_epi32(zero, sum[0]));
      _mm512_store_si512(C + kPanelRows, _mm512_sub_epi32(zero, sum[1]));
    } else {
      _mm512_store_si512(C, _mm512_sub_epi32(zero, _mm512_add_epi32(sum[0], sum[1])));
    }
  }
}

// A panel from its rows' source: kLayoutRows16 strips directly, every other source by its decoder.
template <class Rows, bool kIntMins>
NIBBLE_INT_ATTR HWY_INLINE void BuildPanel(const Rows& rows, int64_t nb, uint8_t* panel) {
  if constexpr (kRows16Source<Rows>) {
    using Dec = typename Rows::Decoder;
    if constexpr (std::is_same_v<Dec, DecodeRows16Q6_K>) {
      BuildPanelFromRows16Q6_K(rows.strip, nb, panel);
    } else if constexpr (std::is_same_v<Dec, DecodeRows16Q4_K>) {
      BuildPanelFromRows16Q45_K<false, kIntMins>(rows.strip, nb, panel);
    } else if constexpr (std::is_same_v<Dec, DecodeRows16Q5_K>) {
      BuildPanelFromRows16Q45_K<true, kIntMins>(rows.strip, nb, panel);
    } else if constexpr (std::is_same_v<Dec, DecodeRows16Q8_0>) {
      BuildPanelFromRows16Q8_0(rows.strip, nb, panel);
    } else {
      BuildPanelFromRows16<Dec::kType>(rows.strip, nb, panel);
    }
  } else {
    BuildPanelFromDecoder<Rows, kIntMins>(rows, nb, panel);
  }
}

// ---------------------------------------------------------------------------------------------
// Activation quantisation straight into the panel copy, 16 rows at a time. QuantizeBlocks works
// one row's block at a time, and its per-block horizontal reductions (the largest |x| for the
// scale, the sums of the two halves) and scalar factor stores cost more than the rounding
// itself (~72 cycles per block). Here the reductions of 16 rows go through one transpose-and-
// reduce tree (ReduceRows: lane r = row r), the scales and factors are computed as vectors with
// a lane per row and stored contiguously, as the block-major copy lays them out. Bit-identical
// to QuantizeBlocks + store_panel_block (same operations per element; the sums are of integers,
// exact in float in any order). The row-major arrays (q, d, sum, …) are not written: on this
// target every int8 matmul of M ≥ kPanelMinM rows reads the panel copy only.

// Lane r of the result: the max (kMax) or sum of the 16 lanes of v[r]. Four levels, each halving
// the lanes per row while pairing rows into one vector; the last permute restores row order.
template <bool kMax>
NIBBLE_INT_ATTR HWY_INLINE __m512 ReduceRows(const __m512* v) {
  const auto op = [](__m512 a, __m512 b)
                      HWY_ATTR { return kMax ? _mm512_max_ps(a, b) : _mm512_add_ps(a, b); };
  __m512 w[8], y[4], t[2];
  for (int k = 0; k < 8; ++k) {  // chunks: rows 2k, 2k, 2k+1, 2k+1
    w[k] = op(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
              _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  }
  for (int j = 0; j < 4; ++j) {  // chunk c: row 4j + c
    y[j] = op(_mm512_shuffle_f32x4(w[2 * j], w[2 * j + 1], _MM_SHUFFLE(2, 0, 2, 0)),
              _mm512_shuffle_f32x4(w[2 * j], w[2 * j + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  }
  for (int i = 0; i < 2; ++i) {  // chunk c: rows c, c, 4 + c, 4 + c (+ 8i)
    t[i] = op(_mm512_shuffle_ps(y[2 * i], y[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
              _mm512_shuffle_ps(y[2 * i], y[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // Lane 4c + j holds row 4j + c.
  const __m512 f = op(_mm512_shuffle_ps(t[0], t[1], _MM_SHUFFLE(2, 0, 2, 0)),
                      _mm512_shuffle_ps(t[0], t[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512i rows = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(rows, f);
}

NIBBLE_INT_ATTR HWY_INLINE __m512 RoundToF16(__m512 v) {
  return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// Blocks ahead of the one being rounded that QuantizePanelRows prefetches X and its own output
// into L1: a tile's 16 rows are 16 streams a row apart (8–22 KB), each a page or less per tile,
// and its output block 32·M bytes after the last, which the hardware prefetchers did not follow
// — the first touch of X and the stores' read-for-ownership held most of its time.
constexpr int64_t kQuantizePrefetchBlocks = 8;

// Rows [m0, m1) (at most 16) × blocks [blk0, blk1) of X (M × K floats) into qx's panel copy.
// blk0 starts an activation group and blk1 ends one (or K).
NIBBLE_INT_ATTR HWY_INLINE void QuantizePanelRows(const float* X, int64_t m0, int64_t m1,
                                                  int64_t blk0, int64_t blk1, QuantizedInput& qx) {
  const int64_t M = qx.M, K = qx.K;
  const int R = static_cast<int>(m1 - m0);
  const int64_t group = qx.group_blocks, nb = K / 32;
  const bool fixed = qx.static_step > 0.0f;
  const __mmask16 valid = static_cast<__mmask16>((1u << R) - 1);
  const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0x80000000u)));
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  const __m512i u128 = _mm512_set1_epi32(128);
  const __m512i pair_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i pair_hi =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  alignas(64) float id[16];
  __m512 d = _mm512_set1_ps(qx.static_step), d16 = d;
  __m512i even_sum = _mm512_setzero_si512();  // block 2j's Σq, until block 2j + 1 pairs with it
  for (int64_t g0 = blk0; g0 < blk1; g0 += group) {
    if (!fixed) {
      __m512 mx[16];
      for (int r = 0; r < 16; ++r) {
        // Assigned once per row, not zeroed first: GCC turned a zeroing loop into a 1 KB
        // `rep stos` per group.
        __m512 m = _mm512_setzero_ps();
        if (r < R) {
          const float* x = X + (m0 + r) * K + 32 * g0;
          for (int64_t i = 0; i < 32 * group; i += 16)
            m = _mm512_max_ps(m, _mm512_and_ps(_mm512_loadu_ps(x + i), abs_mask));
        }
        mx[r] = m;
      }
      // detail::activation_scale: amax / 127, floored at 1e-30 when shared by a group.
      d = _mm512_div_ps(ReduceRows<true>(mx), _mm512_set1_ps(127.0f));
      d16 = group == 1 ? RoundToF16(d) : _mm512_max_ps(d, _mm512_set1_ps(1e-30f));
      if (group != 1) d = d16;
    }
    const __mmask16 nonzero = _mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_NEQ_OQ);
    _mm512_store_ps(id, _mm512_maskz_div_ps(nonzero, one, d));
    for (int64_t b = g0; b < std::min(blk1, g0 + group); ++b) {
      __m512 s0[16], s1[16];  // per row: the rounded levels of each half, summed lane-wise
      uint8_t* out = qx.panel_q.data() + 32 * (b * M + m0);
      if (b + kQuantizePrefetchBlocks < nb) {
        for (int r = 0; r < R; ++r) {
          const float* ahead = X + (m0 + r) * K + 32 * (b + kQuantizePrefetchBlocks);
          _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(ahead + 16), _MM_HINT_T0);
        }
        const uint8_t* out_ahead =
            qx.panel_q.data() + 32 * ((b + kQuantizePrefetchBlocks) * M + m0);
        for (int l = 0; l < (R * 32 + 63) / 64; ++l)
          _mm_prefetch(reinterpret_cast<const char*>(out_ahead + 64 * l), _MM_HINT_T0);
      }
      for (int r = 0; r < 16; ++r) {
        if (r >= R) {
          s0[r] = s1[r] = _mm512_setzero_ps();
          continue;
        }
        const float* x = X + (m0 + r) * K + 32 * b;
        const __m512 vid = _mm512_set1_ps(id[r]);
        __m512i qi[2];
        for (int h = 0; h < 2; ++h) {
          // Half away from zero like roundf: trunc, then step away when the fraction is ≥ ½.
          const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + 16 * h), vid);
          const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
          const __mmask16 away =
              _mm512_cmp_ps_mask(_mm512_and_ps(_mm512_sub_ps(v, t), abs_mask), half, _CMP_GE_OQ);
          const __m512 step = _mm512_or_ps(_mm512_and_ps(v, sign), one);
          const __m512 q =
              _mm512_min_ps(_mm512_max_ps(_mm512_mask_add_ps(t, away, t, step), lo), hi);
          (h == 0 ? s0[r] : s1[r]) = q;
          qi[h] = _mm512_add_epi32(_mm512_cvttps_epi32(q), u128);  // the unsigned operand: q + 128
        }
        const __m256i packed =
            _mm256_set_m128i(_mm512_cvtepi32_epi8(qi[1]), _mm512_cvtepi32_epi8(qi[0]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * r), packed);
      }
      const __m512 h0 = ReduceRows<false>(s0), h1 = ReduceRows<false>(s1),
                   sum = _mm512_add_ps(h0, h1);
      const int64_t dst = b * M + m0;
      _mm512_mask_storeu_ps(qx.panel_d.data() + dst, valid, d16);
      _mm512_mask_storeu_ps(qx.panel_dsum.data() + dst, valid, _mm512_mul_ps(d16, sum));
      _mm512_mask_storeu_ps(qx.panel_dsum_q8_1.data() + dst, valid,
                            RoundToF16(_mm512_mul_ps(d, sum)));
      const __m512 e0 = _mm512_mul_ps(d16, h0), e1 = _mm512_mul_ps(d16, h1);
      float* d16out = qx.panel_dsum16.data() + 2 * dst;
      const __mmask16 first = static_cast<__mmask16>(R >= 8 ? 0xFFFFu : (1u << (2 * R)) - 1);
      const __mmask16 second = static_cast<__mmask16>(R <= 8 ? 0u : (1u << (2 * (R - 8))) - 1);
      _mm512_mask_storeu_ps(d16out, first, _mm512_permutex2var_ps(e0, pair_lo, e1));
      _mm512_mask_storeu_ps(d16out + 16, second, _mm512_permutex2var_ps(e0, pair_hi, e1));
      const __m512i isum = _mm512_cvttps_epi32(sum);
      if (b % 2 == 0) even_sum = _mm512_and_si512(isum, _mm512_set1_epi32(0xFFFF));
      if (b % 2 == 1 || b + 1 == K / 32) {
        const __m512i pair =
            b % 2 == 1 ? _mm512_or_si512(even_sum, _mm512_slli_epi32(isum, 16)) : even_sum;
        _mm512_mask_storeu_epi32(qx.panel_sum_pairs.data() + (b / 2) * M + m0, valid, pair);
      }
    }
  }
}

NIBBLE_INT_ATTR HWY_INLINE __m512i Broadcast4(const uint8_t* p) {
  return _mm512_set1_epi32(static_cast<int>(detail::load_u32(p)));
}
// Prefill activations come with one scale per 256 (QuantizedInput::group_blocks = 8, see
// activation_group_blocks: as llama.cpp pairs the K-quants with q8_K, and here the sub-8-bit
// 32-block formats too where K allows). The tile then (kGrouped) sums each block's scaled
// product into a per-super-block t without d_a and applies d_a once per 8 blocks: the multiply
// by d_a per block, one of the 3–4 float operations that share the vpdpbusd pipes per 8
// vpdpbusd, goes — for NP·MA more registers, so fewer rows per tile. For the 32-block formats
// that is 1.06–1.11× (bench_matmul M = 512, Zen 5: Q4_0, Q4_1, IQ4_NL; docs/design.md has the
// perplexity it costs).
// Of the K-quants, Q4_K and Q5_K have a 6-bit integer min per 32-block and one step per
// super-block: their tile sums Σ_j min_j·Σq_j in int32 by vpdpwssd (4 per super-block, pairs of
// blocks) and applies the step once, instead of one min FMA per block. On Zen 5 vpdpbusd shares its
// two pipes with the float multiplies and FMAs (conversions and adds go elsewhere), so the 8 FMAs
// per super-block become 4 vpdpwssd and 1 FMA. The panel's B area then holds, per super-block:
// in blocks 0, 2, 4, 6 the pairs (int32 lanes: min of block 2j | min of block 2j+1 << 16), in
// block 1 the row's −step as floats. Only with grouped activations (QuantizedInput::
// panel_sum_pairs has the matching pairs of Σq).
template <class Dec>
constexpr bool kIntMinFormat =
    std::is_same_v<Dec, DecodeQ4_K> || std::is_same_v<Dec, DecodePackedQ4_K> ||
    std::is_same_v<Dec, DecodeRows16Q4_K> || std::is_same_v<Dec, DecodeRows16Q5_K> ||
    std::is_same_v<Dec, DecodeQ5_K> || std::is_same_v<Dec, DecodePackedQ5_K>;

// NP panels (16·NP rows) × MA activation rows from m: y[(m+i)·ldy + n + 16p + lane] for the
// `valid[p]` leading lanes of panel p.
template <int NP, int MA, class Dec, bool kGrouped, bool kIntMins = false>
NIBBLE_INT_ATTR HWY_INLINE void PanelTile(const uint8_t* const* panels, const QuantizedInput& qx,
                                          int64_t m, int64_t b0, int64_t b1, const PanelOut& y,
                                          const __mmask16* valid) {
  constexpr bool kHalves = Dec::kHalves;
  static_assert(!kIntMins || kGrouped, "integer mins need one activation scale per super-block");
  constexpr bool kMin = Dec::kBias && Dec::kOffset == 0 && !kIntMins;
  constexpr int64_t kGroup = kGrouped ? 8 : 1;  // blocks per activation scale
  const int64_t M = qx.M;
  __m512 acc[NP][MA];
  for (int p = 0; p < NP; ++p) {
    for (int i = 0; i < MA; ++i) {
      acc[p][i] = b0 == 0
                      ? _mm512_setzero_ps()
                      : _mm512_maskz_loadu_ps(valid[p], y.in + (m + i) * y.ld_in + kPanelRows * p);
    }
  }
  // Block-major activations: block b of row m + i at index b·M + m + i.
  const uint8_t* qa = qx.panel_q.data() + (b0 * M + m) * 32;
  const float* mins = kHalves ? qx.panel_dsum16.data() + 2 * (b0 * M + m)
                              : (Dec::kQ8_1Min ? qx.panel_dsum_q8_1.data() : qx.panel_dsum.data()) + b0 * M + m;
  for (int64_t s = b0; s < b1; s += kGroup) {
    [[maybe_unused]] __m512 t[NP][MA];
    if constexpr (kGrouped) {
      for (int p = 0; p < NP; ++p) {
        for (int i = 0; i < MA; ++i) t[p][i] = _mm512_setzero_ps();
      }
    }
    for (int64_t b = s; b < s + kGroup; ++b, qa += 32 * M, mins += kHalves ? 2 * M : M) {
      const float* da = qx.panel_d.data() + b * M + m;
      const __m512i* W[NP];
      const uint8_t* P[NP];
      for (int p = 0; p < NP; ++p) {
        P[p] = panels[p] + b * kPanelBlockBytes;
        W[p] = reinterpret_cast<const __m512i*>(P[p]);
      }
      // One pass per scale group: the whole block, or each 16-element half.
      constexpr int kGroups = kHalves ? 2 : 1;
      constexpr int kSteps = 8 / kGroups;
      // Unrolled by force: GCC left the halves' steps as a loop that rotated the 12 int32
      // accumulators through register copies every step (Q6_K at half of Q4_0's GOP/s).
#pragma GCC unroll 2
      for (int h = 0; h < kGroups; ++h) {
        __m512i dot[NP][MA];
        for (int p = 0; p < NP; ++p) {
          const __m512i c = _mm512_load_si512(P[p] + 8 * 64 + 64 * h);
          for (int i = 0; i < MA; ++i) dot[p][i] = c;
        }
#pragma GCC unroll 8
        for (int j = kSteps * h; j < kSteps * (h + 1); ++j) {
          __m512i a[MA];
          for (int i = 0; i < MA; ++i) a[i] = Broadcast4(qa + 32 * i + 4 * j);
          for (int p = 0; p < NP; ++p) {
            const __m512i w = _mm512_load_si512(W[p] + j);
            for (int i = 0; i < MA; ++i) dot[p][i] = _mm512_dpbusd_epi32(dot[p][i], a[i], w);
          }
        }
        for (int p = 0; p < NP; ++p) {
          const __m512 scale = _mm512_load_ps(reinterpret_cast<const float*>(P[p] + 10 * 64 + 64 * h));
          for (int i = 0; i < MA; ++i) {
            if constexpr (kGrouped) {
              t[p][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[p][i]), scale, t[p][i]);
            } else {
              const __m512 x = _mm512_mul_ps(_mm512_cvtepi32_ps(dot[p][i]), _mm512_set1_ps(da[i]));
              acc[p][i] = _mm512_fmadd_ps(x, scale, acc[p][i]);
            }
            if constexpr (kMin) {  // the mins multiply d_a·Σq: straight into acc either way
              const __m512 bias = _mm512_load_ps(reinterpret_cast<const float*>(P[p] + 12 * 64 + 64 * h));
              acc[p][i] = _mm512_fmadd_ps(bias, _mm512_set1_ps(kHalves ? mins[2 * i + h] : mins[i]), acc[p][i]);
            }
          }
        }
      }
    }
    if constexpr (kIntMins) {
      // Pairs outer, so that each broadcast serves every panel (NP·MA int32 sums live, as the
      // block's dot products were).
      const int32_t* sums = qx.panel_sum_pairs.data() + (s / 2) * M + m;
      __m512i mins_dot[NP][MA];
      for (int p = 0; p < NP; ++p) {
        for (int i = 0; i < MA; ++i) mins_dot[p][i] = _mm512_setzero_si512();
      }
      for (int j = 0; j < 4; ++j) {
        __m512i a[MA];
        for (int i = 0; i < MA; ++i) a[i] = _mm512_set1_epi32(sums[j * M + i]);
        for (int p = 0; p < NP; ++p) {
          const __m512i pair =
              _mm512_load_si512(panels[p] + (s + 2 * j) * kPanelBlockBytes + 12 * 64);
          for (int i = 0; i < MA; ++i)
            mins_dot[p][i] = _mm512_dpwssd_epi32(mins_dot[p][i], a[i], pair);
        }
      }
      for (int p = 0; p < NP; ++p) {
        const __m512 minus_step = _mm512_load_ps(panels[p] + (s + 1) * kPanelBlockBytes + 12 * 64);
        for (int i = 0; i < MA; ++i)
          t[p][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(mins_dot[p][i]), minus_step, t[p][i]);
      }
    }
    if constexpr (kGrouped) {
      const float* da = qx.panel_d.data() + s * M + m;
      for (int i = 0; i < MA; ++i) {
        const __m512 d = _mm512_set1_ps(da[i]);
        for (int p = 0; p < NP; ++p) acc[p][i] = _mm512_fmadd_ps(t[p][i], d, acc[p][i]);
      }
    }
  }
  for (int i = 0; i < MA; ++i) {
    for (int p = 0; p < NP; ++p)
      _mm512_mask_storeu_ps(y.out + (m + i) * y.ld_out + kPanelRows * p, valid[p], acc[p][i]);
  }
}

// Activation rows per tile for NP panels: as many as keep the NP·MA float and NP·MA int32
// accumulators, one weight vector and MA broadcasts within the 32 registers. Formats that scale
// 16-element halves (kHalves: Q6_K, Q2_K; Q3_K was one before DecodeQ3_KPanel) keep a second scale
// vector live and spilled accumulators to the stack every block at 6 rows (perf annotate); 5 rows
// measured 1.6× faster for Q6_K and 1.15× for Q3_K/Q2_K (bench_matmul, M = 512). Formats with a min
// term did not gain from 5 rows (Q4_1 whole-model pp512 334–348 t/s at 6 rows, 300–310 at 5).
template <int NP, bool kHalves>
constexpr int kPanelTileRows = NP >= 4 ? 3 : NP == 3 ? 4 : (kHalves ? 5 : 6);

// Grouped tiles (activations with a scale per 256): NP·MA t registers more. (Keeping the sums in
// y instead, read and written once per super-block, freed those registers for 6 rows: the
// same speed, bench_matmul M = 512 Q4_K/Q5_K/Q6_K/Q3_K/IQ4_XS 0.97–1.04×.)
template <int NP>
constexpr int kGroupedTileRows = NP >= 2 ? 4 : 6;

// Runs Tiles::Run<MA> (MA = Tiles::kRows) over activation rows m = 0, MA, 2·MA, … and one tile of
// the M % MA rows left (Run<M % MA>): every tile function takes the same arguments.
template <class Tiles, int R>
NIBBLE_INT_ATTR HWY_INLINE void TailTile(int64_t rows, const uint8_t* const* panels,
                                         const QuantizedInput& qx, int64_t m, int64_t b0,
                                         int64_t b1, const PanelOut& y, const __mmask16* valid) {
  if constexpr (R > 0) {
    if (rows == R) return Tiles::template Run<R>(panels, qx, m, b0, b1, y, valid);
    TailTile<Tiles, R - 1>(rows, panels, qx, m, b0, b1, y, valid);
  }
}

// The output lines of rows [m0, m1) for writing, a tile ahead of the tile that stores them. In
// the last K slice the tiles store to y, whose rows are N floats apart: each row's first store
// waited on its line's read-for-ownership (perf annotate: the stores after the tile loop,
// ~3–4 % of the Q4_0 and Q8_C GEMM's samples at N = 5632).
template <int NP>
NIBBLE_INT_ATTR HWY_INLINE void PrefetchOutRows(const PanelOut& y, int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m) {
    for (int p = 0; p < NP; ++p) __builtin_prefetch(y.out + m * y.ld_out + kPanelRows * p, 1, 3);
  }
}

template <class Tiles>
NIBBLE_INT_ATTR HWY_INLINE void RowTiles(const uint8_t* const* panels, const QuantizedInput& qx,
                                         int64_t M, int64_t b0, int64_t b1, const PanelOut& y,
                                         const __mmask16* valid) {
  constexpr int MA = Tiles::kRows;
  int64_t m = 0;
  for (; m + MA <= M; m += MA) {
    PrefetchOutRows<Tiles::kPanels>(y, m + MA, std::min(M, m + 2 * MA));
    Tiles::template Run<MA>(panels, qx, m, b0, b1, y, valid);
  }
  TailTile<Tiles, MA - 1>(M - m, panels, qx, m, b0, b1, y, valid);
}

template <int NP, class Dec, bool kGrouped, bool kIntMins = false>
struct ScaledTiles {
  static constexpr int kPanels = NP;
  static constexpr int kRows = kGrouped ? kGroupedTileRows<NP> : kPanelTileRows<NP, Dec::kHalves>;
  template <int MA>
  static NIBBLE_INT_ATTR HWY_INLINE void Run(const uint8_t* const* panels, const QuantizedInput& qx,
                                             int64_t m, int64_t b0, int64_t b1, const PanelOut& y,
                                             const __mmask16* valid) {
    PanelTile<NP, MA, Dec, kGrouped, kIntMins>(panels, qx, m, b0, b1, y, valid);
  }
};

// W8A8 (Q8_C weights, one scale per row, and activations quantised with one static step,
// QuantizedInput::static_step): neither scale changes along K, so a tile sums the integer
// products of a whole K slice and converts once per slice — the loop is vpdpbusd and loads only,
// none of the per-block float work that caps the other formats at 8/10 of the int8 peak. With no
// float accumulators live, up to 8 activation rows would fit (16 int32 accumulators); at 8 GCC
// still moved accumulators between registers every block and spilled one (perf annotate), and 6
// rows ran 1.03–1.06× faster (bench_matmul Q8_C_static M = 512, 1 thread, Zen 4; 7 the same as 6).
template <class Dec>
constexpr bool kRowScaleFormat = std::is_same_v<Dec, DecodeQ8_C>;
constexpr int kRowScaledTileRows = 6;
// Its K slices are twice the others': the loop reads only the 512 weight bytes of a panel block
// (not the scales), so 32 blocks of 2 panels still fit L1, and the tile's start and drain come
// half as often (bench_matmul Q8_C_static, M = 512: 0.70 → 0.75–0.80 of the int8 peak).
constexpr int64_t kRowScaledSliceBlocks = 32;
// Where the offset correction of a whole K slice (Σ of its blocks' C, −128·Σw) sits: the B area
// of the slice's first block, which Q8_C (no mins) leaves unused. SumSliceCorrections writes it
// once per panel; each tile summed its slice's C itself, 4.6 % of the samples of Q8_C_static's
// GEMM (K = 2048, perf annotate).
constexpr int64_t kSliceCorrAt = 12 * 64;

NIBBLE_INT_ATTR HWY_INLINE void SumSliceCorrections(uint8_t* panel, int64_t nb, int64_t slice) {
  for (int64_t b0 = 0; b0 < nb; b0 += slice) {
    __m512i corr = _mm512_setzero_si512();
    for (int64_t b = b0; b < std::min(nb, b0 + slice); ++b)
      corr = _mm512_add_epi32(corr, _mm512_load_si512(panel + b * kPanelBlockBytes + 8 * 64));
    _mm512_store_si512(panel + b0 * kPanelBlockBytes + kSliceCorrAt, corr);
  }
}

template <int NP, int MA>
NIBBLE_INT_ATTR HWY_INLINE void PanelTileRowScaled(const uint8_t* const* panels,
                                                   const QuantizedInput& qx, int64_t m, int64_t b0,
                                                   int64_t b1, const PanelOut& y,
                                                   const __mmask16* valid) {
  const int64_t M = qx.M;
  __m512i dot[NP][MA];
  for (int p = 0; p < NP; ++p) {
    const __m512i corr = _mm512_load_si512(panels[p] + b0 * kPanelBlockBytes + kSliceCorrAt);
    for (int i = 0; i < MA; ++i) dot[p][i] = corr;
  }
  const uint8_t* qa = qx.panel_q.data() + (b0 * M + m) * 32;
  for (int64_t b = b0; b < b1; ++b, qa += 32 * M) {
    const __m512i* W[NP];
    for (int p = 0; p < NP; ++p) {
      W[p] = reinterpret_cast<const __m512i*>(panels[p] + b * kPanelBlockBytes);
    }
    // Weights outer: NP weight vectors and one broadcast live instead of MA broadcasts and one
    // weight, fewer registers besides the accumulators.
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      __m512i w[NP];
      for (int p = 0; p < NP; ++p) w[p] = _mm512_load_si512(W[p] + j);
      for (int i = 0; i < MA; ++i) {
        const __m512i a = Broadcast4(qa + 32 * i + 4 * j);
        for (int p = 0; p < NP; ++p) dot[p][i] = _mm512_dpbusd_epi32(dot[p][i], a, w[p]);
      }
    }
  }
  // y += Σ·(row scale · step): every block holds the row's scale, every d the step.
  const __m512 step = _mm512_set1_ps(qx.static_step);
  for (int p = 0; p < NP; ++p) {
    const __m512 s =
        _mm512_mul_ps(_mm512_load_ps(reinterpret_cast<const float*>(panels[p] + 10 * 64)), step);
    for (int i = 0; i < MA; ++i) {
      const __m512 prev =
          b0 == 0 ? _mm512_setzero_ps()
                  : _mm512_maskz_loadu_ps(valid[p], y.in + (m + i) * y.ld_in + kPanelRows * p);
      _mm512_mask_storeu_ps(y.out + (m + i) * y.ld_out + kPanelRows * p, valid[p],
                            _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[p][i]), s, prev));
    }
  }
}

template <int NP>
struct RowScaledTiles {
  static constexpr int kPanels = NP;
  static constexpr int kRows = kRowScaledTileRows;
  template <int MA>
  static NIBBLE_INT_ATTR HWY_INLINE void Run(const uint8_t* const* panels, const QuantizedInput& qx,
                                             int64_t m, int64_t b0, int64_t b1, const PanelOut& y,
                                             const __mmask16* valid) {
    PanelTileRowScaled<NP, MA>(panels, qx, m, b0, b1, y, valid);
  }
};

template <class Dec>
NIBBLE_INT_ATTR HWY_INLINE bool RowScaled(const QuantizedInput& qx) {
  if constexpr (kRowScaleFormat<Dec>) return qx.static_step > 0.0f;
  return false;
}

// Whether the grouped tile runs (and, for kIntMinFormat, the panel carries integer mins): every
// format does when its activations have one scale per 256 (activation_group_blocks decides).
NIBBLE_INT_ATTR HWY_INLINE bool GroupedTile(const QuantizedInput& qx) {
  return qx.group_blocks == 8;
}

// One K slice [b0, b1) of NP panels for all M activation rows, by the tile the format and the
// activations' scales call for.
template <int NP, class Dec>
NIBBLE_INT_ATTR HWY_INLINE void PanelRows(const uint8_t* const* panels, const QuantizedInput& qx,
                                          int64_t M, int64_t b0, int64_t b1, const PanelOut& y,
                                          const __mmask16* valid) {
  if constexpr (kRowScaleFormat<Dec>) {
    if (RowScaled<Dec>(qx)) return RowTiles<RowScaledTiles<NP>>(panels, qx, M, b0, b1, y, valid);
  }
  if (GroupedTile(qx))
    return RowTiles<ScaledTiles<NP, Dec, true, kIntMinFormat<Dec>>>(panels, qx, M, b0, b1, y,
                                                                    valid);
  RowTiles<ScaledTiles<NP, Dec, false>>(panels, qx, M, b0, b1, y, valid);
}

// Output rows [n0, n1) for all M: kPanelGroup panels (16 rows each) at a time, fewer at the tail;
// for each group, K slice by slice, every activation tile passes over the slice. (Building 8
// panels first and passing each K slice of the activations over all 8, so that the slice stays
// in L2 instead of streaming all activations from L3 once per group, measured the same on Zen 5:
// bench_matmul M = 512, 4 alternated rounds, 0.98–1.03×.)
template <template <class> class RowsOf, class Dec>
NIBBLE_INT_ATTR void PanelRowRange(const MatmulArgs& args, int64_t n0, int64_t n1) {
  static_assert(kPanelSliceBlocks % 8 == 0 && kRowScaledSliceBlocks % 8 == 0,
                "grouped tiles need whole super-blocks per slice");
  const QuantizedInput& qx = *args.qx;
  const int64_t nb = args.K / 32;
  const int64_t slice = RowScaled<Dec>(qx) ? kRowScaledSliceBlocks : kPanelSliceBlocks;
  const uint64_t panel_bytes = static_cast<uint64_t>(nb * kPanelBlockBytes);
  thread_local std::vector<uint8_t> scratch;
  scratch.resize(kPanelGroup * panel_bytes + 64);
  const uintptr_t base = (reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t{63};
  const uint8_t* panel[kPanelGroup];
  for (int p = 0; p < kPanelGroup; ++p) panel[p] = reinterpret_cast<uint8_t*>(base) + p * panel_bytes;
  constexpr int64_t kGroupRows = kPanelGroup * kPanelRows;
  thread_local std::vector<float> partial;
  for (int64_t n = n0; n < n1; n += kGroupRows) {
    const int np = static_cast<int>(std::min<int64_t>(kPanelGroup, (n1 - n + kPanelRows - 1) / kPanelRows));
    __mmask16 valid[kPanelGroup];
    for (int p = 0; p < np; ++p) {
      const int64_t first = n + kPanelRows * p;
      if (kIntMinFormat<Dec> && GroupedTile(qx)) {
        BuildPanel<RowsOf<Dec>, kIntMinFormat<Dec>>(RowsOf<Dec>(args, first, n1), nb,
                                                    const_cast<uint8_t*>(panel[p]));
      } else {
        BuildPanel<RowsOf<Dec>, false>(RowsOf<Dec>(args, first, n1), nb,
                                       const_cast<uint8_t*>(panel[p]));
      }
      if (RowScaled<Dec>(qx)) SumSliceCorrections(const_cast<uint8_t*>(panel[p]), nb, slice);
      const int64_t rows = std::min<int64_t>(kPanelRows, n1 - first);
      valid[p] = static_cast<__mmask16>((1u << rows) - 1);
    }
    const PanelGroupPass pass =
        PanelGroupPass::Plan<RowsOf<Dec>>(args, n, n1, kGroupRows, slice, partial);
    const int64_t n_slices = (nb + slice - 1) / slice;
    for (int64_t b0 = 0; b0 < nb; b0 += slice) {
      const int64_t b1 = std::min(nb, b0 + slice);
      pass.ahead.PrefetchPart(b0 / slice, n_slices);
      static_assert(kPanelGroup == 2, "one tile shape per panel count below");
      if (np == 2) {
        PanelRows<2, Dec>(panel, qx, args.M, b0, b1, pass.Slice(b1, nb), valid);
      } else {
        PanelRows<1, Dec>(panel, qx, args.M, b0, b1, pass.Slice(b1, nb), valid);
      }
    }
  }
}
