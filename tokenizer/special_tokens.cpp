#include "tokenizer/special_tokens.h"

#include <algorithm>

namespace nibble {

SpecialTokenSplitter::SpecialTokenSplitter(const Vocabulary& vocab) {
  for (size_t id = 0; id < vocab.size(); ++id) {
    const int32_t type = id < vocab.types.size() ? vocab.types[id] : kTokenNormal;
    if (type != kTokenControl && type != kTokenUserDefined && type != kTokenUnknown) continue;
    if (vocab.tokens[id].empty()) continue;
    candidates_.push_back({vocab.tokens[id], static_cast<int32_t>(id), type == kTokenUserDefined});
  }
  // Longest first, so that a token whose text contains a shorter token's text wins the overlap
  // (e.g. "<|end|>" is never cut as "<|end" + ...). Ties keep id order for determinism.
  std::stable_sort(candidates_.begin(), candidates_.end(),
                   [](const Candidate& a, const Candidate& b) { return a.text.size() > b.text.size(); });
}

std::vector<TextFragment> SpecialTokenSplitter::split(std::string_view text,
                                                      bool parse_special) const {
  std::vector<TextFragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({text, -1});
  std::vector<TextFragment> next;
  // One pass per candidate over the remaining raw text, as llama.cpp does; a single greedy
  // left-to-right scan would resolve overlapping candidates differently.
  for (const Candidate& c : candidates_) {
    if (!parse_special && !c.always) continue;
    bool found = false;
    for (const TextFragment& f : fragments)
      if (!f.is_token() && f.text.find(c.text) != std::string_view::npos) { found = true; break; }
    if (!found) continue;

    next.clear();
    for (const TextFragment& f : fragments) {
      if (f.is_token()) {
        next.push_back(f);
        continue;
      }
      std::string_view rest = f.text;
      for (size_t at; (at = rest.find(c.text)) != std::string_view::npos;) {
        if (at > 0) next.push_back({rest.substr(0, at), -1});
        next.push_back({std::string_view(c.text), c.id});
        rest.remove_prefix(at + c.text.size());
      }
      if (!rest.empty()) next.push_back({rest, -1});
    }
    fragments.swap(next);
  }
  return fragments;
}

}  // namespace nibble
