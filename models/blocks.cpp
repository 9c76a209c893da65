#include "models/blocks.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/ops.h"
#include "kernels/quantize.h"
#include "kernels/repack.h"
#include "loaders/mapped_file.h"

namespace nibble {
namespace {

std::string shape_string(const std::vector<uint64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

}  // namespace

WeightMatrix bind_matrix(const ModelFile& file, const std::string& name, int64_t in, int64_t out,
                         WeightStore* store) {
  const TensorInfo& t = file.tensor(name);
  if (t.dims.size() != 2 || t.dims[0] != static_cast<uint64_t>(in) ||
      t.dims[1] != static_cast<uint64_t>(out)) {
    throw FileError(file.path + ": tensor '" + name + "' has shape " + shape_string(t.dims) +
                    ", expected [" + std::to_string(in) + ", " + std::to_string(out) + "]");
  }
  if (!matmul_supports(t.type)) {
    throw FileError(file.path + ": tensor '" + name + "' has type " +
                    type_name(static_cast<uint32_t>(t.type)) +
                    ", which nibble cannot run yet");
  }
  WeightMatrix w;
  w.type = t.type;
  w.data = t.data;
  w.rows = out;
  w.cols = in;
  w.row_bytes = row_bytes(static_cast<uint32_t>(t.type), static_cast<uint64_t>(in));
  if (store == nullptr || !has_packed_layout(w)) return w;
  store->packed.push_back(repack_for_matmul(w));
  // The packed copy replaces the tensor's file pages for good: drop them so the weights are not
  // resident twice. Only when the bytes really are the mapping's (not a loader-built buffer).
  const MappedFile* map = file.mapping.get();
  if (map != nullptr && t.file_offset <= map->size() && t.data == map->data() + t.file_offset) {
    map->release_pages(t.file_offset, t.nbytes);
  }
  return store->packed.back().view;
}

const float* bind_vector(const ModelFile& file, const std::string& name, int64_t n) {
  const TensorInfo& t = file.tensor(name);
  if (t.type != TensorType::F32 || t.n_elements() != static_cast<uint64_t>(n)) {
    throw FileError(file.path + ": tensor '" + name + "' should be F32 with " +
                    std::to_string(n) + " elements, found " +
                    type_name(static_cast<uint32_t>(t.type)) + " " + shape_string(t.dims));
  }
  if (reinterpret_cast<uintptr_t>(t.data) % alignof(float) != 0) {
    throw FileError(file.path + ": tensor '" + name + "' is not 4-byte aligned");
  }
  return reinterpret_cast<const float*>(t.data);
}

int64_t meta_int(const ModelFile& file, const std::string& key) {
  const auto v = file.meta.get_int(key);
  if (!v) throw FileError(file.path + ": missing metadata key " + key);
  if (*v <= 0) throw FileError(file.path + ": metadata " + key + " must be positive");
  return *v;
}

int64_t meta_int_or(const ModelFile& file, const std::string& key, int64_t fallback) {
  const auto v = file.meta.get_int(key);
  return v ? *v : fallback;
}

float meta_float_or(const ModelFile& file, const std::string& key, float fallback) {
  const auto v = file.meta.get_float(key);
  return v ? static_cast<float>(*v) : fallback;
}

void embed_tokens(const WeightMatrix& table, const int32_t* tokens, int64_t n, float scale,
                  float* out) {
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= table.rows) {
      throw std::out_of_range("token id " + std::to_string(tokens[i]) + " outside vocabulary of " +
                              std::to_string(table.rows));
    }
    float* row = out + i * table.cols;
    dequantize_row(table.type, table.data + tokens[i] * table.row_bytes, table.cols, row);
    if (scale != 1.0f) {
      for (int64_t j = 0; j < table.cols; ++j) row[j] *= scale;
    }
  }
}

void rms_norm_rows(const float* x, const float* w, int64_t n, int64_t dim, float eps, float* out,
                   int n_threads) {
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n > 1)
  for (int64_t i = 0; i < n; ++i) rms_norm(x + i * dim, w, dim, eps, out + i * dim);
}

void add_rows(float* x, const float* y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] += y[i];
}

void cached_attention(const float* q, int64_t n, int64_t pos0, KvCache& kv, int64_t layer,
                      const AttentionShape& shape, ForwardScratch& s, float* att) {
  const int64_t q_dim = shape.n_head * shape.head_dim;
  const int64_t group = shape.n_head / shape.n_head_kv;  // query heads per kv head (GQA)
  const int64_t n_ctx = kv.n_ctx();
  if (n == 1) {
    // Decode: one query per head; parallel over heads, each streaming its keys once anyway.
#pragma omp parallel for num_threads(s.ws.n_threads) schedule(dynamic, 1)
    for (int64_t h = 0; h < shape.n_head; ++h) {
      // Causal: the token sees positions ≤ its own; a sliding window also drops the oldest.
      const int64_t first = shape.window > 0 ? std::max<int64_t>(0, pos0 - shape.window + 1) : 0;
      const int64_t kvh = h / group;
      float* scores = s.scores.data() + static_cast<int64_t>(omp_get_thread_num()) * n_ctx;
      attention_head(q + h * shape.head_dim, kv.k(layer, first) + kvh * shape.head_dim,
                     kv.v(layer, first) + kvh * shape.head_dim, pos0 - first + 1, shape.head_dim,
                     kv.kv_dim(), shape.scale, scores, att + h * shape.head_dim);
    }
    return;
  }
  // Prefill: work items are (kv head, block of consecutive tokens); attention_batch reads each
  // K/V tile once for all of a block's tokens and the group's query heads instead of once per
  // (token, head). Blocks shrink below the kernel's preferred size only when there would
  // otherwise be too few items to keep every thread busy.
  const int n_threads = s.ws.n_threads;
  const int64_t scratch_floats = attention_batch_scratch_floats(group, shape.head_dim);
  if (static_cast<int64_t>(s.attn.size()) < n_threads * scratch_floats) {
    s.attn.resize(static_cast<size_t>(n_threads * scratch_floats));
  }
  const int64_t want_items = 4 * static_cast<int64_t>(n_threads);
  const int64_t block = std::clamp<int64_t>((n * shape.n_head_kv + want_items - 1) / want_items, 1,
                                            attention_batch_block_tokens(group));
  const int64_t n_blocks = (n + block - 1) / block;
  const int64_t work = n_blocks * shape.n_head_kv;
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
  for (int64_t w = 0; w < work; ++w) {
    // Last blocks first: under the causal mask they see the most keys, and handing the big items
    // out early keeps the tail of the dynamic schedule short.
    const int64_t b = n_blocks - 1 - w / shape.n_head_kv, kvh = w % shape.n_head_kv;
    const int64_t i0 = b * block, nt = std::min(block, n - i0);
    const int64_t off = i0 * q_dim + kvh * group * shape.head_dim;  // first query head of the group
    float* scratch = s.attn.data() + static_cast<int64_t>(omp_get_thread_num()) * scratch_floats;
    attention_batch(q + off, q_dim, nt, pos0 + i0, group, kv.k(layer, 0) + kvh * shape.head_dim,
                    kv.v(layer, 0) + kvh * shape.head_dim, kv.kv_dim(), shape.head_dim, shape.scale,
                    shape.window, att + off, q_dim, scratch);
  }
}

}  // namespace nibble
