#include "models/blocks.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
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

// Sets w's outlier part from `name.outliers` and `nibble.outlier_cols.name`, if the file has
// either (module comment in blocks.h). Validates everything the matmul later trusts.
void bind_outliers(const ModelFile& file, const std::string& name, WeightMatrix& w, WeightStore* store) {
  const std::string tensor_name = name + ".outliers";
  const std::string cols_key = "nibble.outlier_cols." + name;
  const TensorInfo* t = file.find_tensor(tensor_name);
  const bool has_cols = file.meta.has(cols_key);
  if (t == nullptr && !has_cols) return;
  const std::string where = file.path + ": tensor '" + name + "': ";
  if (t == nullptr) throw FileError(where + cols_key + " is set but tensor '" + tensor_name + "' is missing");
  if (!has_cols) throw FileError(where + "tensor '" + tensor_name + "' has no " + cols_key);
  if (store == nullptr) {
    throw FileError(where + "has an outlier part ('" + tensor_name + "'), which this weight cannot use");
  }
  const std::vector<int64_t>* cols = file.meta.get_int_array(cols_key);
  if (cols == nullptr || cols->empty()) throw FileError(where + cols_key + " must be a non-empty integer array");
  const uint64_t n_out = cols->size();
  if (t->type != TensorType::F16 || t->dims.size() != 2 || t->dims[0] != n_out ||
      t->dims[1] != static_cast<uint64_t>(w.rows)) {
    throw FileError(where + "'" + tensor_name + "' is " + type_name(static_cast<uint32_t>(t->type)) + " " +
                    shape_string(t->dims) + ", expected F16 [" + std::to_string(n_out) + ", " +
                    std::to_string(w.rows) + "] (one F16 weight per output row and listed channel)");
  }
  if (t->layout != kLayoutGguf) throw FileError(where + "'" + tensor_name + "' must be stored plain (layout 0)");
  if (reinterpret_cast<uintptr_t>(t->data) % alignof(uint16_t) != 0) {
    throw FileError(where + "'" + tensor_name + "' is not 2-byte aligned");
  }
  std::vector<int32_t> ints(n_out);
  for (uint64_t j = 0; j < n_out; ++j) {
    const int64_t c = (*cols)[j];
    if (c < 0 || c >= w.cols || (j > 0 && c <= (*cols)[j - 1])) {
      throw FileError(where + cols_key + " must hold strictly ascending input channels below " +
                      std::to_string(w.cols) + " (entry " + std::to_string(j) + " is " + std::to_string(c) + ")");
    }
    ints[j] = static_cast<int32_t>(c);
  }
  store->outlier_cols.push_back(std::move(ints));
  w.outlier_cols = store->outlier_cols.back().data();
  w.outlier_w = reinterpret_cast<const uint16_t*>(t->data);
  w.n_outliers = static_cast<int64_t>(n_out);
}

