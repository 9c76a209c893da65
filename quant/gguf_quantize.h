// Quantizes a model file into a GGUF file of one of llama.cpp's plain types, round-to-nearest
// with llama.cpp's reference quantizers (so llama.cpp reads the result as its own).
#pragma once

#include <string>
#include <vector>

namespace nibble {

struct GgufRecipe {
  const char* name;         // "Q4_0"
  const char* description;  // one line for --help
};

// The GGUF recipes quantize_to_gguf() accepts.
const std::vector<GgufRecipe>& gguf_recipes();

struct QuantizeReport {
  uint64_t in_bytes = 0, out_bytes = 0;
  uint64_t n_tensors = 0, n_params = 0;
};

// in: GGUF or llama2.c checkpoint; tokenizer_path: sentencepiece .model to embed when the input
// has no vocabulary (llama2.c). Throws FileError / std::invalid_argument.
QuantizeReport quantize_to_gguf(const std::string& in, const std::string& out,
                                const std::string& recipe, const std::string& tokenizer_path);

}  // namespace nibble
