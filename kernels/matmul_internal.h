// Shared between the matmul driver, its per-target kernels (dot-inl.h) and the reference.
// Not part of the public interface.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/fp16.h"
#include "kernels/matmul.h"

namespace nibble::detail {

// One matmul call as the per-target kernels see it: they compute output rows [n0, n1) for all
// M activation rows.
struct MatmulArgs {
  const uint8_t* w = nullptr;  // weight row 0 (packed layouts: tile 0)
  uint64_t w_row_bytes = 0;
  uint64_t w_tile_bytes = 0;  // packed layouts: bytes between tiles
  int64_t w_tile_rows = 0;    // rows per tile: 4 (kLayoutPacked4), 16 (kLayoutRows16), 0
  int64_t K = 0;
  int64_t M = 0;
  const float* x = nullptr;         // float activations (F32/F16/BF16 weights)
  const QuantizedInput* qx = nullptr;  // int8 activations (quantized weights)
  float* y = nullptr;
  int64_t ldy = 0;
  // Decode: the row up to which the GEMV's next-tile prefetch may run past the end of its range
  // (the rows this thread takes next); 0: only within the range.
  int64_t prefetch_end = 0;
  // Decode: next tiles up to this many bytes are prefetched non-temporally into L1, larger ones
  // into L2 (decode_nta_prefetch_max_bytes()).
  uint64_t nta_prefetch_max_bytes = 0;