// w repacked by repack_for_matmul into the store. The packed copy replaces the tensor's file
// pages for good: drop them so the weights are not resident twice. Only when the bytes really are
// the mapping's (not a loader-built buffer).
WeightMatrix repack_and_release(const ModelFile& file, const TensorInfo& t, const WeightMatrix& w,
                                WeightStore& store) {
  store.packed.push_back(repack_for_matmul(w));
  const MappedFile* map = file.mapping.get();
  if (map != nullptr && t.file_offset <= map->size() && t.data == map->data() + t.file_offset) {
    map->release_pages(t.file_offset, t.nbytes);
  }
  return store.packed.back().view;
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
  // A static activation scale from calibrated quantization (q8a8, q8o; docs/format.md).
  const std::string act_key = "nibble.act_scale." + name;
  if (file.meta.has(act_key)) {
    const std::optional<double> s = file.meta.get_float(act_key);
    if (!s || !(*s > 0.0) || !std::isfinite(*s) || *s > 65504.0) {
      throw FileError(file.path + ": " + act_key + " must be one positive number below 65504");
    }
    w.act_scale = static_cast<float>(*s);
  }
  bind_outliers(file, name, w, store);
  if (t.layout == kLayoutPacked4) {
    // Stored pre-packed (nibble files): used where it lies, no repack and no page release —
    // the mapping's pages are the weights. The loader checked the byte size for this layout.
    if (store == nullptr) {
      throw FileError(file.path + ": tensor '" + name + "' is stored packed (layout 1) but is "
                      "read row by row here; it must be stored plain (layout 0)");
    }
    if (!packed_layout_fits(w)) {  // (w is still kLayoutGguf: asks whether a packed form exists)
      throw FileError(file.path + ": tensor '" + name + "' is stored packed but " +
                      type_name(static_cast<uint32_t>(t.type)) + " " + shape_string(t.dims) +
                      " has no packed layout");
    }
    w.layout = kLayoutPacked4;
    // Where the running target reads another layout faster (kLayoutRows16), repack once, as
    // GGUF weights are.
    if (has_packed_layout(w)) return repack_and_release(file, t, w, *store);
    // Tiles must be 64-byte aligned: true in a mapping (page-aligned data, 64-byte offsets), not
    // necessarily in a file read into an ordinary buffer (--no-mmap); copy those once.
    if (reinterpret_cast<uintptr_t>(t.data) % 64 != 0) {
      PackedWeight copy;
      copy.storage = allocate_weight_storage(t.nbytes);
      copy.storage_bytes = t.nbytes;
      std::memcpy(copy.storage.get(), t.data, t.nbytes);
      copy.view = w;
      copy.view.data = copy.storage.get();
      store->packed.push_back(std::move(copy));
      return store->packed.back().view;
    }
    return w;
  }
  if (store == nullptr || !has_packed_layout(w)) return w;
  return repack_and_release(file, t, w, *store);
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
  if (!v && file.meta.has(key)) {
    const MetaValue* value = file.meta.find(key);
    throw FileError(file.path + ": metadata " + key + " is not a single integer" +
                    (value->type == MetaType::Array
                         ? " (per-layer values are not supported)"
                         : ""));
  }
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

ModelConfig read_base_config(const ModelFile& f, float default_norm_eps) {
  const std::string p = f.architecture() + ".";
  ModelConfig c;
  c.arch = f.architecture();
  c.name = f.meta.get_string("general.name").value_or("");
  c.n_embd = meta_int(f, p + "embedding_length");
  c.n_layer = meta_int(f, p + "block_count");
  c.n_ff = meta_int(f, p + "feed_forward_length");
  c.n_head = meta_int(f, p + "attention.head_count");
  c.n_head_kv = meta_int_or(f, p + "attention.head_count_kv", c.n_head);
  c.n_ctx_train = meta_int_or(f, p + "context_length", 2048);
  if (c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0) {
    throw FileError(f.path + ": " + std::to_string(c.n_head) + " query heads cannot be shared by " +
                    std::to_string(c.n_head_kv) + " key/value heads");
  }
  // The head size is its own hyperparameter (Gemma 3: 256 with n_embd 640 and 4 heads); only
  // when the file leaves it out is it n_embd / n_head.
  if (!f.meta.has(p + "attention.key_length") && c.n_embd % c.n_head != 0) {
    throw FileError(f.path + ": " + std::to_string(c.n_head) + " heads do not divide embedding length " +
                    std::to_string(c.n_embd) + " and attention.key_length is not given");
  }
  c.head_dim = f.meta.has(p + "attention.key_length") ? meta_int(f, p + "attention.key_length")
                                                      : c.n_embd / c.n_head;
  const int64_t value_length = meta_int_or(f, p + "attention.value_length", c.head_dim);
  if (value_length != c.head_dim) {
    throw FileError(f.path + ": attention.value_length " + std::to_string(value_length) +
                    " differs from key_length " + std::to_string(c.head_dim) + " (not supported)");
  }
  c.norm_eps = meta_float_or(f, p + "attention.layer_norm_rms_epsilon", default_norm_eps);
  if (!(c.norm_eps >= 0.0f)) throw FileError(f.path + ": negative RMSNorm epsilon");
  c.rope_base = meta_float_or(f, p + "rope.freq_base", 10000.0f);
  if (!(c.rope_base > 0.0f)) throw FileError(f.path + ": rope.freq_base must be positive");
  c.rope_dim = meta_int_or(f, p + "rope.dimension_count", c.head_dim);
  if (c.rope_dim <= 0 || c.rope_dim > c.head_dim || c.rope_dim % 2 != 0) {
    throw FileError(f.path + ": rope.dimension_count " + std::to_string(c.rope_dim) +
                    " does not fit head size " + std::to_string(c.head_dim));
  }
  // As llama.cpp: the scaling type defaults to linear, which does nothing without a factor.
  const std::string scaling = f.meta.get_string(p + "rope.scaling.type").value_or("linear");
  float factor = meta_float_or(f, p + "rope.scaling.factor", 0.0f);
  if (factor == 0.0f) factor = meta_float_or(f, p + "rope.scale_linear", 0.0f);
  if (scaling == "linear") {
    if (factor < 0.0f || !std::isfinite(factor)) {
      throw FileError(f.path + ": rope scaling factor must be positive");
    }
    if (factor > 0.0f) c.rope_freq_scale = 1.0f / factor;
  } else if (scaling != "none") {
    throw FileError(f.path + ": rope scaling '" + scaling + "' is not supported yet");
  }
  const TensorInfo& embd = f.tensor("token_embd.weight");
  if (embd.dims.size() != 2) throw FileError(f.path + ": token_embd.weight must be 2-D");
  c.n_vocab = static_cast<int64_t>(embd.dims[1]);
  return c;
}

void refuse_bias_tensors(const ModelFile& f) {
  for (const TensorInfo& t : f.tensors) {
    if (t.name.size() > 5 && t.name.compare(t.name.size() - 5, 5, ".bias") == 0) {
      throw FileError(f.path + ": bias tensor '" + t.name + "' is not supported yet");
    }
  }
}

AttentionWeights bind_attention(const ModelFile& f, const std::string& prefix,
                                const ModelConfig& c, WeightStore* store) {
  if (f.find_tensor(prefix + "attn_qkv.weight")) {
    throw FileError(f.path + ": fused tensor '" + prefix +
                    "attn_qkv.weight' is not supported yet (separate attn_q/k/v expected)");
  }
  AttentionWeights w;
  w.wq = bind_matrix(f, prefix + "attn_q.weight", c.n_embd, c.q_dim(), store);
  w.wk = bind_matrix(f, prefix + "attn_k.weight", c.n_embd, c.kv_dim(), store);
  w.wv = bind_matrix(f, prefix + "attn_v.weight", c.n_embd, c.kv_dim(), store);
  w.wo = bind_matrix(f, prefix + "attn_output.weight", c.q_dim(), c.n_embd, store);
  return w;
}

FfnWeights bind_ffn(const ModelFile& f, const std::string& prefix, const ModelConfig& c,
                    WeightStore* store) {
  FfnWeights w;
  w.gate = bind_matrix(f, prefix + "ffn_gate.weight", c.n_embd, c.n_ff, store);
  w.up = bind_matrix(f, prefix + "ffn_up.weight", c.n_embd, c.n_ff, store);
  w.down = bind_matrix(f, prefix + "ffn_down.weight", c.n_ff, c.n_embd, store);
  return w;
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

// Threads only for enough work to repay waking them: not for one decode token's rows (or
// Gemma's few head-sized q/k norm rows), which take less time than a fork/join.
constexpr int64_t kMinParallelFloats = 8192;

void rms_norm_rows(const float* x, const float* w, int64_t n, int64_t dim, float eps, float* out,
                   int n_threads) {
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n > 1 && n * dim >= kMinParallelFloats)
  for (int64_t i = 0; i < n; ++i) rms_norm(x + i * dim, w, dim, eps, out + i * dim);
}

namespace {
// fn(begin, end) over [0, count) in chunks, across threads once there is prefill-sized work.
// Serial element-wise steps cost twice at 2 threads: the other core waits at the next fork.
template <class Fn>
void for_each_chunk(int64_t count, int n_threads, Fn&& fn) {
  constexpr int64_t kChunk = 4 * kMinParallelFloats;
  const int64_t n_chunks = (count + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_chunks > 1)
  for (int64_t c = 0; c < n_chunks; ++c) fn(c * kChunk, std::min(count, (c + 1) * kChunk));
}
}  // namespace

void add_rows(float* x, const float* y, int64_t count, int n_threads) {
  for_each_chunk(count, n_threads, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) x[i] += y[i];
  });
}

