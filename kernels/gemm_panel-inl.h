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
//   W   8 × 64 bytes   step j (elements 4j..4j+3): lane r = row r's 4 levels, unsigned
//   S   2 × 16 floats  scale of each row's first / second 16-element half
//   B   2 × 16 floats  bias of each half (element = scale·level + bias)
// Signed formats (Q8_0, Q8_C, IQ4_*) store level+128 and fold the offset into the bias, so
// every format meets the unsigned operand of vpdpbusd, and the bias meets d_a·Σa of the
// activation block (QuantizedInput::dsum). Building a panel costs ~200 instructions per block;
// at M = 512 the dot products on it cost ~4000, so rebuilding per call is cheaper than storing a
// second, byte-per-weight copy of the model (decode must keep reading nibbles).
//
// Register blocking: 2 panels (32 rows) × 6 activation rows: 12 float and 12 int32
// accumulators, the 6 broadcasts and one weight vector (2 × 4 and 4 × 3 measured the same).

// Lanes of a panel and bytes of one 32-block in it.
constexpr int kPanelRows = 16;
constexpr int64_t kPanelBlockBytes = 8 * 64 + 4 * 64;
// Panels computed together (they share each activation broadcast).
constexpr int kPanelGroup = 2;
// Blocks of K per pass of the activation tiles over the panels (see PanelRows).
constexpr int64_t kPanelSliceBlocks = 8;

// The three formats that have hand-fused tiles also need decoders for the panel builder.
struct DecodeQ4_0 {
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = false;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    const uint8_t* blk = row + 18 * b;
    x.v = Nibbles(blk + 2);
    x.scale[0] = x.scale[1] = F16(blk);
    x.bias[0] = x.bias[1] = -8.0f * x.scale[0];
  }
};

struct DecodeQ8_0 {
  static constexpr bool kSigned = true, kBias = false, kHalves = false, kQ8_1Min = false;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    const uint8_t* blk = row + 34 * b;
    x.v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    x.scale[0] = x.scale[1] = F16(blk);
  }
};

// Q6_K block jb of a super-block: low nibbles from 32 ql bytes (high nibbles for jb%4 ≥ 2), bit
// pair jb%4 of 32 qh bytes on top; level q+32 in 0..63, the −32 as bias.
struct DecodeQ6_K {
  static constexpr bool kSigned = false, kBias = true, kHalves = true, kQ8_1Min = false;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    const uint8_t* sb = row + 210 * (b / 8);
    const int jb = static_cast<int>(b % 8), h = jb / 4, j = jb % 4;
    const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 64 * h + 32 * (j % 2)));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 128 + 32 * h));
    const __m256i low4 = _mm256_and_si256(j < 2 ? ql : _mm256_srli_epi16(ql, 4), _mm256_set1_epi8(0x0F));
    const __m256i high2 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * j)), _mm256_set1_epi8(3));
    x.v = _mm256_or_si256(low4, _mm256_slli_epi16(high2, 4));
    const float d = F16(sb + 208);
    const int8_t* scales = reinterpret_cast<const int8_t*>(sb + 192);
    for (int i = 0; i < 2; ++i) {
      x.scale[i] = d * static_cast<float>(scales[2 * jb + i]);
      x.bias[i] = -32.0f * x.scale[i];
    }
  }
};

// kLayoutPacked4 tiles (kernels/repack.h): block b of row r of a tile, as the GGUF decoders give.
struct DecodePackedQ4_0 {
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = false;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* tile, int r, int64_t nb, int64_t b, DecodedBlock& x) {
    const int64_t g = b / 4;
    x.v = Nibbles(tile + (g * 4 + r) * 64 + 16 * (b % 4));
    x.scale[0] = x.scale[1] = F16(tile + nb * 64 + (g * 4 + r) * 8 + 2 * (b % 4));
    x.bias[0] = x.bias[1] = -8.0f * x.scale[0];
  }
};

struct DecodePackedQ8_0 {
  static constexpr bool kSigned = true, kBias = false, kHalves = false, kQ8_1Min = false;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* tile, int r, int64_t nb, int64_t b, DecodedBlock& x) {
    const int64_t g = b / 2;
    x.v = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile + (g * 4 + r) * 64 + 32 * (b % 2)));
    x.scale[0] = x.scale[1] = F16(tile + nb * 128 + (g * 4 + r) * 4 + 2 * (b % 2));
  }
};

