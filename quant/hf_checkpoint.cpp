// Hugging Face LLaMA checkpoint directory → ModelFile with GGUF names (see hf_checkpoint.h).
#include "quant/hf_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "loaders/mapped_file.h"
#include "loaders/safetensors_reader.h"
#include "tokenizer/vocabulary.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// config.json and tokenizer_config.json are a few KB; a chat template a few tens of KB.
constexpr uintmax_t kMaxJsonBytes = 16u << 20;

json read_json(const std::string& path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) throw FileError(path + ": cannot read: " + ec.message());
  if (size > kMaxJsonBytes) throw FileError(path + ": " + std::to_string(size) + " bytes is too large for a config file");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in) throw FileError(path + ": cannot read");
  const std::string text = ss.str();
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw FileError(path + ": not a JSON object");
  return j;
}

class Config {
 public:
  Config(std::string path, json j) : path_(std::move(path)), j_(std::move(j)) {}

  int64_t positive(const char* key) const {
    const auto v = optional_int(key);
    if (!v) throw FileError(path_ + ": missing " + key);
    return *v;
  }
  int64_t positive_or(const char* key, int64_t fallback) const {
    return optional_int(key).value_or(fallback);
  }
  double number_or(const char* key, double fallback) const {
    const auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_number()) throw FileError(path_ + ": " + key + " is not a number");
    return it->get<double>();
  }
  bool bool_or(const char* key, bool fallback) const {
    const auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw FileError(path_ + ": " + key + " is not true or false");
    return it->get<bool>();
  }
  std::string string_or(const char* key, const std::string& fallback) const {
    const auto it = j_.find(key);
    return it != j_.end() && it->is_string() ? it->get<std::string>() : fallback;
  }
  const json& raw() const { return j_; }
  const std::string& path() const { return path_; }

 private:
  std::optional<int64_t> optional_int(const char* key) const {
    const auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return std::nullopt;
    if (!it->is_number_integer() || it->get<int64_t>() <= 0 || it->get<int64_t>() > (int64_t{1} << 40)) {
      throw FileError(path_ + ": " + key + " is not a positive integer");
    }
    return it->get<int64_t>();
  }
  std::string path_;
  json j_;
};

// HF name → GGUF name, and how many heads to permute over (0: no permutation). Empty name:
// a tensor nibble does not need (rotary inv_freq buffers some exports include).
struct Mapped {
  std::string name;
  enum { kNone, kQ, kK } permute = kNone;
};

Mapped map_name(const std::string& hf, const std::string& where) {
  if (hf == "model.embed_tokens.weight") return {"token_embd.weight"};
  if (hf == "model.norm.weight") return {"output_norm.weight"};
  if (hf == "lm_head.weight") return {"output.weight"};
  static const std::string kLayers = "model.layers.";
  if (hf.compare(0, kLayers.size(), kLayers) == 0) {
    const size_t dot = hf.find('.', kLayers.size());
    const std::string num = hf.substr(kLayers.size(), dot == std::string::npos ? std::string::npos : dot - kLayers.size());
    if (dot != std::string::npos && !num.empty() && num.size() < 6 &&
        std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      const std::string rest = hf.substr(dot + 1);
      const std::string blk = "blk." + std::to_string(std::stoi(num)) + ".";
      static const std::pair<const char*, const char*> kMap[] = {
          {"self_attn.v_proj.weight", "attn_v.weight"},
          {"self_attn.o_proj.weight", "attn_output.weight"},
          {"mlp.gate_proj.weight", "ffn_gate.weight"},
          {"mlp.up_proj.weight", "ffn_up.weight"},
          {"mlp.down_proj.weight", "ffn_down.weight"},
          {"input_layernorm.weight", "attn_norm.weight"},
          {"post_attention_layernorm.weight", "ffn_norm.weight"},
      };
      if (rest == "self_attn.q_proj.weight") return {blk + "attn_q.weight", Mapped::kQ};
      if (rest == "self_attn.k_proj.weight") return {blk + "attn_k.weight", Mapped::kK};
      for (const auto& [from, to] : kMap) {
        if (rest == from) return {blk + to};
      }
      if (rest == "self_attn.rotary_emb.inv_freq") return {""};
    }
  }
  throw FileError(where + ": tensor '" + hf + "' is not part of a LLaMA checkpoint nibble knows "
                  "(biases and other extras are not supported)");
}

