// Cutting text at the spellings of special tokens, before any tokenizer model sees it. Shared by
// every tokenizer: the rule comes from llama.cpp / Hugging Face, not from sentencepiece or BPE.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocabulary.h"

namespace nibble {

// A piece of the input: raw text to tokenise (token < 0) or an already identified token.
struct TextFragment {
  std::string_view text;
  int32_t token = -1;
  bool is_token() const { return token >= 0; }
};

class SpecialTokenSplitter {
 public:
  explicit SpecialTokenSplitter(const Vocabulary& vocab);

  // parse_special: control and unknown tokens are recognised too; user-defined tokens always
  // are (Hugging Face's added, non-special tokens). Raw fragments are never empty and view
  // `text`; token fragments view the token's text held by the splitter.
  std::vector<TextFragment> split(std::string_view text, bool parse_special) const;

 private:
  struct Candidate {
    std::string text;
    int32_t id;
    bool always;  // user-defined: split even without parse_special
  };
  std::vector<Candidate> candidates_;  // longest text first
};

}  // namespace nibble
