// Quantizes a model file into a GGUF file: llama.cpp's plain types (round-to-nearest with
// llama.cpp's reference quantizers, bit-exact) and its K-quant / IQ4 mixes (Q4_K_M, Q3_K_M, …:
// which tensor gets which type as llama.cpp's llama_tensor_get_type decides, quantised by
// nibble's own K-quant and IQ4 quantizers). The engine is quant/nibble_quantize.h's
// quantize_model (which picks GGUF for .gguf outputs); this file holds the GGUF recipes.
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

// What the mixes need to know about the model besides each tensor's name and shape.
struct GgufMixInfo {
  int n_gqa = 1;            // attention heads per KV head (Q2_K and IQ4 mixes raise attn_v at ≥ 4)
  bool has_output = true;   // false: the head is tied to token_embd, which then gets the head's type
};
GgufMixInfo gguf_mix_info(const ModelFile& m);

// The types a GGUF recipe gives the tensors of a model, in order (1-D tensors F32; the mixes'
// rules are in gguf_recipes()' descriptions and docs/format.md; rows that are not whole blocks
// fall back as llama.cpp does: Q2_K/Q3_K/IQ4_XS → IQ4_NL, Q4_K → Q5_0, Q5_K → Q5_1,
// Q6_K → Q8_0, then F16). Layer-dependent rules use each tensor's index among its kind in file
// order, as llama.cpp does. Throws std::invalid_argument for an unknown recipe.
std::vector<TensorType> gguf_recipe_types(const std::string& recipe, const std::vector<TensorInfo>& tensors,
                                          const GgufMixInfo& info);
// One tensor on its own (layer 0 of 1, untied head): for the plain recipes.
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
