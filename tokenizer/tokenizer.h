// One interface for every tokenizer: sentencepiece ("llama") and byte-level BPE ("gpt2").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocabulary.h"

namespace nibble {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // add_special: prepend BOS / append EOS as the vocabulary says. parse_special: text spelling a
  // control token (e.g. "<s>") becomes that token instead of being tokenised as text.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special,
                                      bool parse_special = false) const = 0;

  // Bytes the token stands for when it follows other text (sentencepiece "▁" → space, byte
  // tokens → their byte). May be an incomplete UTF-8 sequence; control tokens give "".
  virtual std::string decode_piece(int32_t id) const = 0;

  // Whole-sequence decode (drops the leading space sentencepiece adds for the dummy prefix).
  virtual std::string decode(const std::vector<int32_t>& ids) const;

  const Vocabulary& vocab() const { return vocab_; }
  int32_t n_vocab() const { return static_cast<int32_t>(vocab_.size()); }
  int32_t bos() const { return vocab_.bos_id; }
  int32_t eos() const { return vocab_.eos_id; }
  bool add_bos() const { return vocab_.add_bos; }
  // End of generation: EOS, EOT and the end-of-turn tokens of chat formats.
  bool is_end_of_generation(int32_t id) const;

 protected:
  explicit Tokenizer(Vocabulary vocab);
  Vocabulary vocab_;
  std::vector<int32_t> eog_ids_;
};

// Builds the tokenizer the vocabulary asks for. Throws FileError (naming `source`) for a
// tokenizer model nibble does not implement yet.
std::unique_ptr<Tokenizer> make_tokenizer(const Vocabulary& vocab, const std::string& source);

// Accumulates decoded piece bytes and releases only complete UTF-8 characters, so a stream of
// pieces prints valid text even when a character spans tokens.
class Utf8Stream {
 public:
  // Appends bytes; returns the longest prefix of pending bytes that ends on a character boundary.
  std::string push(std::string_view bytes);
  // Whatever is left (possibly invalid) at the end of the stream.
  std::string flush();

 private:
  std::string pending_;
};

}  // namespace nibble