  // Where the bytes of output row n start (packed: its tile's), and how many bytes rows [a, b)
  // take (packed: the whole tiles that hold them; a is then a multiple of the tile height).
  uint64_t row_offset(int64_t n) const {
    return w_tile_rows ? static_cast<uint64_t>(n / w_tile_rows) * w_tile_bytes
                       : static_cast<uint64_t>(n) * w_row_bytes;
  }
  uint64_t rows_bytes(int64_t a, int64_t b) const {
    return w_tile_rows
               ? static_cast<uint64_t>((b + w_tile_rows - 1) / w_tile_rows - a / w_tile_rows) *
                     w_tile_bytes
               : static_cast<uint64_t>(b - a) * w_row_bytes;
  }
  // Rows of the GEMV's weight tile: a packed tile, or the 4 rows the GGUF-layout tiles read.
  int64_t tile_rows() const { return w_tile_rows ? w_tile_rows : 4; }
  // Whether the decode GEMV's tile at row n of the range [.., n1) prefetches the tile after it:
  // in decode only, and only within the range or up to prefetch_end — the rows after the range
  // may be another thread's.
  bool prefetches_next_tile(int64_t n, int64_t n1) const {
    return M <= 2 && n + tile_rows() < std::max(n1, prefetch_end);
  }
};

// How the x86 decode GEMV prefetches the next tile (kernels/dot-inl.h, NextTile): the largest
// tile it sends to L1 non-temporally (prefetchnta) rather than to L2 (prefetcht1). On AMD (Zen
// 4/5), prefetchnta was 1.25–1.5× faster than prefetcht1 for tiles of 4.6–8.7 KB (K = 2048),
// but its low-priority L1 lines did not survive tiles of 12–24 KB (K = 5632: prefetcht1 1.12–1.7×
// faster). On Intel (a Xeon with AMX, 480 MB L3) prefetchnta halved streaming reads from DRAM
// at any distance (a plain read loop 11.9 GB/s per thread, with prefetchnta 5.4, prefetcht1
// 12.0) and the GEMV with it (bench_matmul M = 1, 2 threads, K = 2048: Q4_0 8.0 → 17.9 GB/s,
// Q8_0 8.2 → 21.8, Q4_K 9.1 → 19.2 with prefetcht1): there, and on CPUs not measured, every tile
// goes to L2.
constexpr uint64_t kAmdNtaPrefetchMaxTileBytes = 10 * 1024;
inline uint64_t decode_nta_prefetch_max_bytes() {
  return cpu_vendor() == CpuVendor::kAmd ? kAmdNtaPrefetchMaxTileBytes : 0;
}

// Activation rows from which the targets that have it run the panel GEMM
// (kernels/gemm_panel-inl.h) instead of the 4-row tiles; the driver sizes row chunks for it.
constexpr int64_t kPanelMinM = 16;

// kLayoutPacked4 geometry (see kernels/repack.h): blocks per 64-byte quant run (Q4_0, Q4_1 and
// IQ4_NL: 4 blocks of 16 nibble bytes, Q8_0: 2 blocks of 32 bytes; Q4_K and Q5_K: the 8 blocks of
// a super-block, which have a layout of their own), 0 for types without a packed layout.
inline int packed_group_blocks(TensorType t) {
  switch (t) {
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::IQ4_NL:
      return 4;
    case TensorType::Q8_0:
      return 2;
    case TensorType::Q4_K:
    case TensorType::Q5_K:
      return 8;
    default:
      return 0;
  }
}
// Bytes of a block's fp16 header fields, which the packed layout stores apart from the quants:
// the scale d, and Q4_1's min after it.
inline int packed_header_bytes(TensorType t) { return t == TensorType::Q4_1 ? 4 : 2; }

// Whether repacking t pays on the running target: Q4_0 and Q8_0 always pack (nibble's own files
// store them packed and every target reads that layout); Q4_1 and IQ4_NL only where the target
// has a native packed tile — elsewhere their file layout is read directly, since unpacking each
// tile to it in scratch would cost more than the packing saves.
bool packed_layout_pays(TensorType t);
// Q4_K's and Q5_K's packed runs (repack.h), one per super-block of a 4-row tile: the 4 rows'
// 16-byte headers and 8 sub-block vectors (4 × 144 bytes), then for Q5_K the sub-blocks' fifth
// bits (4 × 32 bytes more).
constexpr int64_t kK4RunBytes = 4 * 144;
constexpr int64_t kK5FifthBitsAt = kK4RunBytes;
constexpr int64_t kK5RunBytes = 4 * 176;
// Bytes of one 4-row tile: the 4 GGUF rows' bytes rounded up to keep every tile 64-byte aligned.
inline uint64_t packed_tile_bytes(uint64_t gguf_row_bytes) { return (4 * gguf_row_bytes + 63) / 64 * 64; }

// Writes rows [r0, r0+nr) of a kLayoutPacked4 tile back as GGUF blocks (row i at out + i·row_bytes).
void unpack_packed_tile(TensorType t, const uint8_t* tile, int64_t K, int r0, int nr, uint8_t* out,
                        uint64_t row_bytes);

// kLayoutRows16 geometry (see kernels/repack.h): strips of 16 rows, each the 16 GGUF rows' bytes
// rounded up to a multiple of 64 (only Q6_K with an odd number of super-blocks needs the
// padding: the 32-blocks' K/32 is even).
constexpr int64_t kRows16 = 16;
inline uint64_t rows16_strip_bytes(uint64_t gguf_row_bytes) {
  return (kRows16 * gguf_row_bytes + 63) / 64 * 64;
}
// Q4_0's, IQ4_NL's and Q4_1's blocks come in pairs of 2 · 16 · block bytes: both blocks' quants,
// then their scales (and Q4_1's mins).
constexpr int64_t kRows16NibblePairBytes = 2 * kRows16 * 18;
constexpr int64_t kRows16Q4_1PairBytes = 2 * kRows16 * 20;
// Q8_0's: both blocks' 8 quant vectors (512 bytes each), then their scales (2 · 16 · 34 bytes;
// block i's 16 fp16 d at kRows16Q8_0ScalesAt + 32·i).
constexpr int64_t kRows16Q8_0PairBytes = 2 * kRows16 * 34;
constexpr int64_t kRows16Q8_0ScalesAt = 2 * kRows16 * 32;
// Q6_K: a super-block of 16 rows is 16 · 210 bytes, 3072 of quants (32 vectors of low nibbles
// and 16 of high bit pairs, in the order the kernels read them) and 288 of scales (16 sub-blocks
// × 16 rows int8, then 16 fp16 d). An even super-block has its quants first, an odd one its
// scales, so all quants stay 64-byte aligned.
constexpr int64_t kRows16Q6_KSuperBytes = kRows16 * 210;
constexpr int64_t kRows16Q6_KQuantBytes = 3072;
constexpr int64_t kRows16Q6_KScaleBytes = kRows16Q6_KSuperBytes - kRows16Q6_KQuantBytes;
// Within the quants, 4 runs of 12 vectors, run t for dwords j = 4t … 4t+3: low-nibble vectors j
// (elements 4j…, 128 + 4j…), then 16 + j (64 + 4j…, 192 + 4j…), then high-bit vectors j.
inline uint64_t rows16_q6_k_low_at(int j) {  // j < 32
  return static_cast<uint64_t>(768 * (j % 16 / 4) + 256 * (j / 16) + 64 * (j % 4));
}
inline uint64_t rows16_q6_k_high_at(int j) {  // j < 16
  return static_cast<uint64_t>(768 * (j / 4) + 512 + 64 * (j % 4));
}
inline uint64_t rows16_q6_k_quants_at(int64_t s) {
  return static_cast<uint64_t>(s) * kRows16Q6_KSuperBytes + (s % 2 ? kRows16Q6_KScaleBytes : 0);
}
inline uint64_t rows16_q6_k_scales_at(int64_t s) {
  return static_cast<uint64_t>(s) * kRows16Q6_KSuperBytes + (s % 2 ? 0 : kRows16Q6_KQuantBytes);
}
// Q4_K: a super-block of 16 rows is 16 · 144 = 2304 bytes, 256 of scales first — the rows' 6-bit
// sub-block scales and mins as 3 vectors (low nibbles of sc_k | m_k for k < 4, then k ≥ 4, then
// the high bit pairs), then 16 fp16 d and 16 fp16 dmin — and 8 sub-blocks of 4 quant vectors as
// Q4_0's blocks are (repack.h).
constexpr int64_t kRows16Q4_KSuperBytes = kRows16 * 144;
constexpr int64_t kRows16Q4_KQuantsAt = 256;
// Q5_K: the same 256 bytes of scales, then per sub-block its 4 quant vectors and 64 bytes of
// fifth bits (16 · 176 = 2816 bytes per super-block).
constexpr int64_t kRows16Q5_KSuperBytes = kRows16 * 176;
constexpr int64_t kRows16Q5_KSubBytes = 320;
// Where sub-block k of a Q4_K (kFive = false) or Q5_K super-block's run starts, and the run's size.
inline int64_t rows16_k45_sub_at(bool five, int k) {
  return kRows16Q4_KQuantsAt + (five ? kRows16Q5_KSubBytes : 256) * k;
}
inline int64_t rows16_k45_super_bytes(bool five) {
  return five ? kRows16Q5_KSuperBytes : kRows16Q4_KSuperBytes;
}
// Whether t has a kLayoutRows16 form for K columns (Q4_0, Q4_1, IQ4_NL and Q8_0 with K/32 even,
// Q4_K, Q5_K and Q6_K with whole super-blocks),
// and whether the running target reads it natively (AVX-512: repack_for_matmul prefers it to
// kLayoutPacked4 or the file layout there).
inline bool rows16_layout_fits(TensorType t, int64_t K) {
  if (t == TensorType::Q6_K || t == TensorType::Q4_K || t == TensorType::Q5_K)
    return K > 0 && K % 256 == 0;
  return (t == TensorType::Q4_0 || t == TensorType::Q4_1 || t == TensorType::IQ4_NL ||
          t == TensorType::Q8_0) &&
         K > 0 && K % 64 == 0;
}
bool rows16_layout_pays(TensorType t);

// Rows [n, n + nr) of W (any layout) as GGUF blocks, row i at out + i·out_row_bytes.
void unpack_rows(const WeightMatrix& W, int64_t n, int64_t nr, uint8_t* out,
                 uint64_t out_row_bytes);

// All of W as GGUF rows: `view` is W in kLayoutGguf over `bytes`.
struct UnpackedWeight {
  std::vector<uint8_t> bytes;
  WeightMatrix view;
};
UnpackedWeight unpack_weight(const WeightMatrix& W);

// Stores block b's scale and sums. The values are those of llama.cpp's q8_0 / q8_1 activation
// blocks, which keep d and d·Σq in fp16 (q itself is rounded with the unrounded 1/d): on the
// same file, nibble's products then differ from llama.cpp's by summation order only, not by
// a different activation format (greedy continuations stay equal for longer).
// `round16` rounds a float to fp16 precision (to nearest even): the portable conversion by
// default, F16C on x86 targets (the same values, in 2 instructions instead of a branchy 20).
struct RoundFp16 {
  float operator()(float v) const { return fp16_to_fp32(fp32_to_fp16(v)); }
};
// With a scale shared by 8 blocks (QuantizedInput::group_blocks, llama.cpp's q8_K) d stays a
// float, as q8_K stores it.
template <class Round16 = RoundFp16>
inline void set_block_factors(QuantizedInput& q, int64_t b, float d, int32_t half0, int32_t half1,
                              Round16 round16 = {}) {
  const float d16 = q.group_blocks == 1 ? round16(d) : d;
  q.d[b] = d16;
  q.sum16[2 * b] = half0;
  q.sum16[2 * b + 1] = half1;
  q.sum[b] = half0 + half1;
  q.dsum[b] = d16 * static_cast<float>(half0 + half1);
  q.dsum_q8_1[b] = round16(d * static_cast<float>(half0 + half1));
  q.dsum16[2 * b] = d16 * static_cast<float>(half0);
  q.dsum16[2 * b + 1] = d16 * static_cast<float>(half1);
}

// Copies block blk of row m of q into its panel copy (QuantizedInput::panel_*, block-major,
// q + 128), which must be sized for M rows.
inline void store_panel_block(QuantizedInput& q, int64_t m, int64_t blk) {
  const int64_t b = m * (q.K / 32) + blk, dst = blk * q.M + m;
  const int8_t* in = q.q.data() + 32 * b;
  uint8_t* out = q.panel_q.data() + 32 * dst;
  for (int k = 0; k < 32; ++k) out[k] = static_cast<uint8_t>(in[k]) ^ 0x80u;
  q.panel_d[dst] = q.d[b];
  q.panel_dsum[dst] = q.dsum[b];
  q.panel_dsum_q8_1[dst] = q.dsum_q8_1[b];
  q.panel_dsum16[2 * dst] = q.dsum16[2 * b];
  q.panel_dsum16[2 * dst + 1] = q.dsum16[2 * b + 1];
  // Even blocks come first (callers walk a row's blocks in order): they clear the high half.
  const uint32_t sum16 = static_cast<uint16_t>(q.sum[b]);
  int32_t& pair = q.panel_sum_pairs[(blk / 2) * q.M + m];
  pair = static_cast<int32_t>(blk % 2 == 0 ? sum16
                                           : (static_cast<uint32_t>(pair) & 0xFFFFu) | sum16 << 16);
}

// Sizes the panel copy for q's M×K and marks it as to be written (panel_M = M).
void resize_panel_input(QuantizedInput& q);

// What matmul does to its input before the panel GEMM (M ≥ kPanelMinM on a target that has
// it): quantises X (one scale per group_blocks blocks, or the one step `static_step` > 0) and
// writes the block-major panel copy (panel_M = M). On a target with the panel GEMM only the copy
// is written, not q/d/sum…; elsewhere both. The copy is bit-identical to store_panel_block of
// quantize_input_reference (quantize_input_static_reference) on every target. For tests.
void quantize_panel_input(const float* X, int64_t M, int64_t K, QuantizedInput& q, int n_threads,
                          int group_blocks, float static_step = 0.0f);

// Sizes the QuantizedInput for M×K (K a multiple of 32, of 256 for group_blocks 8) and sets
// its group_blocks (1 or 8); allocation only when it grows.
void resize_quantized_input(int64_t M, int64_t K, QuantizedInput& q, int group_blocks = 1);
// The same for quantize_input_static: one scale per block, static_step = step rounded to fp16.
// Throws std::invalid_argument unless step is a positive finite number.
void resize_static_input(int64_t M, int64_t K, float step, QuantizedInput& q);

// The scale of a group of 32·group_blocks activations whose largest magnitude is amax. A
// shared (float, unrounded) scale never goes below a tiny floor: a denormal amax would
// otherwise give an infinite 1/d and garbage levels. (Per-block scales are left as they were:
// bit-identical to the q8_0 values llama.cpp computes.)
inline float activation_scale(float amax, int group_blocks) {
  const float d = amax / 127.0f;
  return group_blocks == 1 ? d : (d > 1e-30f ? d : 1e-30f);
}

// Throws std::invalid_argument (prefixed by `who`) unless W's outlier part is usable: both
// pointers set, 0 < n_outliers ≤ K, columns strictly ascending and inside [0, K). O(n_outliers),
// so matmul can afford it per call and never reads out of bounds on a hand-built WeightMatrix.
void check_outliers(const WeightMatrix& W, const char* who);

// Copies M rows of X (K wide) into inliers with W's outlier channels zeroed, and gathers those
// channels into outliers (M × n_outliers). Both are resized (no reallocation once warm).
void split_outliers(const WeightMatrix& W, const float* X, int64_t M, std::vector<float>& inliers,
                    std::vector<float>& outliers);

}  // namespace nibble::detail