// Where a panel's 16 rows come from: GGUF rows, or rows of 4-row packed tiles. Rows past the
// caller's range repeat its last row (their outputs are never stored).
template <class Dec>
struct GgufPanelRows {
  using Decoder = Dec;
  const uint8_t* rows[kPanelRows];
  NIBBLE_INT_ATTR HWY_INLINE GgufPanelRows(const MatmulArgs& args, int64_t n, int64_t n1) {
    for (int i = 0; i < kPanelRows; ++i) rows[i] = args.w + std::min<int64_t>(n + i, n1 - 1) * args.w_row_bytes;
  }
  NIBBLE_INT_ATTR HWY_INLINE void Decode(int i, int64_t b, DecodedBlock& x) const { Dec::Decode(rows[i], b, x); }
};

template <class Dec>
struct PackedPanelRows {
  using Decoder = Dec;
  const uint8_t* tile[kPanelRows];
  int r[kPanelRows];
  int64_t nb;
  NIBBLE_INT_ATTR HWY_INLINE PackedPanelRows(const MatmulArgs& args, int64_t n, int64_t n1) : nb(args.K / 32) {
    for (int i = 0; i < kPanelRows; ++i) {
      const int64_t row = std::min<int64_t>(n + i, n1 - 1);
      tile[i] = args.w + (row / 4) * args.w_tile_bytes;
      r[i] = static_cast<int>(row % 4);
    }
  }
  NIBBLE_INT_ATTR HWY_INLINE void Decode(int i, int64_t b, DecodedBlock& x) const { Dec::Decode(tile[i], r[i], nb, b, x); }
};

// Decodes 16 rows × all blocks into `panel`. Transposing 16 rows of 8 dwords: pair rows g, 4+g
// and 8+g, 12+g into two 512-bit vectors, take their low / high 128-bit quarters (dwords 0..3
// and 4..7 of rows g, 4+g, 8+g, 12+g, one row per 128-bit lane), then a 4 × 4 dword transpose
// inside each 128-bit lane over g = 0..3 leaves dword j of row 4L+g in lane 4L+g of vector j.
template <class Rows>
NIBBLE_INT_ATTR HWY_INLINE void BuildPanel(const Rows& rows, int64_t nb, uint8_t* panel) {
  using Dec = typename Rows::Decoder;
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* out = panel + b * kPanelBlockBytes;
    float* S = reinterpret_cast<float*>(out + 8 * 64);
    float* B = S + 2 * kPanelRows;
    __m256i v[kPanelRows];
    for (int i = 0; i < kPanelRows; ++i) {
      DecodedBlock x;
      rows.Decode(i, b, x);
      float bias[2] = {0.0f, 0.0f};
      if constexpr (Dec::kBias) {
        bias[0] = x.bias[0];
        bias[1] = x.bias[1];
      }
      if constexpr (Dec::kSigned) {  // level + 128, offset into the bias
        x.v = _mm256_xor_si256(x.v, flip);
        bias[0] -= 128.0f * x.scale[0];
        bias[1] -= 128.0f * x.scale[1];
      }
      v[i] = x.v;
      S[i] = x.scale[0];
      S[kPanelRows + i] = x.scale[1];
      B[i] = bias[0];
      B[kPanelRows + i] = bias[1];
    }
    __m512i E[4], F[4];
    for (int g = 0; g < 4; ++g) {
      const __m512i X = _mm512_inserti64x4(_mm512_castsi256_si512(v[g]), v[4 + g], 1);
      const __m512i Y = _mm512_inserti64x4(_mm512_castsi256_si512(v[8 + g]), v[12 + g], 1);
      E[g] = _mm512_shuffle_i32x4(X, Y, _MM_SHUFFLE(2, 0, 2, 0));
      F[g] = _mm512_shuffle_i32x4(X, Y, _MM_SHUFFLE(3, 1, 3, 1));
    }
    const __m512i* halves[2] = {E, F};
    for (int h = 0; h < 2; ++h) {
      const __m512i* Q = halves[h];
      const __m512i t0 = _mm512_unpacklo_epi32(Q[0], Q[1]), t1 = _mm512_unpackhi_epi32(Q[0], Q[1]);
      const __m512i t2 = _mm512_unpacklo_epi32(Q[2], Q[3]), t3 = _mm512_unpackhi_epi32(Q[2], Q[3]);
      __m512i* W = reinterpret_cast<__m512i*>(out) + 4 * h;
      _mm512_store_si512(W + 0, _mm512_unpacklo_epi64(t0, t2));
      _mm512_store_si512(W + 1, _mm512_unpackhi_epi64(t0, t2));
      _mm512_store_si512(W + 2, _mm512_unpacklo_epi64(t1, t3));
      _mm512_store_si512(W + 3, _mm512_unpackhi_epi64(t1, t3));
    }
  }
}