void reorder_rows(const uint8_t* src, uint8_t* dst, uint64_t n_rows, uint64_t row_bytes,
                  uint64_t n_head, bool forward) {
  const uint64_t d = n_rows / n_head, half = d / 2;
  for (uint64_t h = 0; h < n_head; ++h) {
    for (uint64_t i = 0; i < half; ++i) {
      for (uint64_t j = 0; j < 2; ++j) {
        const uint64_t gguf = h * d + 2 * i + j, hf = h * d + j * half + i;
        const uint64_t to = forward ? gguf : hf, from = forward ? hf : gguf;
        std::memcpy(dst + to * row_bytes, src + from * row_bytes, row_bytes);
      }
    }
  }
}

}  // namespace

void permute_rope_rows(const uint8_t* src, uint8_t* dst, uint64_t n_rows, uint64_t row_bytes,
                       uint64_t n_head) {
  reorder_rows(src, dst, n_rows, row_bytes, n_head, true);
}

void unpermute_rope_rows(const uint8_t* src, uint8_t* dst, uint64_t n_rows, uint64_t row_bytes,
                         uint64_t n_head) {
  reorder_rows(src, dst, n_rows, row_bytes, n_head, false);
}

bool is_hf_checkpoint(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::is_regular_file(fs::path(path) / "config.json", ec);
}

