#include "quant/smoothquant.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "quant/awq.h"

namespace nibble {

std::vector<float> smooth_scales(const std::vector<float>& act_max, const std::vector<float>& weight_max,
                                 float alpha) {
  if (act_max.size() != weight_max.size()) throw std::invalid_argument("smooth_scales: widths differ");
  std::vector<float> s(act_max.size(), 1.0f);
  for (size_t j = 0; j < s.size(); ++j) {
    if (act_max[j] > 0.0f && weight_max[j] > 0.0f) {
      const double v = std::pow(static_cast<double>(act_max[j]), alpha) /
                       std::pow(static_cast<double>(weight_max[j]), 1.0 - alpha);
      s[j] = static_cast<float>(std::clamp(v, 1e-5, 1e5));
    }
  }
  return s;
}

SmoothReport apply_smoothquant(const ModelFile& src, CalibrationData& cal, FloatTensors& w, float alpha) {
  if (!(alpha >= 0.0f && alpha <= 1.0f)) throw std::invalid_argument("SmoothQuant's α must lie in [0, 1]");
  SmoothReport rep;
  for (int64_t l = 0; l < cal.config.n_layer; ++l) {
    for (const ScaleGroup& g : scale_groups(cal.config, l)) {
      InputStats* st = cal.find(l, g.site);
      bool ok = st != nullptr && src.find_tensor(g.producer) != nullptr;
      for (const std::string& name : g.consumers) ok = ok && src.find_tensor(name) != nullptr;
      if (!ok) continue;
      std::vector<float> wmax(st->dim, 0.0f);
      for (const std::string& name : g.consumers) {
        const FloatTensor& t = float_tensor(w, src, name);
        if (t.cols != st->dim) throw std::invalid_argument(name + ": input width differs from its statistics'");
        for (int64_t r = 0; r < t.rows; ++r) {
          const float* row = t.row(r);
          for (int64_t j = 0; j < t.cols; ++j) wmax[j] = std::max(wmax[j], std::fabs(row[j]));
        }
      }
      rep.max_abs_before = std::max(rep.max_abs_before, st->abs_max());
      const std::vector<float> s = smooth_scales(st->max_abs, wmax, alpha);
      fold_input_scales(w, src, g.producer, g.consumers, s);
      st->rescale(s);
      rep.max_abs_after = std::max(rep.max_abs_after, st->abs_max());
      rep.groups.push_back(g.label);
    }
  }
  return rep;
}

}  // namespace nibble
