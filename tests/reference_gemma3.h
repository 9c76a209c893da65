// Gemma 3 in double precision, written from the model card (../shared/design/model-families.md
// B.3–B.4) for clarity rather than speed; the shared pieces are in reference_forward.h. Reads
// its hyperparameters itself, with the card's defaults, so it shares no decisions with
// models/gemma3_model.cpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "loaders/model_file.h"
#include "reference_forward.h"

namespace nibble::testing {

class ReferenceGemma3 {
 public:
  explicit ReferenceGemma3(const ModelFile& f) : w_(f) {
    const auto& m = f.meta;
    dim_ = *m.get_int("gemma3.embedding_length");
    n_layer_ = *m.get_int("gemma3.block_count");
    n_head_ = *m.get_int("gemma3.attention.head_count");
    n_kv_ = m.get_int("gemma3.attention.head_count_kv").value_or(n_head_);
    hd_ = m.get_int("gemma3.attention.key_length").value_or(dim_ / n_head_);
    rot_ = m.get_int("gemma3.rope.dimension_count").value_or(hd_);
    eps_ = *m.get_float("gemma3.attention.layer_norm_rms_epsilon");
    base_global_ = m.get_float("gemma3.rope.freq_base").value_or(10000.0);
    base_local_ = m.get_float("gemma3.rope.freq_base_swa").value_or(10000.0);
    // Linear scaling of the global layers' positions (legacy key rope.scale_linear).
    const double factor = m.get_float("gemma3.rope.scaling.factor")
                              .value_or(m.get_float("gemma3.rope.scale_linear").value_or(1.0));
    scale_global_ = factor > 0 ? 1.0 / factor : 1.0;
    n_swa_ = m.get_int("gemma3.attention.sliding_window").value_or(0);
    pattern_ = m.get_int("gemma3.attention.sliding_window_pattern").value_or(6);
    softcap_ = m.get_float("gemma3.final_logit_softcapping").value_or(0.0);
    query_scale_ = n_layer_ == 62 ? 1.0 / std::sqrt(static_cast<double>(dim_) / n_head_)
                                  : 1.0 / std::sqrt(static_cast<double>(hd_));
    head_ = w_.has("output.weight") ? "output.weight" : "token_embd.weight";
  }

  int64_t vocab() const { return w_.rows("token_embd.weight"); }

  // Layer il attends to a sliding window (and uses the local rope) iff this holds.
  bool is_local(int64_t il) const {
    if (n_swa_ <= 0) return false;
    if (pattern_ == 0) return true;
    return il % pattern_ < pattern_ - 1;
  }

  // Logits of every position for tokens evaluated from position 0.
  std::vector<std::vector<double>> run(const std::vector<int32_t>& tokens) const {
    // 1. Embedding, scaled by √n_embd.
    Rows x;
    for (int32_t tok : tokens) {
      Vec e = w_.row("token_embd.weight", tok);
      for (double& v : e) v *= std::sqrt(static_cast<double>(dim_));
      x.push_back(e);
    }
    for (int64_t l = 0; l < n_layer_; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      const bool local = is_local(l);
      // 2.1–2.2 h = RMSNorm(x)·attn_norm; q, k, v.
      Rows h = rms_norm(x, w_.vec(b + "attn_norm.weight"), eps_);
      Rows q = w_.linear(b + "attn_q.weight", h), k = w_.linear(b + "attn_k.weight", h);
      const Rows v = w_.linear(b + "attn_v.weight", h);
      // 2.3–2.4 per-head RMSNorm of q and k, then NeoX RoPE with the layer kind's base/scale.
      const Vec qn = w_.vec(b + "attn_q_norm.weight"), kn = w_.vec(b + "attn_k_norm.weight");
      for (size_t p = 0; p < x.size(); ++p) {
        q[p] = norm_heads(q[p], qn);
        k[p] = norm_heads(k[p], kn);
        const auto pos = static_cast<int64_t>(p);
        rope(q[p], hd_, rot_, pos, local ? base_local_ : base_global_, local ? 1.0 : scale_global_, true);
        rope(k[p], hd_, rot_, pos, local ? base_local_ : base_global_, local ? 1.0 : scale_global_, true);
      }
      // 2.5–2.6 attention (windowed on local layers), Wo, post-attention norm, residual.
      const Rows att = attention(q, k, v, n_head_, n_kv_, hd_, query_scale_, local ? n_swa_ : 0);
      add(x, rms_norm(w_.linear(b + "attn_output.weight", att), w_.vec(b + "post_attention_norm.weight"), eps_));
      // 2.7 GELU(tanh)-gated feed-forward, post-feed-forward norm, residual.
      h = rms_norm(x, w_.vec(b + "ffn_norm.weight"), eps_);
      Rows g = w_.linear(b + "ffn_gate.weight", h);
      const Rows u = w_.linear(b + "ffn_up.weight", h);
      for (size_t p = 0; p < g.size(); ++p)
        for (size_t i = 0; i < g[p].size(); ++i) g[p][i] = gelu_tanh(g[p][i]) * u[p][i];
      add(x, rms_norm(w_.linear(b + "ffn_down.weight", g), w_.vec(b + "post_ffw_norm.weight"), eps_));
    }
    // 3–4. Final norm, head (tied to the embedding unless output.weight exists), soft cap.
    Rows logits = w_.linear(head_, rms_norm(x, w_.vec("output_norm.weight"), eps_));
    if (softcap_ > 0)
      for (Vec& row : logits)
        for (double& z : row) z = softcap_ * std::tanh(z / softcap_);
    return logits;
  }

 private:
  static double gelu_tanh(double x) {
    return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
  }
  // RMSNorm of each head_dim-long head of v with the same weights.
  Vec norm_heads(const Vec& v, const Vec& w) const {
    Vec out;
    for (size_t h = 0; h < v.size() / hd_; ++h) {
      const Vec n = rms_norm(Vec(v.begin() + h * hd_, v.begin() + (h + 1) * hd_), w, eps_);
      out.insert(out.end(), n.begin(), n.end());
    }
    return out;
  }

  RefTensors w_;
  int64_t dim_, n_layer_, n_head_, n_kv_, hd_, rot_, n_swa_, pattern_;
  double eps_, base_global_, base_local_, scale_global_, softcap_, query_scale_;
  std::string head_;
};

}  // namespace nibble::testing
