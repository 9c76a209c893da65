// Prefill GEMM for the AVX2 target on CPUs with AVX-VNNI (included by dot-inl.h inside HWY_AVX2's
// namespace; no include guard, like every per-target file).
//
// The 256-bit form of gemm_panel-inl.h (read its header for the design): one ymm holds 8 weight
// ROWS, lane r accumulating row r, and a 32-block of K is 8 VEX vpdpbusd steps of 4 weight bytes
// per lane times 4 activation bytes broadcast to every lane. The 4-row AVX2 tiles spend a
// vpmaddubsw, a vpmaddwd, a conversion and FMAs per 32 products; here the float work comes once
// per 8 vpdpbusd (per 4 for formats that scale 16-element halves). Per 32-block b the panel holds
//   W   8 × 32 bytes   step j (elements 4j..4j+3): lane r = row r's 4 levels, SIGNED
//   C   2 × 8 int32    −128·Σ levels of each row's first / second half (whole block in the first
//                      where the format has one scale per block)
//   S   2 × 8 floats   scale of each half
//   B   2 × 8 floats   min of each half (formats with mins only)
// and the activations come from QuantizedInput's block-major panel copy (q + 128, unsigned), so
// starting the accumulator at C leaves exactly Σq·w.
//
// Highway 1.0.3 has no AVX-VNNI target, so every function here that executes vpdpbusd carries
// NIBBLE_VNNI_ATTR and is reached only through NIBBLE_TRY_PANEL, which checks that dispatch made
// AVX-VNNI active (Int8Extension::kAvxVnni, ISA name "AVX2_VNNI"); the rest of the AVX2 target
// keeps running on CPUs without it.
//
// Register blocking: 2 panels (16 rows) × 3 activation rows: 6 float and 6 int32 accumulators,
// the 3 broadcasts and one weight vector fill the 16 ymm registers (1 panel × 5 rows at N tails).
// Measured on Zen 5, 1 thread, K 2048 × N 5632 × M 512: 268 GOP/s (Q4_0 packed) against 210 for
// 1 panel × 5 rows everywhere — each broadcast feeds two vpdpbusd instead of one.

#define NIBBLE_VNNI_ATTR __attribute__((target("avxvnni")))

// Lanes of a panel and bytes of one 32-block in it.
constexpr int kPanelRows = 8;
constexpr int64_t kPanelBlockBytes = 8 * 32 + 6 * 32;
// Panels computed together (they share each activation broadcast).
constexpr int kPanelGroup = 2;
// Blocks of K per pass of the activation tiles over the panels: 2 · 16 · 448 bytes = 14 KiB of
// panel stay in L1 while every activation tile passes over them.
constexpr int64_t kPanelSliceBlocks = 16;

#include "kernels/gemm_panel_rows-inl.h"

// Decodes 8 rows × all blocks into `panel`: an 8 × 8 dword transpose per block (unpack pairs of
// rows to dword pairs, then to dword quads, then swap 128-bit halves between rows 0..3 and 4..7).
template <class Rows>
NIBBLE_VNNI_ATTR HWY_INLINE void BuildPanel(const Rows& rows, int64_t nb, uint8_t* panel) {
  using Dec = typename Rows::Decoder;
  const __m256i u128 = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t b = 0; b < nb; ++b) {
    rows.Prefetch(b + kBuildPrefetchBlocks, nb);
    uint8_t* out = panel + b * kPanelBlockBytes;
    int32_t* C = reinterpret_cast<int32_t*>(out + 8 * 32);
    __m256i v[kPanelRows];
    DecodePanelBlock(rows, b, v, reinterpret_cast<float*>(out + 10 * 32));
    // u[q][k]: dwords k and 4+k of rows 4q..4q+3 (one row per dword, low / high 128-bit lane).
    __m256i u[2][4];
    for (int q = 0; q < 2; ++q) {
      const __m256i* r = v + 4 * q;
      const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
      const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
      u[q][0] = _mm256_unpacklo_epi64(t0, t2);
      u[q][1] = _mm256_unpackhi_epi64(t0, t2);
      u[q][2] = _mm256_unpacklo_epi64(t1, t3);
      u[q][3] = _mm256_unpackhi_epi64(t1, t3);
    }
    __m256i* W = reinterpret_cast<__m256i*>(out);
    __m256i sum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int k = 0; k < 4; ++k) {
      const __m256i lo = _mm256_permute2x128_si256(u[0][k], u[1][k], 0x20);  // dword k of rows 0..7
      const __m256i hi = _mm256_permute2x128_si256(u[0][k], u[1][k], 0x31);  // dword 4+k
      _mm256_store_si256(W + k, lo);
      _mm256_store_si256(W + 4 + k, hi);
      sum[0] = _mm256_dpbusd_avx_epi32(sum[0], u128, lo);  // 128·Σ of the 16 levels, per row
      sum[1] = _mm256_dpbusd_avx_epi32(sum[1], u128, hi);
    }
    const __m256i zero = _mm256_setzero_si256();
    if constexpr (Dec::kHalves) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(C), _mm256_sub_epi32(zero, sum[0]));
      _mm256_store_si256(reinterpret_cast<__m256i*>(C + kPanelRows), _mm256_sub_epi32(zero, sum[1]));
    } else {
      _mm256_store_si256(reinterpret_cast<__m256i*>(C), _mm256_sub_epi32(zero, _mm256_add_epi32(sum[0], sum[1])));
    }
  }
}

