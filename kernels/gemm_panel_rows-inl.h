// Where the panel GEMMs' weight rows come from (included by gemm_panel-inl.h and
// gemm_panel_avx2-inl.h inside their target's namespace, after each defines kPanelRows; no
// include guard, like every per-target file): decoders for the formats whose generic-tile
// decoders live in dot-inl.h's hand-fused tiles instead, and the row sources over GGUF rows or
// 4-row packed tiles.

// The three formats that have hand-fused tiles also need decoders for the panel builder.
struct DecodeQ4_0 {
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 8;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* row, int64_t b, DecodedBlock& x) {
    const uint8_t* blk = row + 18 * b;
    x.v = Nibbles(blk + 2);
    x.scale[0] = x.scale[1] = F16(blk);
    x.bias[0] = x.bias[1] = -8.0f * x.scale[0];
  }
};

struct DecodeQ8_0 {
  static constexpr bool kSigned = true, kBias = false, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 0;
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
  static constexpr int kOffset = 32;
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
  static constexpr int kOffset = 8;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* tile, int r, int64_t nb, int64_t b, DecodedBlock& x) {
    const int64_t g = b / 4;
    x.v = Nibbles(tile + (g * 4 + r) * 64 + 16 * (b % 4));
    x.scale[0] = x.scale[1] = F16(tile + nb * 64 + (g * 4 + r) * 8 + 2 * (b % 4));
    x.bias[0] = x.bias[1] = -8.0f * x.scale[0];
  }
};

struct DecodePackedQ8_0 {
  static constexpr bool kSigned = true, kBias = false, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 0;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* tile, int r, int64_t nb, int64_t b, DecodedBlock& x) {
    const int64_t g = b / 2;
    x.v = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile + (g * 4 + r) * 64 + 32 * (b % 2)));
    x.scale[0] = x.scale[1] = F16(tile + nb * 128 + (g * 4 + r) * 4 + 2 * (b % 2));
  }
};

// kLayoutRows16 strips (kernels/repack.h): the formats' traits only — panels are built from
// whole strips by BuildPanelFromRows16, never row by row.
struct DecodeRows16Q4_0 {
  static constexpr TensorType kType = TensorType::Q4_0;
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 8;
};

struct DecodeRows16IQ4_NL {
  static constexpr TensorType kType = TensorType::IQ4_NL;
  static constexpr bool kSigned = true, kBias = false, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 0;
};

// Q8_0: the strip's 8 vectors are the panel's steps as they are.
struct DecodeRows16Q8_0 {
  static constexpr bool kSigned = true, kBias = false, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 0;
};

// Q4_1: levels 0…15 with a min per block (against llama.cpp's q8_1 d·Σa).
struct DecodeRows16Q4_1 {
  static constexpr TensorType kType = TensorType::Q4_1;
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = true;
  static constexpr int kOffset = 0;
};

// Q6_K: levels q − 32 with a scale per 16-element half (its sub-blocks).
struct DecodeRows16Q6_K {
  static constexpr bool kSigned = false, kBias = true, kHalves = true, kQ8_1Min = false;
  static constexpr int kOffset = 32;
};

// Q4_K: levels 0…15 with a min per block (integer mins with grouped activations).
struct DecodeRows16Q4_K {
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 0;
};

// Q5_K: levels 0…31, as Q4_K.
struct DecodeRows16Q5_K {
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 0;
};

// Blocks ahead that BuildPanel prefetches its rows (GgufPanelRows::Prefetch).
constexpr int64_t kBuildPrefetchBlocks = 8;

// Q4_1 and IQ4_NL in kLayoutPacked4: Q4_0's quant bytes; Q4_1's mins follow the 4 rows' scales
// of a group (repack.h).
struct DecodePackedQ4_1 {
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = true;
  static constexpr int kOffset = 0;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* tile, int r, int64_t nb, int64_t b,
                                                DecodedBlock& x) {
    const int64_t g = b / 4;
    x.v = Nibbles(tile + (g * 4 + r) * 64 + 16 * (b % 4));
    const uint8_t* fields = tile + nb * 64 + g * 64 + r * 8 + 2 * (b % 4);
    x.scale[0] = x.scale[1] = F16(fields);
    x.bias[0] = x.bias[1] = F16(fields + 32);
  }
};

struct DecodePackedIQ4_NL {
  static constexpr bool kSigned = true, kBias = false, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 0;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* tile, int r, int64_t nb, int64_t b,
                                                DecodedBlock& x) {
    const int64_t g = b / 4;
    x.v = IQ4Lookup(Nibbles(tile + (g * 4 + r) * 64 + 16 * (b % 4)));
    x.scale[0] = x.scale[1] = F16(tile + nb * 64 + (g * 4 + r) * 8 + 2 * (b % 4));
  }
};

