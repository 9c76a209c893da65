#include "runtime/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>

#include "runtime/logits_file.h"

namespace nibble {

ChunkPlan plan_chunks(int64_t n_tokens, int64_t n_ctx, int64_t max_chunks) {
  if (n_ctx < 4) throw std::invalid_argument("perplexity needs a context of at least 4 tokens");
  if (n_tokens < 2 * n_ctx) {
    throw std::invalid_argument("perplexity needs at least 2·n_ctx = " +
                                std::to_string(2 * n_ctx) + " tokens, the text has " +
                                std::to_string(n_tokens) + " (use a smaller -c)");
  }
  ChunkPlan p;
  p.n_ctx = n_ctx;
  p.n_chunks = n_tokens / n_ctx;
  if (max_chunks >= 0) p.n_chunks = std::min(p.n_chunks, max_chunks);
  p.first = n_ctx / 2;
  return p;
}

void log_softmax(const float* logits, int64_t n, std::vector<double>& out) {
  out.resize(n);
  const double mx = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(logits[i] - mx);
  const double lse = mx + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[i] = logits[i] - lse;
}

double kl_divergence(const std::vector<double>& logp_ref, const std::vector<double>& logp) {
  double kl = 0;
  for (size_t i = 0; i < logp_ref.size(); ++i) {
    if (logp_ref[i] == -std::numeric_limits<double>::infinity()) continue;  // p_ref = 0
    kl += std::exp(logp_ref[i]) * (logp_ref[i] - logp[i]);
  }
  return std::max(0.0, kl);  // rounding can leave a tiny negative for identical inputs
}

double NllAccumulator::ppl() const { return n_ ? std::exp(sum_ / n_) : 0.0; }

double NllAccumulator::ppl_stderr() const {
  if (n_ < 2) return 0.0;
  const double mean = sum_ / n_;
  const double var = std::max(0.0, sum2_ / n_ - mean * mean);
  return ppl() * std::sqrt(var / (n_ - 1));
}

namespace {

double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(std::ceil(q * v.size())) - (q > 0));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

}  // namespace

PerplexityResult evaluate_perplexity(Session& session, const std::vector<int32_t>& tokens,
                                     int32_t bos, const PerplexityOptions& opts, Session* ref) {
  const ChunkPlan plan = plan_chunks(static_cast<int64_t>(tokens.size()), opts.n_ctx,
                                     opts.max_chunks);
  if (session.n_ctx() < plan.n_ctx || (ref && ref->n_ctx() < plan.n_ctx)) {
    throw std::invalid_argument("perplexity: the session's context is smaller than -c");
  }
  const int64_t V = session.n_vocab();
  if (ref && ref->n_vocab() != V) {
    throw std::invalid_argument("perplexity: the reference model has " +
                                std::to_string(ref->n_vocab()) + " tokens, the model " +
                                std::to_string(V));
  }

  if (ref && !opts.ref_logits.empty()) {
    throw std::invalid_argument("perplexity: give a reference model or reference logits, not both");
  }
  const LogitsFileHeader header{static_cast<uint32_t>(V), static_cast<uint32_t>(plan.n_ctx),
                                static_cast<uint32_t>(plan.n_chunks),
                                static_cast<uint32_t>(plan.first)};
  // The chunks exactly as evaluated (BOS overwrite included): what a saved file must match.
  std::vector<int32_t> chunk_tokens(tokens.begin(), tokens.begin() + plan.n_chunks * plan.n_ctx);
  for (int64_t c = 0; bos >= 0 && c < plan.n_chunks; ++c) chunk_tokens[c * plan.n_ctx] = bos;
  std::unique_ptr<LogitsWriter> writer;
  std::unique_ptr<LogitsReader> reader;
  if (!opts.save_logits.empty()) {
    writer = std::make_unique<LogitsWriter>(opts.save_logits, header, chunk_tokens);
  }
  if (!opts.ref_logits.empty()) {
    reader = std::make_unique<LogitsReader>(opts.ref_logits, header, chunk_tokens);
  }

  PerplexityResult r;
  r.n_ctx = plan.n_ctx;
  r.has_ref = ref != nullptr || reader != nullptr;
  NllAccumulator nll, ref_nll;
  std::vector<double> klds;
  double dp2 = 0;
  int64_t agree = 0;
  std::vector<float> logits(plan.n_ctx * V), ref_logits(ref ? plan.n_ctx * V : 0);
  std::vector<double> lp, ref_lp;
  std::vector<int32_t> chunk(plan.n_ctx);
  const auto t0 = std::chrono::steady_clock::now();
  double ref_seconds = 0;

  for (int64_t c = 0; c < plan.n_chunks; ++c) {
    std::copy_n(chunk_tokens.begin() + c * plan.n_ctx, plan.n_ctx, chunk.begin());
    session.reset();
    session.eval_all_logits(chunk.data(), plan.n_ctx, logits.data());
    if (ref) {
      const auto tr = std::chrono::steady_clock::now();
      ref->reset();
      ref->eval_all_logits(chunk.data(), plan.n_ctx, ref_logits.data());
      ref_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - tr).count();
    }
    for (int64_t j = plan.first; j < plan.n_ctx - 1; ++j) {
      const int32_t target = chunk[j + 1];
      log_softmax(&logits[j * V], V, lp);
      nll.add(-lp[target]);
      if (writer) writer->write(lp, target);
      if (!r.has_ref) continue;
      double ref_target_lp;
      if (reader) {
        reader->read(ref_lp, ref_target_lp);
      } else {
        log_softmax(&ref_logits[j * V], V, ref_lp);
        ref_target_lp = ref_lp[target];
      }
      ref_nll.add(-ref_target_lp);
      klds.push_back(kl_divergence(ref_lp, lp));
      const auto a = std::max_element(lp.begin(), lp.end()) - lp.begin();
      const auto b = std::max_element(ref_lp.begin(), ref_lp.end()) - ref_lp.begin();
      agree += a == b;
      const double dp = std::exp(lp[target]) - std::exp(ref_target_lp);
      dp2 += dp * dp;
    }
    r.n_chunks = c + 1;
    r.n_scored = nll.count();
    r.ppl = nll.ppl();
    r.ppl_stderr = nll.ppl_stderr();
    if (opts.on_chunk) opts.on_chunk(c, r);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() -
              ref_seconds;
  r.tokens_per_s = r.seconds > 0 ? r.n_chunks * plan.n_ctx / r.seconds : 0;
  if (writer) writer->close();
  if (r.has_ref && r.n_scored > 0) {
    r.ref_ppl = ref_nll.ppl();
    r.ref_ppl_stderr = ref_nll.ppl_stderr();
    double sum = 0;
    for (double k : klds) sum += k;
    r.kld_mean = sum / klds.size();
    r.kld_max = *std::max_element(klds.begin(), klds.end());
    r.kld_p90 = percentile(klds, 0.90);
    r.kld_p99 = percentile(klds, 0.99);
    r.top1_agreement = static_cast<double>(agree) / r.n_scored;
    r.dp_rms = std::sqrt(dp2 / r.n_scored);
  }
  return r;
}

}  // namespace nibble
