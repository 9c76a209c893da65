// The Gemma 3 family (general.architecture = gemma3; text models 270M … 27B). Its differences
// from LLaMA, all in this file (the rest is models/blocks.h):
//   - the embedding is scaled by √n_embd;
//   - q and k are RMS-normalised per head (attn_q_norm / attn_k_norm over head_dim) before RoPE,
//     which is the NeoX layout; head_dim is its own hyperparameter (256 with n_embd 640);
//   - the attention and feed-forward outputs are RMS-normalised again (post_attention_norm,
//     post_ffw_norm) before they are added to the residual stream;
//   - the feed-forward gate is GELU (tanh approximation), not SiLU;
//   - layers alternate between local (sliding window, their own rope base, never scaled) and
//     global ones: with pattern P, layer il is local iff il % P < P − 1;
//   - the query scale is a fixed rule (below), and logits may be soft-capped.
// GGUF norm weights already include Gemma's "+1" (the converter adds it), so every norm here is
// the plain rms_norm(x)·w.
#include <cmath>
#include <string>
#include <vector>

#include "models/blocks.h"
#include "models/model.h"

namespace nibble {
namespace {

struct Gemma3Layer {
  const float* attn_norm;
  AttentionWeights attn;
  const float* attn_q_norm;  // [head_dim], applied to every query head
  const float* attn_k_norm;  // [head_dim], applied to every key head
  const float* post_attention_norm;
  const float* ffn_norm;
  FfnWeights ffn;
  const float* post_ffw_norm;
};

class Gemma3Model final : public Model {
 public:
  explicit Gemma3Model(const ModelFile& file);
  void forward(const int32_t* tokens, int64_t n, int64_t pos0, KvCache& kv, ForwardScratch& s,
               float* logits, bool all_logits) const override;

