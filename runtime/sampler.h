// Turns logits into the next token: repetition penalty, top-k, top-p, min-p, temperature, then
// a draw — the order and defaults of llama.cpp's sampler chain, so settings mean the same.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <vector>

namespace nibble {

struct SamplerParams {
  float temperature = 0.8f;   // ≤ 0: greedy argmax, every other setting bypassed
  int32_t top_k = 40;         // ≤ 0: off
  float top_p = 0.95f;        // ≥ 1: off
  float min_p = 0.05f;        // ≤ 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int32_t repeat_last_n = 64;   // how many recent tokens the penalty looks at
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);

  int32_t sample(const float* logits, int64_t n_vocab);
  // Records a token that entered the context (prompt or generated) for the repetition penalty.
  void accept(int32_t token);
  void reset() { recent_.clear(); }
  const SamplerParams& params() const { return params_; }

 private:
  struct Candidate {
    float logit;
    int32_t id;
  };
  SamplerParams params_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
  std::vector<Candidate> cand_;  // reused between calls: no allocation per token
  std::vector<float> probs_;
};

}  // namespace nibble