void project_qkv(const AttentionWeights& w, const float* h, int64_t n, ForwardScratch& s) {
  const WeightMatrix* qkv[] = {&w.wq, &w.wk, &w.wv};
  float* outs[] = {s.q.data(), s.k.data(), s.v.data()};
  const int64_t lds[] = {w.wq.rows, w.wk.rows, w.wv.rows};
  matmul_shared_input(qkv, outs, lds, 3, h, n, s.ws);
}

namespace {
// The angles of positions pos0..pos0+n−1 for r, from s.rope_angles when an earlier layer of this
// forward call computed them.
const ForwardScratch::RopeAngles& angles_for(const RopeParams& r, int64_t n, int64_t pos0,
                                             ForwardScratch& s) {
  for (const ForwardScratch::RopeAngles& a : s.rope_angles) {
    if (a.rot_dim == r.dim && a.pos0 == pos0 && a.n == n && a.base == r.base &&
        a.freq_scale == r.freq_scale) {
      return a;
    }
  }
  ForwardScratch::RopeAngles& a = s.rope_angles[s.next_rope_angles];
  s.next_rope_angles = (s.next_rope_angles + 1) % static_cast<int>(s.rope_angles.size());
  const int64_t half = r.dim / 2;
  a.cos.resize(static_cast<size_t>(n * half));
  a.sin.resize(static_cast<size_t>(n * half));
#pragma omp parallel for num_threads(s.ws.n_threads) schedule(static) if (n > 1)
  for (int64_t i = 0; i < n; ++i) {
    rope_angles(r.dim, pos0 + i, r.base, r.freq_scale, a.cos.data() + i * half,
                a.sin.data() + i * half);
  }
  a.rot_dim = r.dim;
  a.pos0 = pos0;
  a.n = n;
  a.base = r.base;
  a.freq_scale = r.freq_scale;
  return a;
}
}  // namespace