// Lane mask of the first `rows` lanes, for the partial panel at the end of a row range.
NIBBLE_VNNI_ATTR HWY_INLINE __m256i LeadingLanes(int rows) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(rows), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// NP panels (8·NP rows) × MA activation rows from m: y[(m+i)·ldy + n + 8p + lane] for the
// `rows[p]` leading lanes of panel p (masked loads and stores only for a partial panel).
template <int NP, int MA, class Dec>
NIBBLE_VNNI_ATTR HWY_INLINE void PanelTile(const uint8_t* const* panels, const QuantizedInput& qx,
                                           int64_t m, int64_t b0, int64_t b1, const PanelOut& y,
                                           const int* rows) {
  constexpr bool kHalves = Dec::kHalves;
  constexpr bool kMin = Dec::kBias && Dec::kOffset == 0;
  const int64_t M = qx.M;
  __m256 acc[NP][MA];
  for (int p = 0; p < NP; ++p) {
    for (int i = 0; i < MA; ++i) {
      const float* in = y.in + (m + i) * y.ld_in + kPanelRows * p;
      acc[p][i] = b0 == 0                 ? _mm256_setzero_ps()
                  : rows[p] == kPanelRows ? _mm256_loadu_ps(in)
                                          : _mm256_maskload_ps(in, LeadingLanes(rows[p]));
    }
  }
  // Block-major activations: block b of row m + i at index b·M + m + i.
  const uint8_t* qa = qx.panel_q.data() + (b0 * M + m) * 32;
  const float* da = qx.panel_d.data() + b0 * M + m;
  const float* mins = kHalves ? qx.panel_dsum16.data() + 2 * (b0 * M + m)
                              : (Dec::kQ8_1Min ? qx.panel_dsum_q8_1.data() : qx.panel_dsum.data()) + b0 * M + m;
  for (int64_t b = b0; b < b1; ++b, qa += 32 * M, da += M, mins += kHalves ? 2 * M : M) {
    const uint8_t* P[NP];
    for (int p = 0; p < NP; ++p) P[p] = panels[p] + b * kPanelBlockBytes;
    // One pass per scale group: the whole block, or each 16-element half.
    constexpr int kGroups = kHalves ? 2 : 1;
    constexpr int kSteps = 8 / kGroups;
    for (int h = 0; h < kGroups; ++h) {
      __m256i dot[NP][MA];
      for (int p = 0; p < NP; ++p) {
        const __m256i c = _mm256_load_si256(reinterpret_cast<const __m256i*>(P[p] + 8 * 32 + 32 * h));
        for (int i = 0; i < MA; ++i) dot[p][i] = c;
      }
      for (int j = kSteps * h; j < kSteps * (h + 1); ++j) {
        __m256i a[MA];
        for (int i = 0; i < MA; ++i) a[i] = _mm256_set1_epi32(static_cast<int>(detail::load_u32(qa + 32 * i + 4 * j)));
        for (int p = 0; p < NP; ++p) {
          const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(P[p]) + j);
          for (int i = 0; i < MA; ++i) dot[p][i] = _mm256_dpbusd_avx_epi32(dot[p][i], a[i], w);
        }
      }
      for (int p = 0; p < NP; ++p) {
        const __m256 scale = _mm256_load_ps(reinterpret_cast<const float*>(P[p] + 10 * 32 + 32 * h));
        for (int i = 0; i < MA; ++i) {
          const __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(dot[p][i]), _mm256_set1_ps(da[i]));
          acc[p][i] = _mm256_fmadd_ps(t, scale, acc[p][i]);
          if constexpr (kMin) {
            const __m256 bias = _mm256_load_ps(reinterpret_cast<const float*>(P[p] + 12 * 32 + 32 * h));
            acc[p][i] = _mm256_fmadd_ps(bias, _mm256_set1_ps(kHalves ? mins[2 * i + h] : mins[i]), acc[p][i]);
          }
        }
      }
    }
  }
  for (int i = 0; i < MA; ++i) {
    for (int p = 0; p < NP; ++p) {
      float* out = y.out + (m + i) * y.ld_out + kPanelRows * p;
      if (rows[p] == kPanelRows) {
        _mm256_storeu_ps(out, acc[p][i]);
      } else {
        _mm256_maskstore_ps(out, LeadingLanes(rows[p]), acc[p][i]);
      }
    }
  }
}

