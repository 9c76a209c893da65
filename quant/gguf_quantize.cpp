#include "quant/gguf_quantize.h"

#include <cstdio>
#include <stdexcept>

#include "quant/nibble_quantize.h"
#include "quant/quantize_internal.h"

namespace nibble {
namespace {

// llama.cpp's quantization mixes (llama_ftype). A "mix" is a base type for the 2-D weights plus
// llama_tensor_get_type's per-tensor exceptions, reproduced in mix_type() below.
enum class Mix {
  Plain,  // one type everywhere (F32, F16, BF16, Q8_0, Q6_K) or nibble's Q4_0 rule
  Legacy,  // Q4_1, Q5_0, Q5_1: one type everywhere but the output head (Q6_K), as llama.cpp
  Q2_K,
  Q3_K_S,
  Q3_K_M,
  Q3_K_L,
  Q4_K_S,
  Q4_K_M,
  Q5_K_S,
  Q5_K_M,
  IQ4_NL,
  IQ4_XS,
};

struct RecipeRule {
  TensorType base;       // every 2-D weight unless the mix says otherwise
  TensorType embedding;  // nibble's plain recipes: token_embd and output
  uint32_t file_type;    // general.file_type (llama_ftype)
  Mix mix;
};

RecipeRule rule_for(const std::string& recipe) {
  using T = TensorType;
  // The embedding table doubles as the output head in tied models, where its rounding shows
  // in every logit: the 4-bit recipe keeps it at 8 bits (llama.cpp uses Q6_K there).
  if (recipe == "F32") return {T::F32, T::F32, 0, Mix::Plain};
  if (recipe == "F16") return {T::F16, T::F16, 1, Mix::Plain};
  if (recipe == "BF16") return {T::BF16, T::BF16, 32, Mix::Plain};
  if (recipe == "Q8_0") return {T::Q8_0, T::Q8_0, 7, Mix::Plain};
  if (recipe == "Q4_0") return {T::Q4_0, T::Q8_0, 2, Mix::Plain};
  if (recipe == "Q6_K") return {T::Q6_K, T::Q6_K, 18, Mix::Plain};
  if (recipe == "Q4_1") return {T::Q4_1, T::Q4_1, 3, Mix::Legacy};
  if (recipe == "Q5_0") return {T::Q5_0, T::Q5_0, 8, Mix::Legacy};
  if (recipe == "Q5_1") return {T::Q5_1, T::Q5_1, 9, Mix::Legacy};
  if (recipe == "Q2_K") return {T::Q2_K, T::Q2_K, 10, Mix::Q2_K};
  if (recipe == "Q3_K_S") return {T::Q3_K, T::Q3_K, 11, Mix::Q3_K_S};
  if (recipe == "Q3_K_M") return {T::Q3_K, T::Q3_K, 12, Mix::Q3_K_M};
  if (recipe == "Q3_K_L") return {T::Q3_K, T::Q3_K, 13, Mix::Q3_K_L};
  if (recipe == "Q4_K_S") return {T::Q4_K, T::Q4_K, 14, Mix::Q4_K_S};
  if (recipe == "Q4_K_M") return {T::Q4_K, T::Q4_K, 15, Mix::Q4_K_M};
  if (recipe == "Q5_K_S") return {T::Q5_K, T::Q5_K, 16, Mix::Q5_K_S};
  if (recipe == "Q5_K_M") return {T::Q5_K, T::Q5_K, 17, Mix::Q5_K_M};
  if (recipe == "IQ4_NL") return {T::IQ4_NL, T::IQ4_NL, 25, Mix::IQ4_NL};
  if (recipe == "IQ4_XS") return {T::IQ4_XS, T::IQ4_XS, 30, Mix::IQ4_XS};
  std::string known;
  for (const auto& r : gguf_recipes()) known += std::string(known.empty() ? "" : ", ") + r.name;
  throw std::invalid_argument("unknown GGUF recipe '" + recipe + "' (known: " + known + ")");
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// llama.cpp's "more bits" layers: the first and last eighth, and every third one in between.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// Where a tensor stands among its kind (attn_v, ffn_down) in file order, as llama.cpp counts.
struct Position {
  int i = 0, n = 1;
};

// The K-quant mixes' exceptions to the base type (llama.cpp's llama_tensor_get_type, for the
// dense decoder models nibble runs: no Falcon, 70B-GQA or 8-expert special cases).
TensorType mix_type(const RecipeRule& rule, const TensorInfo& t, const GgufMixInfo& info, Position attn_v,
                    Position ffn_down) {
  using T = TensorType;
  const Mix mix = rule.mix;
  const std::string& name = t.name;
  T type = rule.base;
  // The output head (or the embedding table when it is also the head): Q6_K, or Q8_0 when its
  // rows are not whole super-blocks. The plain Q8_0 recipe keeps Q8_0.
  if (name == "output.weight" || (!info.has_output && name == "token_embd.weight")) {
    if (t.row_length() % static_cast<uint64_t>(type_traits(type)->block_elems) != 0) return T::Q8_0;
    return type == T::Q8_0 ? T::Q8_0 : T::Q6_K;
  }
  if (name == "token_embd.weight") return type;
  if (contains(name, "attn_v.weight")) {
    const int i = attn_v.i, n = attn_v.n;
    if (mix == Mix::Q2_K) type = info.n_gqa >= 4 ? T::Q4_K : T::Q3_K;
    else if (mix == Mix::Q3_K_M) type = i < 2 ? T::Q5_K : T::Q4_K;
    else if (mix == Mix::Q3_K_L) type = T::Q5_K;
    else if ((mix == Mix::IQ4_NL || mix == Mix::IQ4_XS) && info.n_gqa >= 4) type = T::Q5_K;
    else if ((mix == Mix::Q4_K_M || mix == Mix::Q5_K_M) && use_more_bits(i, n)) type = T::Q6_K;
    else if (mix == Mix::Q4_K_S && i < 4) type = T::Q5_K;
  } else if (contains(name, "ffn_down")) {
    const int i = ffn_down.i, n = ffn_down.n;
    if (mix == Mix::Q2_K) type = T::Q3_K;
    else if (mix == Mix::Q3_K_M) type = i < n / 16 ? T::Q5_K : T::Q4_K;
    else if (mix == Mix::Q3_K_L) type = T::Q5_K;
    else if (mix == Mix::Q4_K_M) type = use_more_bits(i, n) ? T::Q6_K : type;
    else if ((mix == Mix::IQ4_NL || mix == Mix::IQ4_XS) && i < n / 8) type = T::Q5_K;
    else if (mix == Mix::Q5_K_M && use_more_bits(i, n)) type = T::Q6_K;
    else if (mix == Mix::Q4_K_S && i < n / 8) type = T::Q5_K;
  } else if (contains(name, "attn_output.weight")) {
    if (mix == Mix::Q2_K) type = T::Q3_K;
    else if (mix == Mix::Q3_K_M) type = T::Q4_K;
    else if (mix == Mix::Q3_K_L) type = T::Q5_K;
  } else if (contains(name, "attn_qkv.weight")) {
    if (mix == Mix::Q3_K_M || mix == Mix::Q3_K_L) type = T::Q4_K;
    else if (mix == Mix::Q4_K_M) type = T::Q5_K;
    else if (mix == Mix::Q5_K_M) type = T::Q6_K;
  }
  return type;
}

// llama.cpp's fallback for rows that are not whole blocks of the chosen type: a 32-element
// format of about the same size, and F16 when even that does not fit.
TensorType row_fallback(TensorType type, uint64_t k) {
  using T = TensorType;
  auto fits = [k](T ty) { return k % static_cast<uint64_t>(type_traits(ty)->block_elems) == 0; };
  if (fits(type)) return type;
  T alt = T::F16;
  switch (type) {
    case T::Q2_K:
    case T::Q3_K:
    case T::IQ4_XS: alt = T::IQ4_NL; break;
    case T::Q4_K: alt = T::Q5_0; break;
    case T::Q5_K: alt = T::Q5_1; break;
    case T::Q6_K: alt = T::Q8_0; break;
    default: break;
  }
  return fits(alt) ? alt : T::F16;
}

}  // namespace

const std::vector<GgufRecipe>& gguf_recipes() {
  static const std::vector<GgufRecipe> r = {
      {"F32", "32-bit floats (32 bits/weight)"},
      {"F16", "IEEE half (16 bits/weight)"},
      {"BF16", "bfloat16 (16 bits/weight)"},
      {"Q8_0", "int8, blocks of 32 with an f16 scale (8.5 bits/weight)"},
      {"Q4_0", "int4, blocks of 32 with an f16 scale (4.5 bits/weight); embeddings Q8_0"},
      {"Q6_K", "Q6_K everywhere (6.56 bits/weight)"},
      {"Q5_1", "int5 asymmetric, blocks of 32 (6 bits/weight); output Q6_K"},
      {"Q5_0", "int5, blocks of 32 with an f16 scale (5.5 bits/weight); output Q6_K"},
      {"Q4_1", "int4 asymmetric, blocks of 32 (5 bits/weight); output Q6_K"},
      {"Q5_K_M", "Q5_K; output, and attn_v/ffn_down of the more-bits layers (first and last 1/8, every 3rd) Q6_K"},
      {"Q5_K_S", "Q5_K; output Q6_K"},
      {"Q4_K_M", "Q4_K; output, and attn_v/ffn_down of the more-bits layers (first and last 1/8, every 3rd) Q6_K"},
      {"Q4_K_S", "Q4_K; output Q6_K; attn_v of the first 4 layers and ffn_down of the first 1/8 Q5_K"},
      {"IQ4_XS", "IQ4_XS (4.25 bits/weight); output Q6_K; ffn_down of the first 1/8 (and attn_v when GQA >= 4) Q5_K"},
      {"IQ4_NL", "IQ4_NL (4.5 bits/weight); output Q6_K; ffn_down of the first 1/8 (and attn_v when GQA >= 4) Q5_K"},
      {"Q3_K_L", "Q3_K; output Q6_K; attn_v, attn_output, ffn_down Q5_K"},
      {"Q3_K_M", "Q3_K; output Q6_K; attn_v Q5_K in the first 2 layers, else Q4_K; attn_output Q4_K; "
                 "ffn_down Q5_K in the first 1/16, else Q4_K"},
      {"Q3_K_S", "Q3_K; output Q6_K"},
      {"Q2_K", "Q2_K; output Q6_K; attn_v Q3_K (Q4_K when GQA >= 4); attn_output and ffn_down Q3_K"},
  };
  return r;
}

bool is_gguf_recipe(const std::string& recipe) {
  for (const auto& r : gguf_recipes()) {
    if (recipe == r.name) return true;
  }
  return false;
}

GgufMixInfo gguf_mix_info(const ModelFile& m) {
  GgufMixInfo info;
  info.has_output = m.find_tensor("output.weight") != nullptr;
  const std::string arch = m.architecture();
  const auto heads = m.meta.get_uint(arch + ".attention.head_count");
  const auto kv_heads = m.meta.get_uint(arch + ".attention.head_count_kv");
  if (heads && kv_heads && *kv_heads > 0) info.n_gqa = static_cast<int>(*heads / *kv_heads);
  return info;
}

std::vector<TensorType> gguf_recipe_types(const std::string& recipe, const std::vector<TensorInfo>& tensors,
                                          const GgufMixInfo& info) {
  const RecipeRule rule = rule_for(recipe);
  // llama.cpp counts attn_v (and fused qkv) tensors, and takes ffn_down's layer from the same
  // running count: a tensor's index among its kind in file order.
  int n_attn_v = 0, n_ffn_down = 0;
  for (const TensorInfo& t : tensors) {
    if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight")) ++n_attn_v;
    if (contains(t.name, "ffn_down") && t.dims.size() >= 2) ++n_ffn_down;
  }
  std::vector<TensorType> types;
  int i_attn_v = 0, i_ffn_down = 0;
  for (const TensorInfo& t : tensors) {
    const Position attn_v{i_attn_v, n_attn_v}, ffn_down{i_ffn_down, n_ffn_down};
    if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight")) ++i_attn_v;
    if (contains(t.name, "ffn_down") && t.dims.size() >= 2) ++i_ffn_down;
    if (t.dims.size() < 2) {
      types.push_back(TensorType::F32);
      continue;
    }
    if (rule.mix == Mix::Plain && rule.base != TensorType::Q6_K) {
      // nibble's plain recipes: a row that is not a whole number of blocks keeps more precision.
      const bool is_embedding = t.name == "token_embd.weight" || t.name == "output.weight";
      const TensorType type = is_embedding ? rule.embedding : rule.base;
      types.push_back(row_bytes(static_cast<uint32_t>(type), t.row_length()) == 0 ? TensorType::F16 : type);
      continue;
    }
    types.push_back(row_fallback(mix_type(rule, t, info, attn_v, ffn_down), t.row_length()));
  }
  return types;
}

TensorType gguf_recipe_type(const std::string& recipe, const TensorInfo& t) {
  return gguf_recipe_types(recipe, {t}, GgufMixInfo{}).front();
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
