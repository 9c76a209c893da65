// Perplexity exactly as llama.cpp's perplexity tool computes it, so figures are comparable,
// and the quality of a model against a higher-precision reference of itself (KL divergence,
// top-1 agreement, ΔPPL). Logits never outlive their chunk: statistics stream.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/session.h"

namespace nibble {

// Which tokens a chunked evaluation scores: chunk c covers tokens [c·n_ctx, (c+1)·n_ctx);
// logits at in-chunk positions first … n_ctx−2 predict the tokens at first+1 … n_ctx−1, with
// first = n_ctx/2 (the first half only provides context).
struct ChunkPlan {
  int64_t n_ctx = 0;
  int64_t n_chunks = 0;
  int64_t first = 0;
  int64_t scored_per_chunk() const { return n_ctx - 1 - first; }
};
// max_chunks < 0: as many whole chunks as the tokens hold. Throws std::invalid_argument when
// there are fewer than 2·n_ctx tokens (llama.cpp's requirement) or n_ctx < 4.
ChunkPlan plan_chunks(int64_t n_tokens, int64_t n_ctx, int64_t max_chunks);

// log p over n logits (double accumulation).
void log_softmax(const float* logits, int64_t n, std::vector<double>& out);
// KL(P_ref ‖ P) = Σ p_ref · (log p_ref − log p), from log-probabilities.
double kl_divergence(const std::vector<double>& logp_ref, const std::vector<double>& logp);

// Running negative log-likelihood with llama.cpp's uncertainty estimate.
class NllAccumulator {
 public:
  void add(double nll) {
    sum_ += nll;
    sum2_ += nll * nll;
    ++n_;
  }
  int64_t count() const { return n_; }
  double ppl() const;
  // Standard error of the PPL: ppl · sqrt(var(nll) / (n − 1)).
  double ppl_stderr() const;

 private:
  double sum_ = 0, sum2_ = 0;
  int64_t n_ = 0;
};

struct PerplexityResult {
  double ppl = 0, ppl_stderr = 0;
  int64_t n_scored = 0, n_chunks = 0, n_ctx = 0;
  double seconds = 0, tokens_per_s = 0;  // tokens evaluated (all chunk tokens) per second
  bool has_ref = false;
  double ref_ppl = 0, ref_ppl_stderr = 0;
  double kld_mean = 0, kld_p90 = 0, kld_p99 = 0, kld_max = 0;
  double top1_agreement = 0;  // fraction 0…1
  double dp_rms = 0;          // RMS of p(correct) − p_ref(correct), fraction
};

struct PerplexityOptions {
  int64_t n_ctx = 512;
  int64_t max_chunks = -1;
  // Called after each chunk with its index and the running result (for progress output).
  std::function<void(int64_t chunk, const PerplexityResult& running)> on_chunk;
  // Writes this model's distributions at every scored position (see logits_file.h).
  std::string save_logits;
  // Compares against distributions saved earlier instead of a reference session.
  std::string ref_logits;
};

// Scores `tokens` (the whole text, tokenized once with BOS as the vocabulary says) with the
// model of `session` and, when ref is given, compares with the reference model evaluated on
// the very same tokens (or with opts.ref_logits, against saved distributions). Both sessions
// need n_ctx ≥ opts.n_ctx. bos ≥ 0: each chunk's first
// token is overwritten with it (only when the vocabulary adds BOS, as llama.cpp does).
PerplexityResult evaluate_perplexity(Session& session, const std::vector<int32_t>& tokens,
                                     int32_t bos, const PerplexityOptions& opts,
                                     Session* ref = nullptr);

}  // namespace nibble