 private:
  WeightStore store_;  // owns the repacked (kernel-layout) weights the views below point into
  WeightMatrix token_embd_, output_;
  const float* output_norm_;
  std::vector<Gemma3Layer> layers_;
  float query_scale_;
};

ModelConfig read_config(const ModelFile& f) {
  const std::string p = "gemma3.";
  if (!f.meta.has(p + "attention.layer_norm_rms_epsilon")) {
    throw FileError(f.path + ": missing metadata key " + p + "attention.layer_norm_rms_epsilon");
  }
  ModelConfig c = read_base_config(f, 1e-6f);
  // Converters leave Gemma's q/k rows in Hugging Face order: rotated pairs are half a head apart.
  c.rope_style = RopeStyle::kNeox;
  // No key (or 0): every layer global. An array-valued pattern is ignored, as llama.cpp does.
  c.n_swa = meta_int_or(f, p + "attention.sliding_window", 0);
  c.swa_pattern = f.meta.get_int(p + "attention.sliding_window_pattern").value_or(6);
  if (c.n_swa < 0 || c.swa_pattern < 0) {
    throw FileError(f.path + ": negative attention.sliding_window or sliding_window_pattern");
  }
  c.rope_base_swa = meta_float_or(f, p + "rope.freq_base_swa", 10000.0f);
  if (!(c.rope_base_swa > 0.0f)) throw FileError(f.path + ": rope.freq_base_swa must be positive");
  c.final_logit_softcap = meta_float_or(f, p + "final_logit_softcapping", 0.0f);
  if (!(c.final_logit_softcap >= 0.0f) || !std::isfinite(c.final_logit_softcap)) {
    throw FileError(f.path + ": final_logit_softcapping must be a non-negative number");
  }
  return c;
}

Gemma3Model::Gemma3Model(const ModelFile& f) {
  config_ = read_config(f);
  const ModelConfig& c = config_;
  refuse_bias_tensors(f);
  // The query scale is not in the file (Hugging Face's query_pre_attn_scalar is not converted):
  // 1/√head_dim, except for the 62-layer model (27B), trained with 1/√(n_embd / n_head).
  query_scale_ = c.n_layer == 62
                     ? 1.0f / std::sqrt(static_cast<float>(c.n_embd) / static_cast<float>(c.n_head))
                     : 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  token_embd_ = bind_matrix(f, "token_embd.weight", c.n_embd, c.n_vocab);
  // Normally tied: the head is the embedding table unless the file has its own.
  output_ = f.find_tensor("output.weight") ? bind_matrix(f, "output.weight", c.n_embd, c.n_vocab, &store_)
                                           : token_embd_;
  output_norm_ = bind_vector(f, "output_norm.weight", c.n_embd);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    Gemma3Layer L;
    L.attn_norm = bind_vector(f, b + "attn_norm.weight", c.n_embd);
    L.attn = bind_attention(f, b, c, &store_);
    L.attn_q_norm = bind_vector(f, b + "attn_q_norm.weight", c.head_dim);
    L.attn_k_norm = bind_vector(f, b + "attn_k_norm.weight", c.head_dim);
    L.post_attention_norm = bind_vector(f, b + "post_attention_norm.weight", c.n_embd);
    L.ffn_norm = bind_vector(f, b + "ffn_norm.weight", c.n_embd);
    L.ffn = bind_ffn(f, b, c, &store_);
    L.post_ffw_norm = bind_vector(f, b + "post_ffw_norm.weight", c.n_embd);
    layers_.push_back(L);
  }
}

void Gemma3Model::forward(const int32_t* tokens, int64_t n, int64_t pos0, KvCache& kv,
                          ForwardScratch& s, float* logits, bool all_logits) const {
  const ModelConfig& c = config_;
  const int64_t D = c.n_embd;
  const int nt = s.ws.n_threads;
  float* x = s.x.data();
  embed_tokens(token_embd_, tokens, n, std::sqrt(static_cast<float>(D)), x);

  // The two kinds of layer differ only in their rope and their attention window.
  const RopeParams rope_local{c.rope_dim, c.rope_base_swa, 1.0f, c.rope_style};
  const RopeParams rope_global{c.rope_dim, c.rope_base, c.rope_freq_scale, c.rope_style};
  const AttentionShape local{c.n_head, c.n_head_kv, c.head_dim, query_scale_, c.n_swa};
  const AttentionShape global{c.n_head, c.n_head_kv, c.head_dim, query_scale_, 0};
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const Gemma3Layer& L = layers_[l];
    const bool is_local = c.is_swa_layer(l);
    // Attention: x += post_norm(Wo · attn(rope(qnorm(Wq·h)), rope(knorm(Wk·h)), Wv·h)),
    // h = rmsnorm(x).
    rms_norm_rows(x, L.attn_norm, n, D, c.norm_eps, s.xb.data(), nt);
    s.observe(l, LinearSite::kAttnIn, s.xb.data(), n, D);
    project_qkv(L.attn, s.xb.data(), n, s);
    rms_norm_rows(s.q.data(), L.attn_q_norm, n * c.n_head, c.head_dim, c.norm_eps, s.q.data(), nt);
    rms_norm_rows(s.k.data(), L.attn_k_norm, n * c.n_head_kv, c.head_dim, c.norm_eps, s.k.data(), nt);
    rope_and_cache(c, is_local ? rope_local : rope_global, n, pos0, kv, l, s);
    cached_attention(s.q.data(), n, pos0, kv, l, is_local ? local : global, s, s.att.data());
    s.observe(l, LinearSite::kAttnOut, s.att.data(), n, c.q_dim());
    matmul(L.attn.wo, s.att.data(), n, s.xb2.data(), D, s.ws);
    rms_norm_rows(s.xb2.data(), L.post_attention_norm, n, D, c.norm_eps, s.xb2.data(), nt);
    add_rows(x, s.xb2.data(), n * D, nt);

    // Feed-forward: x += post_norm(Wdown · (gelu(Wgate·h) ⊙ Wup·h)), h = rmsnorm(x).
    rms_norm_rows(x, L.ffn_norm, n, D, c.norm_eps, s.xb.data(), nt);
    s.observe(l, LinearSite::kFfnIn, s.xb.data(), n, D);
    gated_ffn(L.ffn, GateActivation::kGeluTanh, s.xb.data(), n, l, s, s.xb2.data());
    rms_norm_rows(s.xb2.data(), L.post_ffw_norm, n, D, c.norm_eps, s.xb2.data(), nt);
    add_rows(x, s.xb2.data(), n * D, nt);
  }

  output_logits(output_, output_norm_, c.norm_eps, x, n, all_logits, s, logits);
  if (c.final_logit_softcap > 0.0f) {
    const float cap = c.final_logit_softcap;
    const int64_t count = (all_logits ? n : 1) * c.n_vocab;
    for (int64_t i = 0; i < count; ++i) logits[i] = cap * std::tanh(logits[i] / cap);
  }
}

}  // namespace

std::unique_ptr<Model> make_gemma3(const ModelFile& file) {
  return std::make_unique<Gemma3Model>(file);
}

}  // namespace nibble