NIBBLE_INT_ATTR HWY_INLINE __m512i Broadcast4(const int8_t* p) {
  return _mm512_set1_epi32(static_cast<int>(detail::load_u32(reinterpret_cast<const uint8_t*>(p))));
}
// NP panels (16·NP rows) × MA activation rows from m: y[(m+i)·ldy + n + 16p + lane] for the
// `valid[p]` leading lanes of panel p.
template <int NP, int MA, class Dec>
NIBBLE_INT_ATTR HWY_INLINE void PanelTile(const uint8_t* const* panels, const QuantizedInput& qx, int64_t m, int64_t b0,
                                          int64_t b1, float* y, int64_t ldy, const __mmask16* valid) {
  constexpr bool kHalves = Dec::kHalves;
  const int64_t K = qx.K, nb = K / 32;
  __m512 acc[NP][MA];
  for (int p = 0; p < NP; ++p) {
    for (int i = 0; i < MA; ++i) {
      acc[p][i] = b0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(valid[p], y + (m + i) * ldy + kPanelRows * p);
    }
  }
  const int8_t* q[MA];
  const float* da[MA];
  const float* dsum[MA];
  const float* dsum16[MA];
  for (int i = 0; i < MA; ++i) {
    q[i] = qx.q.data() + (m + i) * K;
    da[i] = qx.d.data() + (m + i) * nb;
    dsum[i] = (Dec::kQ8_1Min ? qx.dsum_q8_1.data() : qx.dsum.data()) + (m + i) * nb;
    dsum16[i] = qx.dsum16.data() + (m + i) * 2 * nb;
  }
  for (int64_t b = b0; b < b1; ++b) {
    const __m512i* W[NP];
    const float* S[NP];
    for (int p = 0; p < NP; ++p) {
      W[p] = reinterpret_cast<const __m512i*>(panels[p] + b * kPanelBlockBytes);
      S[p] = reinterpret_cast<const float*>(panels[p] + b * kPanelBlockBytes + 8 * 64);
    }
    // One pass per scale group: the whole block, or each 16-element half (then the block's d_a
    // is applied per half, which keeps the live dot accumulators at NP·MA).
    constexpr int kGroups = kHalves ? 2 : 1;
    constexpr int kSteps = 8 / kGroups;
    for (int h = 0; h < kGroups; ++h) {
      __m512i dot[NP][MA];
      for (int p = 0; p < NP; ++p) {
        for (int i = 0; i < MA; ++i) dot[p][i] = _mm512_setzero_si512();
      }
      for (int j = kSteps * h; j < kSteps * (h + 1); ++j) {
        __m512i a[MA];
        for (int i = 0; i < MA; ++i) a[i] = Broadcast4(q[i] + 32 * b + 4 * j);
        for (int p = 0; p < NP; ++p) {
          const __m512i w = _mm512_load_si512(W[p] + j);
          for (int i = 0; i < MA; ++i) dot[p][i] = _mm512_dpbusd_epi32(dot[p][i], w, a[i]);
        }
      }
      for (int p = 0; p < NP; ++p) {
        const __m512 scale = _mm512_load_ps(S[p] + kPanelRows * h);
        const __m512 bias = _mm512_load_ps(S[p] + kPanelRows * (2 + h));
        for (int i = 0; i < MA; ++i) {
          const float act_sum = kHalves ? dsum16[i][2 * b + h] : dsum[i][b];
          const __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(dot[p][i]), _mm512_set1_ps(da[i][b]));
          acc[p][i] = _mm512_fmadd_ps(t, scale, acc[p][i]);
          acc[p][i] = _mm512_fmadd_ps(bias, _mm512_set1_ps(act_sum), acc[p][i]);
        }
      }
    }
  }
  for (int i = 0; i < MA; ++i) {
    for (int p = 0; p < NP; ++p) _mm512_mask_storeu_ps(y + (m + i) * ldy + kPanelRows * p, valid[p], acc[p][i]);
  }
}

