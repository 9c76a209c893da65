#include "runtime/generate.h"

#include <chrono>

namespace nibble {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

GenerateStats generate(Session& session, const Tokenizer& tokenizer, Sampler& sampler,
                       const std::vector<int32_t>& prompt, int64_t n_predict,
                       const PieceCallback& on_piece) {
  GenerateStats st;
  st.n_prompt = static_cast<int64_t>(prompt.size());
  for (int32_t t : prompt) sampler.accept(t);

  auto t0 = std::chrono::steady_clock::now();
  const float* logits = session.eval(prompt);
  st.prompt_seconds = seconds_since(t0);

  Utf8Stream utf8;
  t0 = std::chrono::steady_clock::now();
  while (n_predict < 0 || st.n_generated < n_predict) {
    const int32_t next = sampler.sample(logits, session.n_vocab());
    if (tokenizer.is_end_of_generation(next)) {
      st.hit_end_of_generation = true;
      break;
    }
    sampler.accept(next);
    ++st.n_generated;
    const std::string text = utf8.push(tokenizer.decode_piece(next));
    if (!text.empty() && !on_piece(text)) {
      st.aborted = true;
      break;
    }
    if (n_predict >= 0 && st.n_generated >= n_predict) break;
    if (session.n_past() >= session.n_ctx()) {
      st.hit_context_limit = true;
      break;
    }
    logits = session.eval(&next, 1);
  }
  st.gen_seconds = seconds_since(t0);
  const std::string rest = utf8.flush();
  if (!rest.empty() && !st.aborted) on_piece(rest);
  return st;
}

}  // namespace nibble
