#include "quant/gguf_quantize.h"

#include <stdexcept>

#include "quant/nibble_quantize.h"
#include "quant/quantize_internal.h"

namespace nibble {
namespace {

struct RecipeRule {
  TensorType matrices;  // every 2-D weight
  TensorType embedding; // token_embd and output (the tied head reads token_embd)
  uint32_t file_type;   // general.file_type (llama_ftype)
};

RecipeRule rule_for(const std::string& recipe) {
  // The embedding table doubles as the output head in tied models, where its rounding shows
  // in every logit: the 4-bit recipe keeps it at 8 bits (llama.cpp uses Q6_K there).
  if (recipe == "F32") return {TensorType::F32, TensorType::F32, 0};
  if (recipe == "F16") return {TensorType::F16, TensorType::F16, 1};
  if (recipe == "BF16") return {TensorType::BF16, TensorType::BF16, 32};
  if (recipe == "Q8_0") return {TensorType::Q8_0, TensorType::Q8_0, 7};
  if (recipe == "Q4_0") return {TensorType::Q4_0, TensorType::Q8_0, 2};
  std::string known;
  for (const auto& r : gguf_recipes()) known += std::string(known.empty() ? "" : ", ") + r.name;
  throw std::invalid_argument("unknown GGUF recipe '" + recipe + "' (known: " + known + ")");
}

}  // namespace

const std::vector<GgufRecipe>& gguf_recipes() {
  static const std::vector<GgufRecipe> r = {
      {"F32", "32-bit floats (32 bits/weight)"},
      {"F16", "IEEE half (16 bits/weight)"},
      {"BF16", "bfloat16 (16 bits/weight)"},
      {"Q8_0", "int8, blocks of 32 with an f16 scale (8.5 bits/weight)"},
      {"Q4_0", "int4, blocks of 32 with an f16 scale (4.5 bits/weight); embeddings Q8_0"},
  };
  return r;
}

bool is_gguf_recipe(const std::string& recipe) {
  for (const auto& r : gguf_recipes()) {
    if (recipe == r.name) return true;
  }
  return false;
}

TensorType gguf_recipe_type(const std::string& recipe, const TensorInfo& t) {
  const RecipeRule rule = rule_for(recipe);
  if (t.dims.size() < 2) return TensorType::F32;
  const bool is_embedding = t.name == "token_embd.weight" || t.name == "output.weight";
  const TensorType type = is_embedding ? rule.embedding : rule.matrices;
  // A row that is not a whole number of blocks keeps more precision.
  return row_bytes(static_cast<uint32_t>(type), t.row_length()) == 0 ? TensorType::F16 : type;
}

uint32_t gguf_recipe_file_type(const std::string& recipe) { return rule_for(recipe).file_type; }

QuantizeReport quantize_to_gguf(const std::string& in, const std::string& out,
                                const std::string& recipe, const std::string& tokenizer_path) {
  QuantizeOptions o;
  o.tokenizer_path = tokenizer_path;
  const QuantizeResult r = detail::quantize_model_to(in, out, recipe, o, /*gguf=*/true);
  QuantizeReport rep;
  rep.in_bytes = r.src_bytes;
  rep.out_bytes = r.tensor_bytes;
  rep.n_tensors = r.n_tensors;
  rep.n_params = r.n_params;
  return rep;
}

}  // namespace nibble
