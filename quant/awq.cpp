#include "quant/awq.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include "kernels/quantize.h"
#include "quant/linalg.h"

namespace nibble {
namespace {

bool is_integer(TensorType t) {
  return t != TensorType::F32 && t != TensorType::F16 && t != TensorType::BF16;
}

// Types whose quantizer sets each block's scale from the block's max (or min and max) as is,
// so clipping the block changes the grid.
bool takes_block_max(TensorType t) {
  switch (t) {
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q8_0:
    case TensorType::Q4_G64:
    case TensorType::Q4_G128:
      return true;
    default:
      return false;
  }
}

// x → dequantize(quantize(x)) for n elements (whole blocks of t).
void fake_quant(TensorType t, const float* x, int64_t n, float* y, std::vector<uint8_t>& buf) {
  buf.resize(row_bytes(static_cast<uint32_t>(t), static_cast<uint64_t>(n)));
  quantize_row(t, x, n, buf.data());
  dequantize_row(t, buf.data(), n, y);
}

std::vector<int64_t> sample_rows(int64_t rows, int64_t want) {
  std::vector<int64_t> r;
  const int64_t n = std::min(rows, std::max<int64_t>(1, want));
  for (int64_t i = 0; i < n; ++i) r.push_back(i * rows / n);
  return r;
}

struct Consumer {
  const FloatTensor* w;
  TensorType type;
  std::vector<int64_t> rows;  // the sampled rows
};

// Σ over consumers of tr(E H Eᵀ) with E the sampled rows' error when the input is scaled by s
// before quantization and unscaled after (s empty: plain round-to-nearest); `reference` gives
// tr(W H Wᵀ) instead.
double group_error(const std::vector<Consumer>& cs, const std::vector<float>& s, const float* H,
                   int64_t d, bool reference) {
  double total = 0;
  for (const Consumer& c : cs) {
    const auto n = static_cast<int64_t>(c.rows.size());
    std::vector<float> E(static_cast<size_t>(n * d));
#pragma omp parallel
    {
      std::vector<float> x(d), y(d);
      std::vector<uint8_t> buf;
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        const float* w = c.w->row(c.rows[i]);
        float* e = E.data() + i * d;
        if (reference) {
          std::copy(w, w + d, e);
          continue;
        }
        for (int64_t j = 0; j < d; ++j) x[j] = s.empty() ? w[j] : w[j] * s[j];
        fake_quant(c.type, x.data(), d, y.data(), buf);
        for (int64_t j = 0; j < d; ++j) e[j] = (s.empty() ? y[j] : y[j] / s[j]) - w[j];
      }
    }
    total += output_error(E.data(), n, d, H);
  }
  return total;
}

std::vector<float> awq_scales(const std::vector<float>& mean_abs, float alpha) {
  std::vector<float> s(mean_abs.size());
  float lo = INFINITY, hi = 0;
  for (size_t j = 0; j < s.size(); ++j) {
    s[j] = std::pow(std::max(mean_abs[j], 1e-4f), alpha);
    lo = std::min(lo, s[j]);
    hi = std::max(hi, s[j]);
  }
  // Centred on 1 in the geometric sense, as AWQ's reference normalises them.
  const float c = std::sqrt(lo * hi);
  for (float& v : s) v /= c;
  return s;
}

// AWQ's clip search for one tensor: per row and block, the ratio of the block's |max| that
// minimises e H_bb eᵀ (H_bb the block's diagonal block of H); the weights are clamped to it.
void clip_tensor(FloatTensor& w, TensorType type, const float* H, int64_t d, AwqReport& rep) {
  const int64_t g = type_traits(type)->block_elems;
  const int64_t nb = d / g;
  constexpr int kSteps = 10;  // ratios 1, 0.95, …, 0.55 (AWQ: 20-step grid, shrink ≤ 0.5)
  int64_t clipped = 0;
#pragma omp parallel reduction(+ : clipped)
  {
    std::vector<float> x(g), y(g), e(g), best(g);
    std::vector<uint8_t> buf;
#pragma omp for schedule(dynamic, 8)
    for (int64_t r = 0; r < w.rows; ++r) {
      float* row = w.row(r);
      for (int64_t b = 0; b < nb; ++b) {
        float* wb = row + b * g;
        float mx = 0;
        for (int64_t j = 0; j < g; ++j) mx = std::max(mx, std::fabs(wb[j]));
        if (mx == 0) continue;
        double best_err = INFINITY;
        int best_i = 0;
        for (int i = 0; i < kSteps; ++i) {
          const float lim = mx * (1.0f - static_cast<float>(i) / 20.0f);
          for (int64_t j = 0; j < g; ++j) x[j] = std::clamp(wb[j], -lim, lim);
          fake_quant(type, x.data(), g, y.data(), buf);
          for (int64_t j = 0; j < g; ++j) e[j] = y[j] - wb[j];
          double err = 0;
          for (int64_t p = 0; p < g; ++p) {
            const float* h = H + (b * g + p) * d + b * g;
            double t = 0;
            for (int64_t q = 0; q < g; ++q) t += static_cast<double>(h[q]) * e[q];
            err += t * e[p];
          }
          if (err < best_err) {
            best_err = err;
            best_i = i;
            std::copy(x.begin(), x.end(), best.begin());
          }
        }
        if (best_i > 0) {
          std::copy(best.begin(), best.end(), wb);
          ++clipped;
        }
      }
    }
  }
  rep.clipped_blocks += clipped;
  rep.blocks += w.rows * nb;
}

}  // namespace