// Activation rows per tile for NP panels: NP·MA float and NP·MA int32 accumulators, MA
// broadcasts and one weight vector within the 16 registers.
template <int NP>
constexpr int kPanelTileRows = NP >= 2 ? 3 : 5;

// The tile of the last `left` (≤ R) activation rows.
template <int NP, int R, class Dec>
NIBBLE_VNNI_ATTR HWY_INLINE void PanelTailTile(int64_t left, const uint8_t* const* panels,
                                               const QuantizedInput& qx, int64_t m, int64_t b0,
                                               int64_t b1, const PanelOut& y, const int* rows) {
  if constexpr (R > 0) {
    if (left == R) return PanelTile<NP, R, Dec>(panels, qx, m, b0, b1, y, rows);
    PanelTailTile<NP, R - 1, Dec>(left, panels, qx, m, b0, b1, y, rows);
  }
}

template <int NP, class Dec>
NIBBLE_VNNI_ATTR HWY_INLINE void PanelRows(const uint8_t* const* panels, const QuantizedInput& qx,
                                           int64_t M, int64_t nb, const PanelGroupPass& pass,
                                           const int* rows) {
  constexpr int MA = kPanelTileRows<NP>;
  // K in L1-sized slices (see kPanelSliceBlocks); where K has more than one, the partial sums
  // between them go to the group's contiguous buffer (PanelGroupPass::Slice).
  const int64_t n_slices = (nb + kPanelSliceBlocks - 1) / kPanelSliceBlocks;
  for (int64_t b0 = 0; b0 < nb; b0 += kPanelSliceBlocks) {
    const int64_t b1 = std::min(nb, b0 + kPanelSliceBlocks);
    pass.ahead.PrefetchPart(b0 / kPanelSliceBlocks, n_slices);
    const PanelOut y = pass.Slice(b1, nb);
    int64_t m = 0;
    for (; m + MA <= M; m += MA) PanelTile<NP, MA, Dec>(panels, qx, m, b0, b1, y, rows);
    PanelTailTile<NP, MA - 1, Dec>(M - m, panels, qx, m, b0, b1, y, rows);
  }
}

// Output rows [n0, n1) for all M: kPanelGroup panels (8 rows each) at a time, fewer at the tail.
// Only called where active_int8_extension() is kAvxVnni (NIBBLE_TRY_PANEL).
template <template <class> class RowsOf, class Dec>
NIBBLE_VNNI_ATTR void PanelRowRange(const MatmulArgs& args, int64_t n0, int64_t n1) {
  const int64_t nb = args.K / 32;
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
    int rows[kPanelGroup];
    for (int p = 0; p < np; ++p) {
      const int64_t first = n + kPanelRows * p;
      BuildPanel(RowsOf<Dec>(args, first, n1), nb, const_cast<uint8_t*>(panel[p]));
      rows[p] = static_cast<int>(std::min<int64_t>(kPanelRows, n1 - first));
    }
    const PanelGroupPass pass =
        PanelGroupPass::Plan<RowsOf<Dec>>(args, n, n1, kGroupRows, kPanelSliceBlocks, partial);
    if (np == 2) {
      PanelRows<2, Dec>(panel, *args.qx, args.M, nb, pass, rows);
    } else {
      PanelRows<1, Dec>(panel, *args.qx, args.M, nb, pass, rows);
    }
  }
}

#undef NIBBLE_VNNI_ATTR