// Activation rows per tile for NP panels: as many as keep the NP·MA float and NP·MA int32
// accumulators, one weight vector and MA broadcasts within the 32 registers.
template <int NP>
constexpr int kPanelTileRows = NP >= 4 ? 3 : NP == 3 ? 4 : 6;

template <int NP, class Dec>
NIBBLE_INT_ATTR HWY_INLINE void PanelRows(const uint8_t* const* panels, const QuantizedInput& qx, int64_t M, int64_t nb,
                                          float* y, int64_t ldy, const __mmask16* valid) {
  constexpr int MA = kPanelTileRows<NP>;
  // K in slices whose NP panel blocks (NP · kPanelSliceBlocks · 768 bytes) stay in L1 while
  // every activation tile passes over them, instead of each tile streaming whole panels from
  // L2 (Zen 5's L2 kept up either way: same speed measured; the slices are for cores with
  // less L2 bandwidth). Partial sums go through y, which stays in cache.
  for (int64_t b0 = 0; b0 < nb; b0 += kPanelSliceBlocks) {
    const int64_t b1 = std::min(nb, b0 + kPanelSliceBlocks);
    int64_t m = 0;
    for (; m + MA <= M; m += MA) PanelTile<NP, MA, Dec>(panels, qx, m, b0, b1, y, ldy, valid);
    switch (M - m) {
      case 5: PanelTile<NP, 5, Dec>(panels, qx, m, b0, b1, y, ldy, valid); break;
      case 4: PanelTile<NP, 4, Dec>(panels, qx, m, b0, b1, y, ldy, valid); break;
      case 3: PanelTile<NP, 3, Dec>(panels, qx, m, b0, b1, y, ldy, valid); break;
      case 2: PanelTile<NP, 2, Dec>(panels, qx, m, b0, b1, y, ldy, valid); break;
      case 1: PanelTile<NP, 1, Dec>(panels, qx, m, b0, b1, y, ldy, valid); break;
      default: break;
    }
  }
}

// Output rows [n0, n1) for all M: kPanelGroup panels (16 rows each) at a time, fewer at the tail.
template <template <class> class RowsOf, class Dec>
NIBBLE_INT_ATTR void PanelRowRange(const MatmulArgs& args, int64_t n0, int64_t n1) {
  const int64_t nb = args.K / 32;
  const uint64_t panel_bytes = static_cast<uint64_t>(nb * kPanelBlockBytes);
  thread_local std::vector<uint8_t> scratch;
  scratch.resize(kPanelGroup * panel_bytes + 64);
  const uintptr_t base = (reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t{63};
  const uint8_t* panel[kPanelGroup];
  for (int p = 0; p < kPanelGroup; ++p) panel[p] = reinterpret_cast<uint8_t*>(base) + p * panel_bytes;
  for (int64_t n = n0; n < n1; n += kPanelGroup * kPanelRows) {
    const int np = static_cast<int>(std::min<int64_t>(kPanelGroup, (n1 - n + kPanelRows - 1) / kPanelRows));
    __mmask16 valid[kPanelGroup];
    for (int p = 0; p < np; ++p) {
      const int64_t first = n + kPanelRows * p;
      BuildPanel(RowsOf<Dec>(args, first, n1), nb, const_cast<uint8_t*>(panel[p]));
      const int64_t rows = std::min<int64_t>(kPanelRows, n1 - first);
      valid[p] = static_cast<__mmask16>((1u << rows) - 1);
    }
    float* y = args.y + n;
    switch (np) {
      case 4: PanelRows<4, Dec>(panel, *args.qx, args.M, nb, y, args.ldy, valid); break;
      case 3: PanelRows<3, Dec>(panel, *args.qx, args.M, nb, y, args.ldy, valid); break;
      case 2: PanelRows<2, Dec>(panel, *args.qx, args.M, nb, y, args.ldy, valid); break;
      default: PanelRows<1, Dec>(panel, *args.qx, args.M, nb, y, args.ldy, valid); break;
    }
  }
}