std::vector<ScaleGroup> scale_groups(const ModelConfig& c, int64_t l) {
  const std::string b = "blk." + std::to_string(l) + ".";
  std::vector<ScaleGroup> g = {
      {b + "attn_norm.weight", {b + "attn_q.weight", b + "attn_k.weight", b + "attn_v.weight"},
       LinearSite::kAttnIn, b + "attn_norm>q,k,v"},
      {b + "ffn_norm.weight", {b + "ffn_gate.weight", b + "ffn_up.weight"}, LinearSite::kFfnIn,
       b + "ffn_norm>gate,up"},
      {b + "ffn_up.weight", {b + "ffn_down.weight"}, LinearSite::kFfnDown, b + "up>down"},
  };
  if (c.n_head == c.n_head_kv) {
    g.insert(g.begin() + 1, ScaleGroup{b + "attn_v.weight", {b + "attn_output.weight"},
                                       LinearSite::kAttnOut, b + "v>attn_output"});
  }
  return g;
}

void fold_input_scales(FloatTensors& w, const ModelFile& src, const std::string& producer,
                       const std::vector<std::string>& consumers, const std::vector<float>& s) {
  const auto d = static_cast<int64_t>(s.size());
  for (const std::string& name : consumers) {
    FloatTensor& c = float_tensor(w, src, name);
    if (c.cols != d) throw std::invalid_argument(name + ": input width differs from the scales'");
    for (int64_t r = 0; r < c.rows; ++r) {
      float* row = c.row(r);
      for (int64_t j = 0; j < d; ++j) row[j] *= s[j];
    }
  }
  FloatTensor& p = float_tensor(w, src, producer);
  if (p.rows == 1 || p.cols == 1) {  // a norm weight
    if (static_cast<int64_t>(p.v.size()) != d) throw std::invalid_argument(producer + ": width differs from the scales'");
    for (int64_t j = 0; j < d; ++j) p.v[j] /= s[j];
  } else {
    if (p.rows != d) throw std::invalid_argument(producer + ": output rows differ from the scales'");
    for (int64_t r = 0; r < d; ++r) {
      float* row = p.row(r);
      for (int64_t j = 0; j < p.cols; ++j) row[j] /= s[r];
    }
  }
}

AwqReport apply_awq(const ModelFile& src, CalibrationData& cal, FloatTensors& w,
                    const TypeOfTensor& type_of, const AwqOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.n_grid < 1) throw std::invalid_argument("AWQ needs a grid of at least one α");
  const ModelConfig& c = cal.config;
  AwqReport rep;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    for (const ScaleGroup& g : scale_groups(c, l)) {
      InputStats* st = cal.find(l, g.site);
      bool ok = st && !st->gram.empty() && src.find_tensor(g.producer);
      std::vector<Consumer> cs;
      for (const std::string& name : g.consumers) {
        ok = ok && src.find_tensor(name) && is_integer(type_of(name));
        if (!ok) break;
        const FloatTensor& t = float_tensor(w, src, name);
        cs.push_back({&t, type_of(name), sample_rows(t.rows, o.sample_rows)});
      }
      if (!ok) continue;
      const int64_t d = st->dim;
      const std::vector<float> mean = st->mean_abs();
      const double ref = group_error(cs, {}, st->gram.data(), d, true);
      const double rtn = group_error(cs, {}, st->gram.data(), d, false);
      double best = rtn;
      float best_alpha = 0;
      for (int i = 1; i < o.n_grid; ++i) {
        const float alpha = static_cast<float>(i) / static_cast<float>(o.n_grid);
        const double err = group_error(cs, awq_scales(mean, alpha), st->gram.data(), d, false);
        if (err < best) {
          best = err;
          best_alpha = alpha;
        }
      }
      rep.groups.push_back({g.label, best_alpha, ref > 0 ? rtn / ref : 0, ref > 0 ? best / ref : 0});
      if (best_alpha == 0) continue;
      const std::vector<float> s = awq_scales(mean, best_alpha);
      fold_input_scales(w, src, g.producer, g.consumers, s);
      st->rescale(s);
    }
  }
  if (o.clip) {
    for (const TensorInfo& t : src.tensors) {
      const InputStats* st = cal.for_tensor(t.name);
      const TensorType type = type_of(t.name);
      if (!st || st->gram.empty() || !takes_block_max(type)) continue;
      FloatTensor& ft = float_tensor(w, src, t.name);
      if (ft.cols != st->dim || ft.cols % type_traits(type)->block_elems != 0) continue;
      clip_tensor(ft, type, st->gram.data(), st->dim, rep);
    }
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace nibble
