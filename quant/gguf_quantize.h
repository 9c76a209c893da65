// Quantizes a model file into a GGUF file of one of llama.cpp's plain types, round-to-nearest
// with llama.cpp's reference quantizers (so llama.cpp reads the result as its own). The engine
// is quant/nibble_quantize.h's quantize_model (which picks GGUF for .gguf outputs); this file
// holds the GGUF recipes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loaders/model_file.h"

namespace nibble {

struct GgufRecipe {
  const char* name;         // "Q4_0"
  const char* description;  // one line for --help
};

// The GGUF recipes quantize_to_gguf() accepts.
const std::vector<GgufRecipe>& gguf_recipes();
bool is_gguf_recipe(const std::string& recipe);

// The type a GGUF recipe gives tensor t (1-D tensors F32; the embedding table and output head
// at 8 bits in the 4-bit recipe; rows that are not whole blocks F16). Throws
// std::invalid_argument for an unknown recipe.
TensorType gguf_recipe_type(const std::string& recipe, const TensorInfo& t);
// general.file_type (llama_ftype) of a GGUF recipe.
uint32_t gguf_recipe_file_type(const std::string& recipe);

struct QuantizeReport {
  uint64_t in_bytes = 0, out_bytes = 0;
  uint64_t n_tensors = 0, n_params = 0;
};

// in: GGUF, llama2.c checkpoint or Hugging Face directory; tokenizer_path: sentencepiece .model
// to embed when the input has no vocabulary (llama2.c). Writes GGUF whatever out's extension.
// Throws FileError / std::invalid_argument.
QuantizeReport quantize_to_gguf(const std::string& in, const std::string& out,
                                const std::string& recipe, const std::string& tokenizer_path);

}  // namespace nibble
