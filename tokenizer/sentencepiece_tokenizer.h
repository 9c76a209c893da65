// SentencePiece-style vocabularies (tokenizer.ggml.model = "llama"), tokenised by the
// sentencepiece library from a ModelProto built out of the vocabulary.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/special_tokens.h"
#include "tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace nibble {

class SentencePieceTokenizer : public Tokenizer {
 public:
  // Throws FileError naming `source` when sentencepiece rejects the vocabulary. encode() throws
  // FileError too when a malformed vocabulary cannot segment a text (sentencepiece's BPE can
  // fail on inconsistent piece sets it accepted at load time).
  SentencePieceTokenizer(Vocabulary vocab, const std::string& source);
  ~SentencePieceTokenizer() override;

  std::vector<int32_t> encode(std::string_view text, bool add_special,
                              bool parse_special = false) const override;
  std::string decode_piece(int32_t id) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;

 private:
  void encode_fragment(std::string_view text, std::vector<int32_t>& out) const;

  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  SpecialTokenSplitter splitter_;
  // No piece spans a newline, so text can be encoded in independent chunks ending at one.
  // (sentencepiece's BPE grows worse than linearly with the length of one call.)
  bool newline_splits_ = false;
  std::vector<std::string> pieces_;  // decode_piece per id, computed once
  std::string source_;               // the file the vocabulary came from, for error messages
};

// The serialized sentencepiece ModelProto equivalent to a "llama" vocabulary (BPE, byte
// fallback, no normalization). With dummy_prefix_in_model false the model never adds the
// leading space itself (the caller does, where llama.cpp would). Exposed for tests and tools.
std::string sentencepiece_model_proto(const Vocabulary& vocab, bool dummy_prefix_in_model = true);

}  // namespace nibble
