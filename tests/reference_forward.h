// Independent forward passes in double precision, written for clarity rather than speed: the
// yardsticks the runtime's logits are held against. They share nothing with models/ or
// kernels/ except dequantize_row() to read the stored weights.
//
// The whole sequence goes through one layer before the next (as the models were trained), so a
// weight matrix is read once per run: its rows are dequantised one at a time and applied to
// every token, which keeps even Gemma's 262144 × 640 embedding head out of double storage.
//
// This file: the pieces every family uses, and the LLaMA family. Gemma 3: reference_gemma3.h.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/quantize.h"
#include "kernels/tensor_type.h"
#include "loaders/model_file.h"

namespace nibble::testing {

using Vec = std::vector<double>;
using Rows = std::vector<Vec>;  // one vector per token

// ---- Shared pieces -------------------------------------------------------------------------

// Four partial sums so the loop is not one long chain of dependent additions (the reference runs
// ~10^10 of these for the real models); still plain double arithmetic.
inline double dot(const double* a, const double* b, size_t n) {
  double s[4] = {0, 0, 0, 0};
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (size_t j = 0; j < 4; ++j) s[j] += a[i + j] * b[i + j];
  for (; i < n; ++i) s[0] += a[i] * b[i];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// The tensors of a model file as doubles.
class RefTensors {
 public:
  explicit RefTensors(const ModelFile& f) : f_(f) {}

  bool has(const std::string& name) const { return f_.find_tensor(name) != nullptr; }

  // A whole tensor (norm weights).
  Vec vec(const std::string& name) const {
    const TensorInfo& t = f_.tensor(name);
    return row_of(t, 0, static_cast<int64_t>(t.n_elements()));
  }

  // Row r of a matrix (an embedding).
  Vec row(const std::string& name, int64_t r) const {
    const TensorInfo& t = f_.tensor(name);
    return row_of(t, r, static_cast<int64_t>(t.dims[0]));
  }

  int64_t rows(const std::string& name) const { return static_cast<int64_t>(f_.tensor(name).dims[1]); }

  // y[t] = W·x[t] for every token t, W with GGUF dims [in, out] (out rows of `in` weights).
  Rows linear(const std::string& name, const Rows& x) const {
    const TensorInfo& t = f_.tensor(name);
    const auto in = static_cast<int64_t>(t.dims[0]), out = static_cast<int64_t>(t.dims[1]);
    Rows y(x.size(), Vec(out));
    for (int64_t r = 0; r < out; ++r) {
      const Vec w = row_of(t, r, in);
      for (size_t tok = 0; tok < x.size(); ++tok) y[tok][r] = dot(w.data(), x[tok].data(), in);
    }
    return y;
  }

 private:
  static Vec row_of(const TensorInfo& t, int64_t r, int64_t n) {
    std::vector<float> tmp(n);
    dequantize_row(t.type, t.data + r * row_bytes(static_cast<uint32_t>(t.type), n), n, tmp.data());
    return Vec(tmp.begin(), tmp.end());
  }

  const ModelFile& f_;
};

// x / sqrt(mean(x²) + eps) · w
inline Vec rms_norm(const Vec& x, const Vec& w, double eps) {
  double ss = 0;
  for (double e : x) ss += e * e;
  const double r = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  Vec o(x.size());
  for (size_t i = 0; i < x.size(); ++i) o[i] = x[i] * r * w[i];
  return o;
}

inline Rows rms_norm(const Rows& x, const Vec& w, double eps) {
  Rows o;
  for (const Vec& row : x) o.push_back(rms_norm(row, w, eps));
  return o;
}

// Each of v's heads (head_dim apart): the first rot_dim dims rotate in pairs, pair i by angle
// pos·freq_scale·base^(−2i/rot_dim). The pair is (2i, 2i+1) in the adjacent layout (GGUF llama
// files) and (i, i + rot_dim/2) in the NeoX layout (Gemma).
inline void rope(Vec& v, int64_t head_dim, int64_t rot_dim, int64_t pos, double base,
                 double freq_scale, bool neox) {
  for (size_t h = 0; h < v.size() / head_dim; ++h)
    for (int64_t i = 0; i < rot_dim / 2; ++i) {
      const double a = static_cast<double>(pos) * freq_scale * std::pow(base, -2.0 * i / rot_dim);
      double& x0 = v[h * head_dim + (neox ? i : 2 * i)];
      double& x1 = v[h * head_dim + (neox ? i + rot_dim / 2 : 2 * i + 1)];
      const double r0 = x0 * std::cos(a) - x1 * std::sin(a);
      const double r1 = x0 * std::sin(a) + x1 * std::cos(a);
      x0 = r0;
      x1 = r1;
    }
}

// Self-attention of tokens at positions 0..T−1: query head h of token p uses key/value head
// h / (n_head / n_kv) and sees token k iff k ≤ p and, when window > 0, p − k < window.
// softmax(scale · q·k) over the visible tokens, weighted sum of their values.
inline Rows attention(const Rows& q, const Rows& k, const Rows& v, int64_t n_head, int64_t n_kv,
                      int64_t hd, double scale, int64_t window) {
  const auto T = static_cast<int64_t>(q.size());
  Rows out(T, Vec(n_head * hd, 0.0));
  for (int64_t p = 0; p < T; ++p) {
    for (int64_t h = 0; h < n_head; ++h) {
      const int64_t kvh = h / (n_head / n_kv);
      std::vector<int64_t> visible;
      for (int64_t t = 0; t <= p; ++t)
        if (window <= 0 || p - t < window) visible.push_back(t);
      Vec s;
      for (int64_t t : visible) s.push_back(scale * dot(&q[p][h * hd], &k[t][kvh * hd], hd));
      const double mx = *std::max_element(s.begin(), s.end());
      double sum = 0;
      for (double& e : s) sum += (e = std::exp(e - mx));
      for (size_t j = 0; j < visible.size(); ++j)
        for (int64_t i = 0; i < hd; ++i) out[p][h * hd + i] += s[j] / sum * v[visible[j]][kvh * hd + i];
    }
  }
  return out;
}

inline void add(Rows& x, const Rows& y) {
  for (size_t t = 0; t < x.size(); ++t)
    for (size_t i = 0; i < x[t].size(); ++i) x[t][i] += y[t][i];
}

// ---- Comparing logits ------------------------------------------------------------------------

// How far runtime logits (positions × vocab floats) are from a reference's.
struct LogitDiff {
  double max_abs = 0, range = 0;  // largest |Δ|, and the reference's max − min over all positions
  int argmax_agree = 0, positions = 0;
  // Where the argmaxes differ: how far below the reference's best its logit for the runtime's
  // pick lies (0 where they agree). A small gap means a near-tie in the reference itself.
  double max_pick_gap = 0;
  double rel() const { return max_abs / range; }
};

inline LogitDiff compare_logits(const std::vector<float>& got, const std::vector<std::vector<double>>& want) {
  LogitDiff d;
  const size_t V = want[0].size();
  double lo = 1e300, hi = -1e300;
  for (size_t p = 0; p < want.size(); ++p) {
    size_t a = 0, b = 0;
    for (size_t i = 0; i < V; ++i) {
      lo = std::min(lo, want[p][i]);
      hi = std::max(hi, want[p][i]);
      d.max_abs = std::max(d.max_abs, std::abs(got[p * V + i] - want[p][i]));
      if (got[p * V + i] > got[p * V + a]) a = i;
      if (want[p][i] > want[p][b]) b = i;
    }
    d.argmax_agree += a == b;
    d.max_pick_gap = std::max(d.max_pick_gap, want[p][b] - want[p][a]);
    ++d.positions;
  }
  d.range = hi - lo;
  return d;
}

inline void print_diff(const std::string& what, const LogitDiff& d) {
  std::printf("%s: max |diff| %.3g = %.3g of the logit range %.3g, argmax agrees %d/%d (largest gap %.3g)\n",
              what.c_str(), d.max_abs, d.rel(), d.range, d.argmax_agree, d.positions, d.max_pick_gap);
}

// ---- LLaMA -----------------------------------------------------------------------------------

class ReferenceLlama {
 public:
  explicit ReferenceLlama(const ModelFile& f) : w_(f) {
    const auto& m = f.meta;
    dim_ = *m.get_int("llama.embedding_length");
    n_layer_ = *m.get_int("llama.block_count");
    n_head_ = *m.get_int("llama.attention.head_count");
    n_kv_ = m.get_int("llama.attention.head_count_kv").value_or(n_head_);
    hd_ = m.get_int("llama.attention.key_length").value_or(dim_ / n_head_);
    rot_ = m.get_int("llama.rope.dimension_count").value_or(hd_);
    eps_ = m.get_float("llama.attention.layer_norm_rms_epsilon").value_or(1e-5);
    base_ = m.get_float("llama.rope.freq_base").value_or(10000.0);
    head_ = w_.has("output.weight") ? "output.weight" : "token_embd.weight";
  }

  int64_t vocab() const { return w_.rows("token_embd.weight"); }

  // Logits of every position for tokens evaluated from position 0.
  std::vector<std::vector<double>> run(const std::vector<int32_t>& tokens) const {
    Rows x;
    for (int32_t tok : tokens) x.push_back(w_.row("token_embd.weight", tok));
    for (int64_t l = 0; l < n_layer_; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      // Attention: x += Wo · attn(rope(Wq·h), rope(Wk·h), Wv·h), h = rmsnorm(x).
      Rows h = rms_norm(x, w_.vec(b + "attn_norm.weight"), eps_);
      Rows q = w_.linear(b + "attn_q.weight", h), k = w_.linear(b + "attn_k.weight", h);
      const Rows v = w_.linear(b + "attn_v.weight", h);
      for (size_t p = 0; p < x.size(); ++p) {
        rope(q[p], hd_, rot_, static_cast<int64_t>(p), base_, 1.0, false);
        rope(k[p], hd_, rot_, static_cast<int64_t>(p), base_, 1.0, false);
      }
      const Rows att = attention(q, k, v, n_head_, n_kv_, hd_, 1.0 / std::sqrt(static_cast<double>(hd_)), 0);
      add(x, w_.linear(b + "attn_output.weight", att));
      // Feed-forward: x += Wdown · (silu(Wgate·h) ⊙ Wup·h), h = rmsnorm(x).
      h = rms_norm(x, w_.vec(b + "ffn_norm.weight"), eps_);
      Rows g = w_.linear(b + "ffn_gate.weight", h);
      const Rows u = w_.linear(b + "ffn_up.weight", h);
      for (size_t p = 0; p < g.size(); ++p)
        for (size_t i = 0; i < g[p].size(); ++i) g[p][i] = g[p][i] / (1.0 + std::exp(-g[p][i])) * u[p][i];
      add(x, w_.linear(b + "ffn_down.weight", g));
    }
    return w_.linear(head_, rms_norm(x, w_.vec("output_norm.weight"), eps_));
  }

 private:
  RefTensors w_;
  int64_t dim_, n_layer_, n_head_, n_kv_, hd_, rot_;
  double eps_, base_;
  std::string head_;
};

}  // namespace nibble::testing
