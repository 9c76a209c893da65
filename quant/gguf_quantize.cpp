#include "quant/gguf_quantize.h"

#include <stdexcept>

#include "kernels/quantize.h"
#include "loaders/gguf_writer.h"
#include "loaders/model_file.h"
#include "tokenizer/vocabulary.h"

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

QuantizeReport quantize_to_gguf(const std::string& in, const std::string& out,
                                const std::string& recipe, const std::string& tokenizer_path) {
  const RecipeRule rule = rule_for(recipe);
  const ModelFile src = open_model_file(in);
  Metadata meta = src.meta;
  if (!tokenizer_path.empty()) {
    write_vocabulary(read_sentencepiece_model(tokenizer_path), meta);
  } else if (!meta.has("tokenizer.ggml.tokens")) {
    throw FileError(in + ": the file has no tokenizer; pass one with --tokenizer tokenizer.model");
  }
  meta.set_uint("general.file_type", rule.file_type);
  meta.set_uint("general.quantization_version", 2);
  if (!meta.has("general.name")) meta.set_string("general.name", "nibble " + recipe);

  QuantizeReport rep;
  std::vector<GgufTensorToWrite> tensors;
  std::vector<float> row;
  for (const TensorInfo& t : src.tensors) {
    GgufTensorToWrite w;
    w.name = t.name;
    w.dims = t.dims;
    const bool is_embedding = t.name == "token_embd.weight" || t.name == "output.weight";
    w.type = t.dims.size() < 2 ? TensorType::F32 : is_embedding ? rule.embedding : rule.matrices;
    const uint64_t k = t.row_length(), rows = t.n_rows();
    const uint64_t out_row = row_bytes(static_cast<uint32_t>(w.type), k);
    if (out_row == 0) {  // the row is not a whole number of blocks: keep more precision
      w.type = TensorType::F16;
    }
    const uint64_t in_row = row_bytes(static_cast<uint32_t>(t.type), k);
    const uint64_t dst_row = row_bytes(static_cast<uint32_t>(w.type), k);
    if (!can_dequantize(t.type)) {
      throw FileError(in + ": tensor '" + t.name + "' has type " +
                      type_name(static_cast<uint32_t>(t.type)) + ", which cannot be re-quantized");
    }
    w.data.resize(dst_row * rows);
    row.resize(k);
    for (uint64_t r = 0; r < rows; ++r) {
      dequantize_row(t.type, t.data + r * in_row, static_cast<int64_t>(k), row.data());
      quantize_row(w.type, row.data(), static_cast<int64_t>(k), w.data.data() + r * dst_row);
    }
    rep.in_bytes += t.nbytes;
    rep.out_bytes += w.data.size();
    rep.n_params += t.n_elements();
    ++rep.n_tensors;
    tensors.push_back(std::move(w));
  }
  write_gguf(out, meta, tensors);
  return rep;
}

}  // namespace nibble
