// The LLaMA family (Llama 1/2/3, TinyLlama, SmolLM2, llama2.c models): pre-norm blocks with
// RMSNorm, rotary grouped-query attention and a SwiGLU feed-forward.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "models/blocks.h"
#include "models/model.h"

namespace nibble {
namespace {

struct LlamaLayer {
  const float* attn_norm;
  WeightMatrix wq, wk, wv, wo;
  const float* ffn_norm;
  WeightMatrix w_gate, w_up, w_down;
};

class LlamaModel final : public Model {
 public:
  explicit LlamaModel(const ModelFile& file);
  void forward(const int32_t* tokens, int64_t n, int64_t pos0, KvCache& kv, ForwardScratch& s,
               float* logits, bool all_logits) const override;

 private:
  WeightStore store_;  // owns the repacked (kernel-layout) weights the views below point into
  WeightMatrix token_embd_, output_;
  const float* output_norm_;
  std::vector<LlamaLayer> layers_;
};

ModelConfig read_config(const ModelFile& f) {
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
  if (c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0 || c.n_embd % c.n_head != 0) {
    throw FileError(f.path + ": head counts " + std::to_string(c.n_head) + "/" +
                    std::to_string(c.n_head_kv) + " do not divide embedding length " +
                    std::to_string(c.n_embd));
  }
  c.head_dim = meta_int_or(f, p + "attention.key_length", c.n_embd / c.n_head);
  c.norm_eps = meta_float_or(f, p + "attention.layer_norm_rms_epsilon", 1e-5f);
  c.rope_base = meta_float_or(f, p + "rope.freq_base", 10000.0f);
  c.rope_dim = meta_int_or(f, p + "rope.dimension_count", c.head_dim);
  if (c.rope_dim <= 0 || c.rope_dim > c.head_dim || c.rope_dim % 2 != 0) {
    throw FileError(f.path + ": rope.dimension_count " + std::to_string(c.rope_dim) +
                    " does not fit head size " + std::to_string(c.head_dim));
  }
  const std::string scaling = f.meta.get_string(p + "rope.scaling.type").value_or("none");
  if (scaling == "linear") {
    const float factor = meta_float_or(f, p + "rope.scaling.factor", 1.0f);
    if (!(factor > 0)) throw FileError(f.path + ": rope.scaling.factor must be positive");
    c.rope_freq_scale = 1.0f / factor;
  } else if (scaling != "none") {
    throw FileError(f.path + ": rope scaling '" + scaling + "' is not supported yet");
  }
  if (f.find_tensor("rope_freqs.weight")) {
    throw FileError(f.path + ": per-frequency rope factors (rope_freqs.weight, Llama 3.1 style) "
                             "are not supported yet");
  }
  const TensorInfo& embd = f.tensor("token_embd.weight");
  if (embd.dims.size() != 2) throw FileError(f.path + ": token_embd.weight must be 2-D");
  c.n_vocab = static_cast<int64_t>(embd.dims[1]);
  return c;
}

LlamaModel::LlamaModel(const ModelFile& f) {
  config_ = read_config(f);
  const ModelConfig& c = config_;
  for (const TensorInfo& t : f.tensors) {
    if (t.name.size() > 5 && t.name.compare(t.name.size() - 5, 5, ".bias") == 0) {
      throw FileError(f.path + ": bias tensor '" + t.name + "' is not supported yet");
    }
  }
  token_embd_ = bind_matrix(f, "token_embd.weight", c.n_embd, c.n_vocab);
  // Tied embeddings: without output.weight the head reuses the embedding table.
  output_ = f.find_tensor("output.weight") ? bind_matrix(f, "output.weight", c.n_embd, c.n_vocab, &store_)
                                           : token_embd_;
  output_norm_ = bind_vector(f, "output_norm.weight", c.n_embd);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    LlamaLayer L;
    L.attn_norm = bind_vector(f, b + "attn_norm.weight", c.n_embd);
    L.wq = bind_matrix(f, b + "attn_q.weight", c.n_embd, c.q_dim(), &store_);
    L.wk = bind_matrix(f, b + "attn_k.weight", c.n_embd, c.kv_dim(), &store_);
    L.wv = bind_matrix(f, b + "attn_v.weight", c.n_embd, c.kv_dim(), &store_);
    L.wo = bind_matrix(f, b + "attn_output.weight", c.q_dim(), c.n_embd, &store_);
    L.ffn_norm = bind_vector(f, b + "ffn_norm.weight", c.n_embd);
    L.w_gate = bind_matrix(f, b + "ffn_gate.weight", c.n_embd, c.n_ff, &store_);
    L.w_up = bind_matrix(f, b + "ffn_up.weight", c.n_embd, c.n_ff, &store_);
    L.w_down = bind_matrix(f, b + "ffn_down.weight", c.n_ff, c.n_embd, &store_);
    layers_.push_back(L);
  }
}

void LlamaModel::forward(const int32_t* tokens, int64_t n, int64_t pos0, KvCache& kv,
                         ForwardScratch& s, float* logits, bool all_logits) const {
  const ModelConfig& c = config_;
  const int64_t D = c.n_embd, KV = c.kv_dim(), QD = c.q_dim(), F = c.n_ff;
  const int nt = s.ws.n_threads;
  float* x = s.x.data();
  embed_tokens(token_embd_, tokens, n, 1.0f, x);

  const AttentionShape shape{c.n_head, c.n_head_kv, c.head_dim,
                             1.0f / std::sqrt(static_cast<float>(c.head_dim)), 0};
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LlamaLayer& L = layers_[l];
    // Attention: x += Wo · attn(rope(Wq·h), rope(Wk·h), Wv·h), h = rmsnorm(x).
    rms_norm_rows(x, L.attn_norm, n, D, c.norm_eps, s.xb.data(), nt);
    const WeightMatrix* qkv[] = {&L.wq, &L.wk, &L.wv};
    float* outs[] = {s.q.data(), s.k.data(), s.v.data()};
    const int64_t lds[] = {QD, KV, KV};
    matmul_shared_input(qkv, outs, lds, 3, s.xb.data(), n, s.ws);
    for (int64_t i = 0; i < n; ++i) {
      rope(s.q.data() + i * QD, c.n_head, c.head_dim, c.rope_dim, pos0 + i, c.rope_base,
           c.rope_freq_scale, c.rope_style);
      rope(s.k.data() + i * KV, c.n_head_kv, c.head_dim, c.rope_dim, pos0 + i, c.rope_base,
           c.rope_freq_scale, c.rope_style);
      std::copy_n(s.k.data() + i * KV, KV, kv.k(l, pos0 + i));
      std::copy_n(s.v.data() + i * KV, KV, kv.v(l, pos0 + i));
    }
    cached_attention(s.q.data(), n, pos0, kv, l, shape, s, s.att.data());
    matmul(L.wo, s.att.data(), n, s.xb2.data(), D, s.ws);
    add_rows(x, s.xb2.data(), n * D);

    // Feed-forward: x += Wdown · (silu(Wgate·h) ⊙ Wup·h), h = rmsnorm(x).
    rms_norm_rows(x, L.ffn_norm, n, D, c.norm_eps, s.xb.data(), nt);
    const WeightMatrix* gu[] = {&L.w_gate, &L.w_up};
    float* gu_out[] = {s.hb.data(), s.hb2.data()};
    const int64_t gu_ld[] = {F, F};
    matmul_shared_input(gu, gu_out, gu_ld, 2, s.xb.data(), n, s.ws);
    silu_mul(s.hb.data(), s.hb2.data(), n * F, s.hb.data());
    matmul(L.w_down, s.hb.data(), n, s.xb2.data(), D, s.ws);
    add_rows(x, s.xb2.data(), n * D);
  }

  // Only the rows whose logits are wanted go through the (large) output head.
  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t rows = n - first;
  rms_norm_rows(x + first * D, output_norm_, rows, D, c.norm_eps, s.xb.data(), nt);
  matmul(output_, s.xb.data(), rows, logits, c.n_vocab, s.ws);
}

}  // namespace

std::unique_ptr<Model> make_llama(const ModelFile& file) {
  return std::make_unique<LlamaModel>(file);
}

}  // namespace nibble