// Q4_K in kLayoutPacked4: super-block b/8's run holds the 4 rows' headers, then row r's 32
// elements of sub-block b%8 as 16 bytes in Q4_0's nibble order (repack.h).
struct DecodePackedQ4_K {
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 0;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* tile, int r, int64_t, int64_t b,
                                                DecodedBlock& x) {
    const uint8_t* run = tile + detail::kK4RunBytes * (b / 8);
    const int sub = static_cast<int>(b % 8);
    x.v = Nibbles(run + 64 + 64 * sub + 16 * r);
    K4ScaleMin(run + 16 * r, sub, x);
  }
};

// Q5_K in kLayoutPacked4: Q4_K's runs with each sub-block's fifth bits after the quants, 16 per
// row for elements 0..15 at kK5FifthBitsAt + 16·sub + 2r and 16 for 16..31 eight bytes on
// (repack.h).
struct DecodePackedQ5_K {
  static constexpr bool kSigned = false, kBias = true, kHalves = false, kQ8_1Min = false;
  static constexpr int kOffset = 0;
  static NIBBLE_INT_ATTR HWY_INLINE void Decode(const uint8_t* tile, int r, int64_t, int64_t b,
                                                DecodedBlock& x) {
    const uint8_t* run = tile + detail::kK5RunBytes * (b / 8);
    const int sub = static_cast<int>(b % 8);
    const uint8_t* bits = run + detail::kK5FifthBitsAt + 16 * sub + 2 * r;
    const uint32_t fifth =
        detail::load_u16(bits) | static_cast<uint32_t>(detail::load_u16(bits + 8)) << 16;
    x.v = _mm256_or_si256(Nibbles(run + 64 + 64 * sub + 16 * r), FifthBits(fifth));
    K4ScaleMin(run + 16 * r, sub, x);
  }
};

// A contiguous run of weight bytes (WeightBytes::PrefetchPart).
struct WeightBytes {
  const uint8_t* p = nullptr;
  uint64_t size = 0;
  // Part `i` of `parts` of the run, to L2 (software prefetch, one per 64-byte line).
  NIBBLE_INT_ATTR HWY_INLINE void PrefetchPart(int64_t i, int64_t parts) const {
    const uint64_t lines = (size + 63) / 64;
    const uint64_t l1 = lines * static_cast<uint64_t>(i + 1) / static_cast<uint64_t>(parts);
    for (uint64_t l = lines * static_cast<uint64_t>(i) / static_cast<uint64_t>(parts); l < l1; ++l)
      _mm_prefetch(reinterpret_cast<const char*>(p + 64 * l), _MM_HINT_T1);
  }
};

// Where a K slice's tiles read the partial sums of the earlier slices (in; unread by the first
// slice) and write theirs (out): y (ld N) or PanelGroupPass's buffer.
struct PanelOut {
  const float* in;
  int64_t ld_in;
  float* out;
  int64_t ld_out;
};

// One group of output rows [n, n + group_rows) in a PanelRowRange pass: where its tiles sum
// between K slices, and the next group's weights to prefetch while they run.
//  - With more than one K slice, the partial sums go to a contiguous per-thread buffer and only
//    the last slice's tiles write y: y's rows are N floats apart, so every tile's loads and
//    stores of them touched MA new pages, and the tile starts stalled on those loads (perf
//    annotate). bench_matmul M = 512, 1 thread, best of 3 alternated: K = 5632 (11 slices)
//    1.06–1.11×, K = 2048 (4 slices) 0.89–1.06× across two runs: no change beyond the noise.
//    The last slice's tiles store straight to y, between their dot products: a copy of the
//    buffer to y after the group (one row of 128 bytes to each of M pages) waited on every
//    line's read-for-ownership, ~10 % of the Q4_K and Q5_K GEMM's samples at N = 5632.
//  - The next group's weights go to L2, a part per K slice, so its panels are built from cache.
//    The build's own prefetch (8 blocks ahead) was not enough when memory latency was high: in
//    one profile of the 1.1B Q4_K_M pp512 (547 t/s), one load of Q4_K's quant bytes in
//    DecodePanelBlock took 14 % of the Q4_K GEMM's samples; with this, none.
struct PanelGroupPass {
  float* y;  // the group's first output column in y
  int64_t ldy;
  float* partial;  // the buffer (M × group_rows), or null with a single K slice
  int64_t group_rows;
  WeightBytes ahead;