void rope_and_cache(const ModelConfig& c, const RopeParams& r, int64_t n, int64_t pos0,
                    KvCache& kv, int64_t layer, ForwardScratch& s) {
  const int64_t QD = c.q_dim(), KV = c.kv_dim(), half = r.dim / 2;
  const ForwardScratch::RopeAngles& a = angles_for(r, n, pos0, s);
#pragma omp parallel for num_threads(s.ws.n_threads) schedule(static) if (n > 1)
  for (int64_t i = 0; i < n; ++i) {
    float* q = s.q.data() + i * QD;
    float* k = s.k.data() + i * KV;
    const float* cos = a.cos.data() + i * half;
    const float* sin = a.sin.data() + i * half;
    rope_with_angles(q, c.n_head, c.head_dim, r.dim, cos, sin, r.style);
    rope_with_angles(k, c.n_head_kv, c.head_dim, r.dim, cos, sin, r.style);
    const float* v = s.v.data() + i * KV;
    for (int64_t h = 0; h < c.n_head_kv; ++h) {
      std::copy_n(k + h * c.head_dim, c.head_dim, kv.k(layer, h, pos0 + i));
      std::copy_n(v + h * c.head_dim, c.head_dim, kv.v(layer, h, pos0 + i));
    }
  }
}

void cached_attention(const float* q, int64_t n, int64_t pos0, KvCache& kv, int64_t layer,
                      const AttentionShape& shape, ForwardScratch& s, float* att) {
  const int64_t q_dim = shape.n_head * shape.head_dim;
  const int64_t group = shape.n_head / shape.n_head_kv;  // query heads per kv head (GQA)
  // Work items are (kv head, block of consecutive tokens); attention_batch reads each K/V tile
  // once for all of a block's tokens and the group's query heads instead of once per (token,
  // head). Blocks shrink below the kernel's preferred size only when there would otherwise be too
  // few items to keep every thread busy. Decode (n = 1) is one item per kv head, so one pass over
  // the cache serves the group's query heads (a per-head kernel read it once per query head:
  // docs/design.md, "Attention").
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
    attention_batch(q + off, q_dim, nt, pos0 + i0, group, kv.k(layer, kvh, 0), kv.v(layer, kvh, 0),
                    shape.head_dim, shape.head_dim, shape.scale, shape.window, att + off, q_dim,
                    scratch);
  }
}

void gated_ffn(const FfnWeights& w, GateActivation act, const float* h, int64_t n, int64_t layer,
               ForwardScratch& s, float* out) {
  const int64_t F = w.gate.rows;
  const WeightMatrix* gu[] = {&w.gate, &w.up};
  float* gu_out[] = {s.hb.data(), s.hb2.data()};
  const int64_t gu_ld[] = {F, F};
  matmul_shared_input(gu, gu_out, gu_ld, 2, h, n, s.ws);
  float* g = s.hb.data();
  const float* u = s.hb2.data();
  for_each_chunk(n * F, s.ws.n_threads, [&](int64_t i0, int64_t i1) {
    switch (act) {
      case GateActivation::kSilu:
        silu_mul(g + i0, u + i0, i1 - i0, g + i0);
        break;
      case GateActivation::kGeluTanh:
        gelu_tanh_mul(g + i0, u + i0, i1 - i0, g + i0);
        break;
    }
  });
  s.observe(layer, LinearSite::kFfnDown, s.hb.data(), n, F);
  matmul(w.down, s.hb.data(), n, out, w.down.rows, s.ws);
}

void output_logits(const WeightMatrix& head, const float* norm_w, float eps, const float* x,
                   int64_t n, bool all_logits, ForwardScratch& s, float* logits) {
  const int64_t D = head.cols;
  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t rows = n - first;
  rms_norm_rows(x + first * D, norm_w, rows, D, eps, s.xb.data(), s.ws.n_threads);
  s.observe(-1, LinearSite::kHead, s.xb.data(), rows, D);
  matmul(head, s.xb.data(), rows, logits, head.rows, s.ws);
}

}  // namespace nibble
