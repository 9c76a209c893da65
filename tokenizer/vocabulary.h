// A model's vocabulary as GGUF describes it (tokenizer.ggml.* keys), independent of where it
// was read from: a GGUF file, nibble's own file, or a sentencepiece .model file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loaders/model_file.h"

namespace nibble {

enum TokenType : int32_t {
  kTokenUndefined = 0, kTokenNormal = 1, kTokenUnknown = 2, kTokenControl = 3,
  kTokenUserDefined = 4, kTokenUnused = 5, kTokenByte = 6,
};

struct Vocabulary {
  std::string model;  // tokenizer.ggml.model: "llama" (sentencepiece) or "gpt2" (byte-level BPE)
  std::string pre;    // tokenizer.ggml.pre (BPE pre-tokenizer name)
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1, eot_id = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = true;
  std::string chat_template;

  size_t size() const { return tokens.size(); }
};

// Reads tokenizer.ggml.* from metadata with llama.cpp's defaults (sentencepiece: BOS 1, EOS 2,
// UNK 0, add-BOS on). Out-of-range special ids are ignored (default kept). Throws FileError
// naming `source` when tokens are missing, arrays disagree in length, or the model is unknown.
Vocabulary read_vocabulary(const Metadata& meta, const std::string& source);

// Writes the vocabulary back as tokenizer.ggml.* keys (for GGUF and nibble's own files).
void write_vocabulary(const Vocabulary& vocab, Metadata& meta);

// Reads a sentencepiece .model file (e.g. the Llama 2 tokenizer.model) into a Vocabulary.
Vocabulary read_sentencepiece_model(const std::string& path);

}  // namespace nibble