  template <class Rows>
  static NIBBLE_INT_ATTR HWY_INLINE PanelGroupPass Plan(const MatmulArgs& args, int64_t n,
                                                        int64_t n1, int64_t group_rows,
                                                        int64_t slice_blocks,
                                                        std::vector<float>& partial) {
    PanelGroupPass g;
    g.y = args.y + n;
    g.ldy = args.ldy;
    g.group_rows = group_rows;
    g.partial = nullptr;
    if (args.K / 32 > slice_blocks) {
      partial.resize(static_cast<size_t>(args.M * group_rows));
      g.partial = partial.data();
    }
    const int64_t next = n + group_rows;
    g.ahead = next < n1 ? WeightBytes{args.w + args.row_offset(next),
                                      args.rows_bytes(next, std::min(n1, next + group_rows))}
                        : WeightBytes{};
    return g;
  }
  // The slice of K that ends at block b1 of nb.
  NIBBLE_INT_ATTR HWY_INLINE PanelOut Slice(int64_t b1, int64_t nb) const {
    if (partial == nullptr) return {y, ldy, y, ldy};
    if (b1 == nb) return {partial, group_rows, y, ldy};
    return {partial, group_rows, partial, group_rows};
  }
};

// Where a panel's kPanelRows rows come from: GGUF rows, or rows of 4-row packed tiles. Rows past the
// caller's range repeat its last row (their outputs are never stored).
template <class Dec>
struct GgufPanelRows {
  using Decoder = Dec;
  const uint8_t* rows[kPanelRows];
  NIBBLE_INT_ATTR HWY_INLINE GgufPanelRows(const MatmulArgs& args, int64_t n, int64_t n1) {
    for (int i = 0; i < kPanelRows; ++i) rows[i] = args.w + std::min<int64_t>(n + i, n1 - 1) * args.w_row_bytes;
    block_bytes = args.w_row_bytes / static_cast<uint64_t>(args.K / 32);
  }
  NIBBLE_INT_ATTR HWY_INLINE void Decode(int i, int64_t b, DecodedBlock& x) const { Dec::Decode(rows[i], b, x); }
  // Block b's bytes of every row, ahead of their decode: the 16 (AVX2: 8) rows are as many streams
  // a row stride apart, which the hardware prefetchers did not follow — building a Q4_K panel
  // waited on these loads (rdtsc around BuildPanel on the 1.1B model's pp512: 1.8 → 0.75
  // Gcycles with 8 blocks ahead).
  NIBBLE_INT_ATTR HWY_INLINE void Prefetch(int64_t b, int64_t nb) const {
    if (b >= nb) return;
    for (int i = 0; i < kPanelRows; ++i)
      _mm_prefetch(reinterpret_cast<const char*>(rows[i] + b * block_bytes), _MM_HINT_T0);
  }
  uint64_t block_bytes;  // a row's bytes per 32 elements (rounded down: super-blocks)
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
  // A packed panel is 4 contiguous tiles; building it was never seen waiting on them.
  NIBBLE_INT_ATTR HWY_INLINE void Prefetch(int64_t, int64_t) const {}
};

// A panel of a kLayoutRows16 strip (n a multiple of 16 = kPanelRows): the strip's padding rows
// stand in past n1 (their outputs are never stored).
template <class Dec>
struct Rows16PanelRows {
  using Decoder = Dec;
  const uint8_t* strip;
  NIBBLE_INT_ATTR HWY_INLINE Rows16PanelRows(const MatmulArgs& args, int64_t n, int64_t)
      : strip(args.w + args.row_offset(n)) {}
};

// Block b of the kPanelRows rows: signed levels into v (offset formats lose their offset here),
// each row's two half scales into S[0..2·kPanelRows) and, for formats with mins, its two mins
// right after them (the panel block's S and B).
// With kIntMins (Q4_K/Q5_K) the mins go out as integers instead: each row's min level into
// min_level[i] and its step into min_step[i] (bias = −step·level), for the caller to lay out.
template <class Rows, bool kIntMins = false>
NIBBLE_INT_ATTR HWY_INLINE void DecodePanelBlock(const Rows& rows, int64_t b, __m256i* v, float* S,
                                                 int32_t* min_level = nullptr,
                                                 float* min_step = nullptr) {
  using Dec = typename Rows::Decoder;
  static_assert(!(Dec::kSigned && Dec::kOffset != 0), "signed levels carry no offset");
  const __m256i offset = _mm256_set1_epi8(static_cast<char>(Dec::kOffset));
  float* B = S + 2 * kPanelRows;
  for (int i = 0; i < kPanelRows; ++i) {
    DecodedBlock x;
    rows.Decode(i, b, x);
    v[i] = Dec::kOffset != 0 ? _mm256_sub_epi8(x.v, offset) : x.v;
    S[i] = x.scale[0];
    S[kPanelRows + i] = x.scale[1];
    if constexpr (kIntMins) {
      min_level[i] = x.min_level;
      min_step[i] = -x.min_step;
    } else if constexpr (Dec::kBias && Dec::kOffset == 0) {
      B[i] = x.bias[0];
      B[kPanelRows + i] = x.bias[1];
    }
  }
}
