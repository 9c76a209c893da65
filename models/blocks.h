// Building blocks shared by the transformer families: binding weights from a file with shape
// and type checks, embedding lookup, row-wise norms, rotary self-attention over the KV cache.
#pragma once

#include <cstdint>
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
struct WeightStore {
  std::vector<PackedWeight> packed;
};
WeightMatrix bind_matrix(const ModelFile& file, const std::string& name, int64_t in, int64_t out,
                         WeightStore* store = nullptr);
// A vector of n F32 values (norm weights).
const float* bind_vector(const ModelFile& file, const std::string& name, int64_t n);

// Reads a `prefix.key` hyperparameter; throws FileError when a required one is missing.
int64_t meta_int(const ModelFile& file, const std::string& key);
int64_t meta_int_or(const ModelFile& file, const std::string& key, int64_t fallback);
float meta_float_or(const ModelFile& file, const std::string& key, float fallback);

// Rows of the embedding table (any dequantisable type) for each token, scaled by `scale`.
void embed_tokens(const WeightMatrix& table, const int32_t* tokens, int64_t n, float scale,
                  float* out);

// out[i] = rms_norm(x[i]) · w for n rows of `dim`.
void rms_norm_rows(const float* x, const float* w, int64_t n, int64_t dim, float eps, float* out,
                   int n_threads);

// x[i] += y[i] over n·dim elements.
void add_rows(float* x, const float* y, int64_t count);

struct AttentionShape {
  int64_t n_head, n_head_kv, head_dim;
  float scale;          // applied to q·k
  int64_t window = 0;   // sliding window in positions (0: causal over the whole cache)
};

// Causal multi-head attention for n new tokens at pos0.. whose q (n × n_head·head_dim) is
// given and whose k/v are already stored in the cache of `layer`. Writes att (n × q_dim).
void cached_attention(const float* q, int64_t n, int64_t pos0, KvCache& kv, int64_t layer,
                      const AttentionShape& shape, ForwardScratch& s, float* att);

}  // namespace nibble