ModelFile read_hf_checkpoint(const std::string& dir, const std::string& tokenizer_path) {
  const fs::path root(dir);
  const Config c((root / "config.json").string(), read_json((root / "config.json").string()));
  const std::string model_type = c.string_or("model_type", "");
  if (model_type != "llama") {
    throw FileError(c.path() + ": model_type '" + model_type + "' is not supported (only "
                    "\"llama\" checkpoints are read)");
  }
  const int64_t n_embd = c.positive("hidden_size");
  const int64_t n_ff = c.positive("intermediate_size");
  const int64_t n_layer = c.positive("num_hidden_layers");
  const int64_t n_head = c.positive("num_attention_heads");
  const int64_t n_head_kv = c.positive_or("num_key_value_heads", n_head);
  const int64_t n_vocab = c.positive("vocab_size");
  const int64_t head_dim = c.positive_or("head_dim", n_embd / n_head);
  if (n_head % n_head_kv != 0) {
    throw FileError(c.path() + ": num_key_value_heads " + std::to_string(n_head_kv) +
                    " does not divide num_attention_heads " + std::to_string(n_head));
  }
  if (head_dim % 2 != 0) throw FileError(c.path() + ": head size " + std::to_string(head_dim) + " is odd");

  ModelFile mf;
  mf.path = dir;
  mf.format = "hf";
  Metadata& m = mf.meta;
  m.set_string("general.architecture", "llama");
  m.set_string("general.name", c.string_or("_name_or_path", root.filename().string()));
  m.set_uint("llama.context_length", static_cast<uint64_t>(c.positive_or("max_position_embeddings", 2048)));
  m.set_uint("llama.embedding_length", static_cast<uint64_t>(n_embd));
  m.set_uint("llama.block_count", static_cast<uint64_t>(n_layer));
  m.set_uint("llama.feed_forward_length", static_cast<uint64_t>(n_ff));
  m.set_uint("llama.rope.dimension_count", static_cast<uint64_t>(head_dim));
  m.set_uint("llama.attention.head_count", static_cast<uint64_t>(n_head));
  m.set_uint("llama.attention.head_count_kv", static_cast<uint64_t>(n_head_kv));
  if (head_dim * n_head != n_embd) {
    m.set_uint("llama.attention.key_length", static_cast<uint64_t>(head_dim));
    m.set_uint("llama.attention.value_length", static_cast<uint64_t>(head_dim));
  }
  m.set_float("llama.attention.layer_norm_rms_epsilon", c.number_or("rms_norm_eps", 1e-6));
  m.set_float("llama.rope.freq_base", c.number_or("rope_theta", 10000.0));
  if (const auto it = c.raw().find("rope_scaling"); it != c.raw().end() && !it->is_null()) {
    std::string type;
    if (it->is_object()) {
      for (const char* k : {"rope_type", "type"}) {
        if (it->contains(k) && (*it)[k].is_string()) type = (*it)[k].get<std::string>();
      }
    }
    const auto factor = it->is_object() && it->contains("factor") && (*it)["factor"].is_number()
                            ? (*it)["factor"].get<double>() : 0.0;
    if (type != "linear" || !(factor > 0)) {
      throw FileError(c.path() + ": rope_scaling " + it->dump() + " is not supported (only "
                      "{\"type\": \"linear\", \"factor\": F})");
    }
    m.set_string("llama.rope.scaling.type", "linear");
    m.set_float("llama.rope.scaling.factor", factor);
  }

  // Vocabulary: the sentencepiece model, plus the chat template when the checkpoint has one.
  const std::string tok = !tokenizer_path.empty() ? tokenizer_path : (root / "tokenizer.model").string();
  std::error_code ec;
  if (!fs::is_regular_file(tok, ec)) {
    throw FileError(dir + ": no tokenizer.model in the checkpoint; pass one with --tokenizer");
  }
  Vocabulary vocab = read_sentencepiece_model(tok);
  if (fs::is_regular_file(root / "tokenizer_config.json", ec)) {
    const json tc = read_json((root / "tokenizer_config.json").string());
    if (const auto it = tc.find("chat_template"); it != tc.end() && it->is_string()) {
      vocab.chat_template = it->get<std::string>();
    }
  }
  write_vocabulary(vocab, m);

  // Tensors from every shard, in file-name order.
  std::vector<std::string> shards;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".safetensors") shards.push_back(e.path().string());
  }
  if (ec) throw FileError(dir + ": cannot list: " + ec.message());
  std::sort(shards.begin(), shards.end());
  if (shards.empty()) throw FileError(dir + ": no *.safetensors files");
  for (const std::string& shard : shards) {
    ModelFile st = read_safetensors(shard);
    for (TensorInfo& t : st.tensors) {
      const Mapped mapped = map_name(t.name, shard);
      if (mapped.name.empty()) continue;
      if (mf.find_tensor(mapped.name)) {
        throw FileError(shard + ": tensor '" + t.name + "' appears in more than one shard");
      }
      t.name = mapped.name;
      if (mapped.permute != Mapped::kNone) {
        const uint64_t heads = static_cast<uint64_t>(mapped.permute == Mapped::kQ ? n_head : n_head_kv);
        const uint64_t rows = t.n_rows();
        if (t.dims.size() != 2 || rows != heads * static_cast<uint64_t>(head_dim)) {
          throw FileError(shard + ": tensor '" + t.name + "' has " + std::to_string(rows) +
                          " rows, expected " + std::to_string(heads) + " heads × " +
                          std::to_string(head_dim));
        }
        std::vector<uint8_t> permuted(t.nbytes);
        permute_rope_rows(t.data, permuted.data(), rows, t.nbytes / rows, heads);
        t.data = permuted.data();
        t.file_offset = 0;
        mf.owned_buffers.push_back(std::move(permuted));  // the vector's heap block does not move
      }
      mf.tensors.push_back(std::move(t));
    }
    mf.extra_mappings.push_back(st.mapping);
  }
  for (const char* required : {"token_embd.weight", "output_norm.weight"}) {
    if (!mf.find_tensor(required)) throw FileError(dir + ": the checkpoint has no " + std::string(required));
  }
  const TensorInfo& embd = *mf.find_tensor("token_embd.weight");
  if (embd.dims.size() != 2 || embd.dims[1] != static_cast<uint64_t>(n_vocab)) {
    throw FileError(dir + ": model.embed_tokens.weight does not have vocab_size " +
                    std::to_string(n_vocab) + " rows");
  }
  // Untied checkpoints without lm_head would silently run with the embedding as the head.
  if (!c.bool_or("tie_word_embeddings", false) && !mf.find_tensor("output.weight")) {
    throw FileError(dir + ": tie_word_embeddings is false but the checkpoint has no lm_head.weight");
  }
  return mf;
}

}  // namespace nibble
