// Building blocks shared by the transformer families: the hyperparameters they all read, binding
// weights from a file with shape and type checks, embedding lookup, row-wise norms, the q/k/v
// projection, rotary embedding into the KV cache, cached self-attention (GQA, optional sliding
// window), the gated feed-forward and the output head. A family's forward() is these steps in
// its own order plus whatever is particular to it.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/repack.h"
#include "models/model.h"

namespace nibble {

// A linear layer's weight y = W x with x of length `in` and y of length `out` (GGUF dims
// [in, out]). Throws FileError naming the file and tensor on a missing tensor, a wrong shape,
// or a type without a matmul kernel.
//
// With a `store`, weights that have a kernel-native layout (Q4_0, Q8_0: kernels/repack.h) are
// repacked into it — the returned view points into the store, which must outlive it — and the
// file pages they came from are given back to the kernel. Without one (e.g. the embedding
// table, which embed_tokens reads row by row in GGUF layout) the view points into the file.
//
// Outlier decomposition (q8o, docs/format.md): when the file also holds `NAME.outliers` (F16,
// dims [n_outliers, out]) and `nibble.outlier_cols.NAME` (n_outliers strictly ascending input
// channels), the view gets that outlier part: the F16 weights are used where they lie, the
// column indices are kept in the store as int32 (so one is required). Anything inconsistent, or
// only one of the two halves present, is a FileError.
struct WeightStore {
  std::vector<PackedWeight> packed;
  // A deque: views point into its vectors, and growing it never moves the ones already there.
  std::deque<std::vector<int32_t>> outlier_cols;
};
WeightMatrix bind_matrix(const ModelFile& file, const std::string& name, int64_t in, int64_t out,
                         WeightStore* store = nullptr);
// A vector of n F32 values (norm weights).
const float* bind_vector(const ModelFile& file, const std::string& name, int64_t n);

// Reads a `prefix.key` hyperparameter; throws FileError when a required one is missing, not a
// positive integer, or given per layer (an array).
int64_t meta_int(const ModelFile& file, const std::string& key);
int64_t meta_int_or(const ModelFile& file, const std::string& key, int64_t fallback);
float meta_float_or(const ModelFile& file, const std::string& key, float fallback);

// The hyperparameters every transformer family reads, from `<architecture>.` keys as llama.cpp
// reads them: embedding_length, block_count, feed_forward_length, attention.head_count(_kv),
// attention.key_length (the head size; default n_embd / n_head — it need not be), the RMSNorm
// epsilon (default_norm_eps when absent), context_length, rope.freq_base / dimension_count and
// linear rope scaling (rope.scaling.factor, or the legacy rope.scale_linear), and n_vocab from
// token_embd.weight. Throws FileError naming the file for missing or inconsistent values.
// Families set what is theirs (rope style, sliding windows, …) on the result.
ModelConfig read_base_config(const ModelFile& file, float default_norm_eps);

// Neither family has bias tensors; a file with any would run wrongly, so it is refused.
void refuse_bias_tensors(const ModelFile& file);

// One layer's attention and feed-forward matrices under `blk.N.` (prefix), shapes from c.
struct AttentionWeights {
  WeightMatrix wq, wk, wv, wo;
};
struct FfnWeights {
  WeightMatrix gate, up, down;
};
AttentionWeights bind_attention(const ModelFile& file, const std::string& prefix,
                                const ModelConfig& c, WeightStore* store);
FfnWeights bind_ffn(const ModelFile& file, const std::string& prefix, const ModelConfig& c,
                    WeightStore* store);

// Rows of the embedding table (any dequantisable type) for each token, scaled by `scale`.
void embed_tokens(const WeightMatrix& table, const int32_t* tokens, int64_t n, float scale,
                  float* out);

// out[i] = rms_norm(x[i]) · w for n rows of `dim`.
void rms_norm_rows(const float* x, const float* w, int64_t n, int64_t dim, float eps, float* out,
                   int n_threads);

// x[i] += y[i] over n·dim elements (in parallel for prefill-sized counts).
void add_rows(float* x, const float* y, int64_t count, int n_threads);

// s.q, s.k, s.v (n rows of q_dim, kv_dim, kv_dim) = h·Wq, h·Wk, h·Wv for n rows of h; the
// activations are quantised once for the three.
void project_qkv(const AttentionWeights& w, const float* h, int64_t n, ForwardScratch& s);

// Rotary position embedding of one layer.
struct RopeParams {
  int64_t dim;       // leading dimensions of each head that rotate
  float base;        // θ_i = base^(−2i/dim)
  float freq_scale;  // positions are multiplied by this (linear scaling: 1 / factor)
  RopeStyle style;
};

// Rotates the q (s.q) and k (s.k) heads of n tokens at positions pos0.. and appends the
// tokens' keys and values (s.k, s.v) to the layer's cache.
void rope_and_cache(const ModelConfig& c, const RopeParams& rope, int64_t n, int64_t pos0,
                    KvCache& kv, int64_t layer, ForwardScratch& s);

struct AttentionShape {
  int64_t n_head, n_head_kv, head_dim;
  float scale;          // applied to q·k
  int64_t window = 0;   // sliding window in positions (0: causal over the whole cache)
};

// Causal multi-head attention for n new tokens at pos0.. whose q (n × n_head·head_dim) is
// given and whose k/v are already stored in the cache of `layer`. Writes att (n × q_dim).
// Token p sees cached position k iff k ≤ p and, with a window, p − k < window (the window counts
// the token itself).
void cached_attention(const float* q, int64_t n, int64_t pos0, KvCache& kv, int64_t layer,
                      const AttentionShape& shape, ForwardScratch& s, float* att);

// The gate's nonlinearity in a gated feed-forward.
enum class GateActivation {
  kSilu,      // SwiGLU (LLaMA)
  kGeluTanh,  // GeGLU with GELU's tanh approximation (Gemma)
};

// out = (act(h·Wgate) ⊙ h·Wup)·Wdown for n rows of h (n_embd → n_ff → n_embd; s.hb and s.hb2
// hold the n_ff-wide intermediates). out may be s.xb or s.xb2 but not h. `layer` names the
// down projection's input for s.observe.
void gated_ffn(const FfnWeights& w, GateActivation act, const float* h, int64_t n, int64_t layer,
               ForwardScratch& s, float* out);

// logits = rms_norm(x)·norm_w·Woutᵀ for the last of n rows of x, or for all n when all_logits
// (only the wanted rows go through the large head). Uses s.xb.
void output_logits(const WeightMatrix& head, const float* norm_w, float eps, const float* x,
                   int64_t n, bool all_logits, ForwardScratch& s, float* logits);

}  // namespace nibble
