// Byte-level BPE vocabularies (tokenizer.ggml.model = "gpt2"): GPT-2, Llama 3, Qwen2, SmolLM2,
// StarCoder, DeepSeek, Falcon, ... (model-families.md A).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/tokenizer.h"

namespace nibble {

class BpeTokenizer : public Tokenizer {
 public:
  // Throws FileError naming `source` for an unknown tokenizer.ggml.pre or a vocabulary without
  // merges.
  BpeTokenizer(Vocabulary vocab, const std::string& source);
  ~BpeTokenizer() override;
  // The lookup tables view the vocabulary's strings: no copies.
  BpeTokenizer(const BpeTokenizer&) = delete;
  BpeTokenizer& operator=(const BpeTokenizer&) = delete;

  // Thread-safe: all state of a call lives in the call.
  std::vector<int32_t> encode(std::string_view text, bool add_special,
                              bool parse_special = false) const override;
  std::string decode_piece(int32_t id) const override;
  // Concatenated pieces, then the clean-up of spaces before punctuation when the pre-tokenizer
  // asks for it (Hugging Face's clean_up_tokenization_spaces, as llama.cpp applies it).
  std::string decode(const std::vector<int32_t>& ids) const override;

  bool clean_spaces() const { return spec_.clean_spaces; }

 private:
  struct EncodeState;
  struct MergeTable;

  void encode_fragment(std::string_view text, EncodeState& st, std::vector<int32_t>& out) const;
  void encode_piece(std::string_view piece, EncodeState& st, std::vector<int32_t>& out) const;
  void merge(std::string_view piece, EncodeState& st) const;
  void merge_long(std::string_view piece, EncodeState& st) const;
  void emit_symbol(uint32_t symbol, std::vector<int32_t>& out) const;

  PretokenizerSpec spec_;
  Pretokenizer pretokenizer_;
  SpecialTokenSplitter splitter_;
  std::unique_ptr<MergeTable> merges_;

  // Symbols are what merging works on: ids below n_vocab are the tokens with that text; higher
  // ids name strings that occur in merges but are not tokens (their text is kept for output).
  std::array<uint32_t, 256> byte_symbol_{};       // the one-character symbol of each byte
  std::vector<std::string> extra_symbols_;        // text of symbol n_vocab + i
  std::array<int32_t, 256> single_byte_token_{};  // token whose text is that one byte, or -1
  std::unordered_map<std::string_view, int32_t> token_ids_;  // text -> id (views vocab_)
  std::vector<std::string> pieces_;                          // decode_piece per id, computed once
};

// Byte <-> GPT-2 alphabet (A.2): the code point standing for byte b, and the byte a code point
// stands for (-1 when it stands for none). Exposed for tests.
uint32_t gpt2_byte_to_code_point(uint8_t b);
int gpt2_code_point_to_byte(uint32_t cp);

// clean_up_tokenization_spaces (A.9) applied to a decoded text. Exposed for tests.
std::string clean_up_spaces(std::string_view text);

}  // namespace nibble
