// The streaming generation loop: evaluate the prompt as one batch, then sample and evaluate
// one token at a time, handing each piece of text to the caller as soon as it is complete.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "runtime/sampler.h"
#include "runtime/session.h"
#include "tokenizer/tokenizer.h"

namespace nibble {

struct GenerateStats {
  int64_t n_prompt = 0;
  int64_t n_generated = 0;
  double prompt_seconds = 0;  // evaluating the prompt batch
  double gen_seconds = 0;     // sampling + evaluating generated tokens
  bool hit_context_limit = false;
  bool hit_end_of_generation = false;
  bool aborted = false;
};

// Returns false to stop generation (e.g. a UI's cancel button).
using PieceCallback = std::function<bool(std::string_view text)>;

// Generates up to n_predict tokens (< 0: until end of generation or a full context) after
// `prompt`, which is appended to whatever the session already holds. Throws ContextFullError
// when the prompt itself does not fit.
GenerateStats generate(Session& session, const Tokenizer& tokenizer, Sampler& sampler,
                       const std::vector<int32_t>& prompt, int64_t n_predict,
                       const PieceCallback& on_piece);

}  // namespace nibble
