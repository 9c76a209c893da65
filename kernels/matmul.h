// Y = X · Wᵀ for every weight format nibble runs: the one entry point models use.
//
// W has `rows` (N) output rows of `cols` (K) elements in the weight type's own block layout
// (GGUF order: a row is K/block_elems consecutive blocks). X is M rows of K floats, Y is M rows
// of N floats. Integer formats quantise X once per call to int8 blocks of 32 with a float scale
// and a block sum (QuantizedInput), then take integer dot products per block and apply both
// scales inside the loop — weights are never expanded to floats.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "kernels/tensor_type.h"

namespace nibble {

// How a WeightMatrix's bytes are arranged.
//   kLayoutGguf    the file's own blocks, row after row (row_bytes apart).
//   kLayoutPacked4 Q4_0, Q8_0, Q4_1, IQ4_NL, Q4_K, Q5_K, built by repack_for_matmul
//                  (kernels/repack.h): rows in tiles of 4, each tile 64-byte aligned and holding
//                  the 4 rows' quant bytes interleaved in 64-byte runs followed by their fp16
//                  scales (and mins); Q4_K and Q5_K interleave each super-block's headers and
//                  sub-blocks (and Q5_K's fifth bits). row_bytes stays
//                  the GGUF row size; the layouts are documented in kernels/repack.h.
//   kLayoutRows16  Q4_0, Q4_1 and Q6_K on AVX-512, IQ4_NL, Q8_0, Q4_K and Q5_K on AVX-512 VNNI
//                  (repack_for_matmul, in memory only): rows in strips of 16, each block's quant
//                  dwords interleaved so that one vector lane is one row (kernels/repack.h).
//                  row_bytes stays the GGUF row size.
constexpr uint32_t kLayoutGguf = 0;
constexpr uint32_t kLayoutPacked4 = 1;
constexpr uint32_t kLayoutRows16 = 2;

struct WeightMatrix {
  TensorType type = TensorType::F32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;        // N, output features
  int64_t cols = 0;        // K, input features
  uint64_t row_bytes = 0;  // bytes between consecutive rows (kLayoutGguf); GGUF row size otherwise
  uint32_t layout = kLayoutGguf;
  // > 0: a static activation scale from calibration (W8A8, quant/): X is quantised with this
  // one step for every block, q = clamp(round(x / act_scale), −127, 127), instead of a scale
  // per block from the block's max. 0: dynamic per-block scales.
  float act_scale = 0.0f;
  // Outlier decomposition (q8o): input channels outlier_cols[0..n_outliers) (ascending) are
  // left out of the quantized product — their columns in `data` are zero — and multiply in F16
  // instead: Y += X[:, cols] · outlier_wᵀ with outlier_w rows × n_outliers (row-major F16 bits).
  // A few channels with huge activations would otherwise set the int8 activation steps and
  // drown every other channel in rounding; kept apart, they take no part in those steps.
  const int32_t* outlier_cols = nullptr;
  const uint16_t* outlier_w = nullptr;
  int64_t n_outliers = 0;
};

// X quantised to int8 blocks of 32 along K (Q8_0-style, float scale), with each block's integer
// sum so kernels can use unsigned×signed dot products (vpdpbusd) on offset weights.
struct QuantizedInput {
  int64_t M = 0, K = 0;                 // K is a multiple of 32
  // 32-blocks that share one scale: 1 (llama.cpp's q8_0 activations: d per block, rounded to
  // fp16) or 8 (its q8_K, which the 256-element K-quants and IQ4_XS pair with, and the other
  // sub-8-bit formats in prefill, see activation_group_blocks: one float d per 256, stored
  // repeated in each block's d). Every kernel reads d per block, so both work everywhere; the
  // panel GEMM uses 8 to apply d_a once per 256 instead of once per block.
  int group_blocks = 1;
  // > 0: quantised with this one step for every block of every row (quantize_input_static, a
  // calibrated W8A8 weight's act_scale): d[] holds it everywhere, and a weight with one scale per
  // row (Q8_C) can sum integer products over all of K before it touches a float.
  float static_step = 0.0f;
  std::vector<int8_t> q;                // M × K
  std::vector<float> d;                 // M × K/32 scales
  std::vector<int32_t> sum;             // M × K/32 Σq per block
  // M × K/16 Σq per half block: Q6_K scales 16-element sub-blocks, and its offset correction
  // (q+32 stored unsigned) needs the activation sum of each one separately.
  std::vector<int32_t> sum16;
  // d·Σq per block and per half block as floats: what a weight block's bias (offset or min)
  // multiplies. dsum_q8_1 is d·Σq rounded to fp16 as llama.cpp's q8_1 blocks store it, which
  // the mins of Q4_1 and Q5_1 (the formats llama.cpp pairs with q8_1) multiply instead.
  std::vector<float> dsum;       // M × K/32
  std::vector<float> dsum16;     // M × K/16
  std::vector<float> dsum_q8_1;  // M × K/32
  // Block-major copy for the prefill panel GEMM (kernels/gemm_panel-inl.h), made only when a
  // matmul of M ≥ 16 rows runs on a target that has it (panel_M == M then, else 0): block b of
  // row m at index b·M + m, q stored as q + 128 (the unsigned operand of vpdpbusd). On the
  // AVX-512 VNNI target matmul then writes only this copy, not the row-major arrays above.
  int64_t panel_M = 0;
  std::vector<uint8_t> panel_q;           // K/32 × M × 32
  std::vector<float> panel_d;             // K/32 × M
  std::vector<float> panel_dsum;          // K/32 × M
  std::vector<float> panel_dsum_q8_1;     // K/32 × M
  std::vector<float> panel_dsum16;        // K/32 × M × 2
  // Σq of blocks 2j and 2j+1 as the low and high int16 of one int32 (|Σq| ≤ 32·127), at index
  // j·M + m (a zero high half after an odd last block): the operand of vpdpwssd against a pair
  // of integer mins, see kIntMinFormat in gemm_panel-inl.h.
  std::vector<int32_t> panel_sum_pairs;  // ⌈K/64⌉ × M
};

// Scratch owned by the caller (one per session), so per-token work allocates nothing once warm.
class PromptMatmul;

// Where one thread's first rows of a matmul start: what another thread may prefetch for it.
struct WeightPrefetch {
  const uint8_t* bytes = nullptr;
  uint64_t size = 0;
};

// Decode (M ≤ 2) runs the same matmuls in the same order every token. For each weight a decode
// matmul started with, the first rows each thread took in the matmul that came next last time
// (keyed by that first weight's bytes): a thread that has run out of rows prefetches its share of
// the next matmul instead of idling at the join (run_jobs in matmul.cpp). A wrong guess costs
// only the prefetch.
struct DecodeLookahead {
  const uint8_t* previous = nullptr;  // the first weight of the last decode matmul
  std::unordered_map<const uint8_t*, std::vector<WeightPrefetch>> next;
};

struct MatmulWorkspace {
  int n_threads = 1;
  DecodeLookahead lookahead;
  QuantizedInput qx;
  // Weights with outliers (WeightMatrix::n_outliers): X with the outlier channels zeroed (what
  // the quantized product reads) and the outlier channels gathered (M × n_outliers).
  std::vector<float> x_inliers;
  std::vector<float> x_outliers;
  // When set, prompt matmuls of quantised weights (M ≥ prompt->min_rows()) go to it instead
  // (kernels/prompt_matmul.h: nibble's AMX kernel or oneDNN).
  std::shared_ptr<PromptMatmul> prompt;
};

// True when matmul() has a kernel for this type.
bool matmul_supports(TensorType type);

// Y[m*ldy + n] = Σ_k X[m*K + k] · W[n, k] for m < M, n < N; with outliers (n_outliers > 0) the
// quantized part runs on X with those channels zeroed and their F16 part is added in float
// (oneDNN is not used for such weights). Threads: ws.n_threads (OpenMP),
// output rows handed out in chunks dynamically, in decode (M ≤ 2) as per-thread ranges that a
// thread done with its own takes over from the back (a thread that was preempted does less).
// Throws std::invalid_argument on an unsupported type
// or K not a multiple of the type's block.
void matmul(const WeightMatrix& W, const float* X, int64_t M, float* Y, int64_t ldy,
            MatmulWorkspace& ws);

// Several weights that read the same X (q/k/v, gate/up): X is quantised once and all weights'
// row chunks share one parallel region (one fork/join instead of one per weight). Weights that
// disagree on act_scale or have outliers fall back to one matmul() each.
void matmul_shared_input(const WeightMatrix* const* Ws, float* const* Ys, const int64_t* ldys,
                         int n_weights, const float* X, int64_t M, MatmulWorkspace& ws);

// Reference path (scalar, double accumulation of the same integer block products): what the
// tests hold every target against. Accepts any layout (packed weights are unpacked first) and
// outliers (same semantics as matmul, the F16 part accumulated in double).
void matmul_reference(const WeightMatrix& W, const float* X, int64_t M, float* Y, int64_t ldy);

// Quantise M rows of X into q (scalar reference rounding: half away from zero), one scale per
// `group_blocks` 32-blocks (1 or 8, see QuantizedInput; 8 needs K a multiple of 256).
// Dispatched to the best Highway target, bit-identical to quantize_input_reference on every
// target.
void quantize_input(const float* X, int64_t M, int64_t K, QuantizedInput& q, int group_blocks = 1);
void quantize_input_reference(const float* X, int64_t M, int64_t K, QuantizedInput& q, int group_blocks = 1);

// How matmul quantises M × K activations for a weight of type t (QuantizedInput::group_blocks):
// one scale per 256 for the formats with 256-element super-blocks, as llama.cpp pairs them with
// q8_K, and for the other sub-8-bit formats in prefill (M ≥ 16) where K is a multiple of 256 —
// the prefill GEMM then applies the activation scale once per 256 instead of once per block
// (pp512 1.06–1.08× on AVX-512 VNNI for Q4_1/IQ4_NL, for a KL divergence to F16 0.7–0.8 %
// higher). Decode (M < 16) and the 8-bit formats keep one scale per 32-block, as llama.cpp's
// q8_0/q8_1. The same on every target, so every target computes the same products.
int activation_group_blocks(TensorType t, int64_t M, int64_t K);

// Quantise M rows of X with one fixed step (WeightMatrix::act_scale, rounded to fp16 as block
// scales are): q = clamp(round(x / step), −127, 127), half away from zero. Dispatched to the best
// Highway target (n_threads OpenMP threads), bit-identical to quantize_input_static_reference.
void quantize_input_static(const float* X, int64_t M, int64_t K, float step, QuantizedInput& q,
                           int n_threads = 1);
void quantize_input_static_reference(const float* X, int64_t M, int64_t K, float step,
                                     QuantizedInput& q);

}  // namespace nibble
