// Pre-tokenization for byte-level BPE: the regex lists that cut text into pieces before any
// merge, chosen by tokenizer.ggml.pre (model-families.md A.3-A.5).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nibble {

// What a tokenizer.ggml.pre name means.
struct PretokenizerSpec {
  // Applied in order, each refining the pieces the previous ones left. Written as the design
  // card writes them (\uXXXX escapes, \s meaning exactly the card's whitespace set).
  std::vector<std::string_view> regexes;
  bool ignore_merges = false;  // a whole piece that is a token is emitted as that token
  bool clean_spaces = true;    // decode() removes the spaces of " ." etc. (A.9)
};

// The spec for a tokenizer.ggml.pre value ("" = key absent = "default"). Throws FileError naming
// `source` and the value when the name is unknown.
PretokenizerSpec pretokenizer_spec(std::string_view pre, const std::string& source);

// A compiled regex list. Compiled once (PCRE2, UTF + Unicode properties, JIT when available);
// split() is const and safe to call from several threads at once (match state is per call).
class Pretokenizer {
 public:
  // Throws FileError naming `source` if a pattern does not compile (a bug in the table, or a
  // PCRE2 built without Unicode support).
  Pretokenizer(const std::vector<std::string_view>& regexes, const std::string& source);
  ~Pretokenizer();
  Pretokenizer(Pretokenizer&&) noexcept;
  Pretokenizer& operator=(Pretokenizer&&) noexcept;

  // Appends the pieces of `text` to `pieces` (views of `text`, never empty, in order, covering
  // all of it). Every regex runs over every current piece; its matches and the unmatched gaps
  // between them both become pieces. Bytes that are not valid UTF-8 take part in matching as
  // U+FFFD (as llama.cpp reads them) but the pieces keep the original bytes.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A card-style regex in PCRE2 syntax: \uXXXX and \UXXXXXXXX become \x{...}, and \s / \S become
// explicit classes of exactly the card's whitespace (PCRE2's own \s also has U+180E). Exposed
// for tests.
std::string pcre2_pattern(std::string_view card_regex);

}  // namespace nibble
