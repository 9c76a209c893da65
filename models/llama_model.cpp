// The LLaMA family (Llama 1/2/3, TinyLlama, SmolLM2, llama2.c models): pre-norm blocks with
// RMSNorm, rotary grouped-query attention and a SwiGLU feed-forward.
#include <cmath>
#include <string>
#include <vector>

#include "models/blocks.h"
#include "models/model.h"

namespace nibble {
namespace {

struct LlamaLayer {
  const float* attn_norm;
  AttentionWeights attn;
  const float* ffn_norm;
  FfnWeights ffn;
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
  ModelConfig c = read_base_config(f, 1e-5f);
  // GGUF converters permute LLaMA's q/k rows so that rotated pairs are adjacent.
  c.rope_style = RopeStyle::kAdjacent;
  if (f.find_tensor("rope_freqs.weight")) {
    throw FileError(f.path + ": per-frequency rope factors (rope_freqs.weight, Llama 3.1 style) "
                             "are not supported yet");
  }
  return c;
}

LlamaModel::LlamaModel(const ModelFile& f) {
  config_ = read_config(f);
  const ModelConfig& c = config_;
  refuse_bias_tensors(f);
  token_embd_ = bind_matrix(f, "token_embd.weight", c.n_embd, c.n_vocab);
  // Tied embeddings: without output.weight the head reuses the embedding table.
  output_ = f.find_tensor("output.weight") ? bind_matrix(f, "output.weight", c.n_embd, c.n_vocab, &store_)
                                           : token_embd_;
  output_norm_ = bind_vector(f, "output_norm.weight", c.n_embd);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    LlamaLayer L;
    L.attn_norm = bind_vector(f, b + "attn_norm.weight", c.n_embd);
    L.attn = bind_attention(f, b, c, &store_);
    L.ffn_norm = bind_vector(f, b + "ffn_norm.weight", c.n_embd);
    L.ffn = bind_ffn(f, b, c, &store_);
    layers_.push_back(L);
  }
}

void LlamaModel::forward(const int32_t* tokens, int64_t n, int64_t pos0, KvCache& kv,
                         ForwardScratch& s, float* logits, bool all_logits) const {
  const ModelConfig& c = config_;
  const int64_t D = c.n_embd;
  const int nt = s.ws.n_threads;
  float* x = s.x.data();
  embed_tokens(token_embd_, tokens, n, 1.0f, x);

  const RopeParams rope{c.rope_dim, c.rope_base, c.rope_freq_scale, c.rope_style};
  const AttentionShape shape{c.n_head, c.n_head_kv, c.head_dim,
                             1.0f / std::sqrt(static_cast<float>(c.head_dim)), 0};
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LlamaLayer& L = layers_[l];
    // Attention: x += Wo · attn(rope(Wq·h), rope(Wk·h), Wv·h), h = rmsnorm(x).
    rms_norm_rows(x, L.attn_norm, n, D, c.norm_eps, s.xb.data(), nt);
    s.observe(l, LinearSite::kAttnIn, s.xb.data(), n, D);
    project_qkv(L.attn, s.xb.data(), n, s);
    rope_and_cache(c, rope, n, pos0, kv, l, s);
    cached_attention(s.q.data(), n, pos0, kv, l, shape, s, s.att.data());
    s.observe(l, LinearSite::kAttnOut, s.att.data(), n, c.q_dim());
    matmul(L.attn.wo, s.att.data(), n, s.xb2.data(), D, s.ws);
    add_rows(x, s.xb2.data(), n * D, nt);

    // Feed-forward: x += Wdown · (silu(Wgate·h) ⊙ Wup·h), h = rmsnorm(x).
    rms_norm_rows(x, L.ffn_norm, n, D, c.norm_eps, s.xb.data(), nt);
    s.observe(l, LinearSite::kFfnIn, s.xb.data(), n, D);
    gated_ffn(L.ffn, GateActivation::kSilu, s.xb.data(), n, l, s, s.xb2.data());
    add_rows(x, s.xb2.data(), n * D, nt);
  }

  output_logits(output_, output_norm_, c.norm_eps, x, n, all_logits, s, logits);
}

}  // namespace

std::unique_ptr<Model> make_llama(const ModelFile& file) {
  return std::make_unique<LlamaModel>(file);
}

}  // namespace nibble
