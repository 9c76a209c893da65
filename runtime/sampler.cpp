#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_set>

namespace nibble {

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {}

void Sampler::accept(int32_t token) {
  if (params_.repeat_last_n <= 0) return;
  recent_.push_back(token);
  while (static_cast<int32_t>(recent_.size()) > params_.repeat_last_n) recent_.pop_front();
}

int32_t Sampler::sample(const float* logits, int64_t n_vocab) {
  if (params_.temperature <= 0.0f) {
    return static_cast<int32_t>(std::max_element(logits, logits + n_vocab) - logits);
  }
  cand_.resize(n_vocab);
  for (int64_t i = 0; i < n_vocab; ++i) cand_[i] = {logits[i], static_cast<int32_t>(i)};

  if (params_.repeat_penalty != 1.0f && !recent_.empty()) {
    // CTRL-style penalty as llama.cpp applies it: once per distinct recent token.
    std::unordered_set<int32_t> seen(recent_.begin(), recent_.end());
    for (int32_t id : seen) {
      if (id < 0 || id >= n_vocab) continue;
      float& l = cand_[id].logit;
      l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    }
  }

  auto by_logit = [](const Candidate& a, const Candidate& b) { return a.logit > b.logit; };
  size_t n = cand_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
    n = params_.top_k;
    std::partial_sort(cand_.begin(), cand_.begin() + n, cand_.end(), by_logit);
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }

  // Probabilities at temperature 1 decide top-p and min-p; temperature applies afterwards.
  auto softmax = [&](float inv_temp) {
    probs_.resize(n);
    const float max_l = cand_[0].logit;
    double sum = 0;
    for (size_t i = 0; i < n; ++i) {
      probs_[i] = std::exp((cand_[i].logit - max_l) * inv_temp);
      sum += probs_[i];
    }
    for (size_t i = 0; i < n; ++i) probs_[i] = static_cast<float>(probs_[i] / sum);
  };
  softmax(1.0f);
  if (params_.top_p < 1.0f) {
    double cum = 0;
    size_t keep = n;
    for (size_t i = 0; i < n; ++i) {
      cum += probs_[i];
      if (cum >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
    n = std::max<size_t>(1, keep);
  }
  if (params_.min_p > 0.0f) {
    const float threshold = probs_[0] * params_.min_p;
    size_t keep = 1;
    while (keep < n && probs_[keep] >= threshold) ++keep;
    n = keep;
  }
  softmax(1.0f / params_.temperature);
  std::discrete_distribution<size_t> pick(probs_.begin(), probs_.begin() + n);
  return cand_[pick(rng_)].id;
}

}  // namespace nibble
