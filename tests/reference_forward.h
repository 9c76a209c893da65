// An independent LLaMA forward pass in double precision, written for clarity rather than
// speed: the yardstick the runtime's logits are held against. It shares nothing with models/
// or kernels/ except dequantize_row() to read the stored weights.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "kernels/quantize.h"
#include "loaders/model_file.h"

namespace nibble::testing {

class ReferenceLlama {
 public:
  explicit ReferenceLlama(const ModelFile& f) : f_(f) {
    const auto& m = f.meta;
    dim_ = *m.get_int("llama.embedding_length");
    n_layer_ = *m.get_int("llama.block_count");
    n_ff_ = *m.get_int("llama.feed_forward_length");
    n_head_ = *m.get_int("llama.attention.head_count");
    n_kv_ = m.get_int("llama.attention.head_count_kv").value_or(n_head_);
    eps_ = m.get_float("llama.attention.layer_norm_rms_epsilon").value_or(1e-5);
    base_ = m.get_float("llama.rope.freq_base").value_or(10000.0);
    hd_ = dim_ / n_head_;
    embd_ = load("token_embd.weight");
    vocab_ = static_cast<int64_t>(embd_.size()) / dim_;
    out_ = f.find_tensor("output.weight") ? load("output.weight") : embd_;
    out_norm_ = load("output_norm.weight");
    for (int64_t l = 0; l < n_layer_; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      Layer L;
      L.an = load(b + "attn_norm.weight");
      L.wq = load(b + "attn_q.weight");
      L.wk = load(b + "attn_k.weight");
      L.wv = load(b + "attn_v.weight");
      L.wo = load(b + "attn_output.weight");
      L.fn = load(b + "ffn_norm.weight");
      L.w1 = load(b + "ffn_gate.weight");
      L.w3 = load(b + "ffn_up.weight");
      L.w2 = load(b + "ffn_down.weight");
      layers_.push_back(std::move(L));
    }
  }

  int64_t vocab() const { return vocab_; }

  // Logits of every position for tokens evaluated from position 0.
  std::vector<std::vector<double>> run(const std::vector<int32_t>& tokens) {
    const int64_t kvd = n_kv_ * hd_;
    std::vector<std::vector<std::vector<double>>> kc(n_layer_), vc(n_layer_);
    std::vector<std::vector<double>> all;
    for (size_t pos = 0; pos < tokens.size(); ++pos) {
      std::vector<double> x(embd_.begin() + tokens[pos] * dim_,
                            embd_.begin() + (tokens[pos] + 1) * dim_);
      for (int64_t l = 0; l < n_layer_; ++l) {
        const Layer& L = layers_[l];
        auto h = norm(x, L.an);
        auto q = matvec(L.wq, h, dim_), k = matvec(L.wk, h, kvd), v = matvec(L.wv, h, kvd);
        rope(q, pos);
        rope(k, pos);
        kc[l].push_back(k);
        vc[l].push_back(v);
        std::vector<double> att(dim_, 0.0);
        for (int64_t hh = 0; hh < n_head_; ++hh) {
          const int64_t kvh = hh / (n_head_ / n_kv_);
          std::vector<double> s(pos + 1);
          double mx = -1e300;
          for (size_t t = 0; t <= pos; ++t) {
            double d = 0;
            for (int64_t i = 0; i < hd_; ++i) d += q[hh * hd_ + i] * kc[l][t][kvh * hd_ + i];
            s[t] = d / std::sqrt(static_cast<double>(hd_));
            mx = std::max(mx, s[t]);
          }
          double sum = 0;
          for (auto& e : s) sum += (e = std::exp(e - mx));
          for (size_t t = 0; t <= pos; ++t)
            for (int64_t i = 0; i < hd_; ++i)
              att[hh * hd_ + i] += s[t] / sum * vc[l][t][kvh * hd_ + i];
        }
        auto o = matvec(L.wo, att, dim_);
        for (int64_t i = 0; i < dim_; ++i) x[i] += o[i];
        h = norm(x, L.fn);
        auto g = matvec(L.w1, h, n_ff_), u = matvec(L.w3, h, n_ff_);
        for (int64_t i = 0; i < n_ff_; ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
        auto d = matvec(L.w2, g, dim_);
        for (int64_t i = 0; i < dim_; ++i) x[i] += d[i];
      }
      all.push_back(matvec(out_, norm(x, out_norm_), vocab_));
    }
    return all;
  }

 private:
  struct Layer {
    std::vector<double> an, wq, wk, wv, wo, fn, w1, w2, w3;
  };

  std::vector<double> load(const std::string& name) {
    const TensorInfo& t = f_.tensor(name);
    const int64_t n = static_cast<int64_t>(t.n_elements());
    std::vector<float> tmp(n);
    dequantize_row(t.type, t.data, n, tmp.data());
    return std::vector<double>(tmp.begin(), tmp.end());
  }
  std::vector<double> norm(const std::vector<double>& x, const std::vector<double>& w) const {
    double ss = 0;
    for (double e : x) ss += e * e;
    const double r = 1.0 / std::sqrt(ss / x.size() + eps_);
    std::vector<double> o(x.size());
    for (size_t i = 0; i < x.size(); ++i) o[i] = x[i] * r * w[i];
    return o;
  }
  // W is stored row-major with rows of length x.size() (GGUF dims [in, out]).
  static std::vector<double> matvec(const std::vector<double>& w, const std::vector<double>& x,
                                    int64_t out) {
    std::vector<double> y(out);
    const size_t in = x.size();
    for (int64_t r = 0; r < out; ++r) {
      double s = 0;
      for (size_t i = 0; i < in; ++i) s += w[r * in + i] * x[i];
      y[r] = s;
    }
    return y;
  }
  // Adjacent pairs (x[2i], x[2i+1]) rotate by pos·base^(−2i/head_dim).
  void rope(std::vector<double>& v, size_t pos) const {
    for (size_t h = 0; h < v.size() / hd_; ++h)
      for (int64_t i = 0; i < hd_ / 2; ++i) {
        const double a = pos * std::pow(base_, -2.0 * i / hd_);
        double& x0 = v[h * hd_ + 2 * i];
        double& x1 = v[h * hd_ + 2 * i + 1];
        const double r0 = x0 * std::cos(a) - x1 * std::sin(a);
        const double r1 = x0 * std::sin(a) + x1 * std::cos(a);
        x0 = r0;
        x1 = r1;
      }
  }

  const ModelFile& f_;
  int64_t dim_, n_layer_, n_ff_, n_head_, n_kv_, hd_, vocab_;
  double eps_, base_;
  std::vector<double> embd_, out_, out_norm_;
  std::vector<Layer> layers_;
};

}  // namespace nibble::testing
