// quantize → write → mmap on the shared KJV model, for every recipe: the file holds exactly the
// tensors the in-memory quantization makes, models run it zero copy (pre-packed weights used in
// place), and its logits are bit-identical to the in-memory path's — and to GGUF files made
// from the same source (q8 = Q8_0, mixed = the bundled Q4_0 GGUF). Hugging Face checkpoints
// (written here from the same weights) give the same file as the llama2.c checkpoint.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "kernels/matmul_internal.h"
#include "kernels/quantize.h"
#include "loaders/mapped_file.h"
#include "loaders/model_file.h"
#include "loaders/nibble_format.h"
#include "models/blocks.h"
#include "models/model.h"
#include "quant/gguf_quantize.h"
#include "quant/hf_checkpoint.h"
#include "quant/nibble_quantize.h"
#include "runtime/session.h"
#include "tests/loaders_test_util.h"

namespace nibble {
namespace {

using test::TempDir;

const std::string kShared = NIBBLE_SHARED_DIR;
const std::string kKjv = kShared + "/models/kjv-llama/";
const std::string kBin = kKjv + "kjv-llama.bin";
const std::string kTokenizer = kShared + "/models/llama2-tokenizer.model";

#define REQUIRE_SHARED()                                   \
  if (!std::filesystem::exists(kBin))                      \
  GTEST_SKIP() << "needs " << kBin << " (../shared beside the checkout)"

// "In the beginning God created the heaven and the earth." and more, as token ids.
const std::vector<int32_t> kTokens = {1, 512, 278, 6763, 4177, 2825, 278, 18356, 322, 278, 8437, 29889, 1126};

std::vector<float> logits(const ModelFile& f, int threads = 2) {
  auto model = load_model(f);
  SessionOptions o;
  o.n_ctx = 64;
  o.n_threads = threads;
  Session s(*model, o);
  std::vector<float> out(kTokens.size() * model->config().n_vocab);
  s.eval_all_logits(kTokens.data(), static_cast<int64_t>(kTokens.size()), out.data());
  return out;
}

// Bit-identical, with the first difference named when not.
void expect_same_logits(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      FAIL() << what << ": logit " << i << " differs: " << a[i] << " vs " << b[i];
    }
  }
}

// The plain-layout bytes of a tensor (unpacking packed4).
std::vector<uint8_t> plain_bytes(const TensorInfo& t) {
  if (t.layout == 0) return std::vector<uint8_t>(t.data, t.data + t.nbytes);
  std::vector<uint8_t> out(t.n_rows() * row_bytes(static_cast<uint32_t>(t.type), t.row_length()));
  nbl::unpack_packed4(t.type, t.dims, t.data, out.data());
  return out;
}

void expect_same_tensors(const ModelFile& a, const ModelFile& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const TensorInfo& ta : a.tensors) {
    const TensorInfo* tb = b.find_tensor(ta.name);
    ASSERT_NE(tb, nullptr) << ta.name;
    EXPECT_EQ(ta.type, tb->type) << ta.name;
    EXPECT_EQ(ta.dims, tb->dims) << ta.name;
    EXPECT_TRUE(plain_bytes(ta) == plain_bytes(*tb)) << ta.name << ": bytes differ";
  }
}

class EveryRecipe : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryRecipe, RoundTripsThroughTheFileWithIdenticalLogits) {
  REQUIRE_SHARED();
  const std::string recipe = GetParam();
  TempDir dir;
  const std::string out = dir.file("kjv." + recipe);
  QuantizeOptions o;
  o.tokenizer_path = kTokenizer;
  o.measure = true;
  const QuantizeResult r = quantize_model(kBin, out, recipe, o);
  EXPECT_EQ(r.container, "nibble");
  EXPECT_EQ(r.n_tensors, 74u);
  EXPECT_EQ(r.file_bytes, std::filesystem::file_size(out));

  OpenOptions open;
  open.verify = true;
  const ModelFile file = open_model_file(out, open);
  const ModelFile src = open_quant_source(kBin, kTokenizer);
  const ModelFile mem = quantize_in_memory(src, recipe);
  expect_same_tensors(file, mem);

  uint64_t packed = 0;
  for (const TensorInfo& t : file.tensors) {
    // Zero copy: every tensor is a view of the mapping.
    EXPECT_EQ(t.data, file.mapping->data() + t.file_offset) << t.name;
    EXPECT_EQ(t.layout, stores_packed(t, t.type) ? 1u : 0u) << t.name;
    packed += t.layout;
    if (t.dims.size() == 1) {
      EXPECT_EQ(t.type, TensorType::F32) << t.name;
    }
  }
  if (recipe == "q4" || recipe == "q8" || recipe == "mixed") {
    EXPECT_EQ(packed, 56u) << recipe;
  }

  // Measured error is sane for the precision.
  for (const TensorQuantStats& s : r.tensors) {
    if (s.dims.size() < 2) {
      EXPECT_TRUE(std::isinf(s.snr_db)) << s.name;
      continue;
    }
    const double min_snr = recipe == "f16" ? 60 : recipe.rfind("q8", 0) == 0 ? 35 : 15;
    EXPECT_GT(s.snr_db, min_snr) << recipe << " " << s.name;
    EXPECT_GT(s.cosine, 0.98) << recipe << " " << s.name;
  }

  expect_same_logits(logits(file), logits(mem), recipe + ": file vs in-memory");
}

INSTANTIATE_TEST_SUITE_P(Recipes, EveryRecipe,
                         ::testing::Values("q8", "q8c", "q4", "q4-g64", "q4-g128", "q4a", "mixed", "f16"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

TEST(NibbleFile, Q8LogitsEqualGgufQ8_0FromTheSameSource) {
  REQUIRE_SHARED();
  TempDir dir;
  quantize_to_gguf(kBin, dir.file("kjv.gguf"), "Q8_0", kTokenizer);
  QuantizeOptions o;
  o.tokenizer_path = kTokenizer;
  quantize_model(kBin, dir.file("kjv.q8"), "q8", o);
  const ModelFile gguf = open_model_file(dir.file("kjv.gguf"));
  const ModelFile q8 = open_model_file(dir.file("kjv.q8"));
  expect_same_tensors(gguf, q8);
  expect_same_logits(logits(gguf), logits(q8), "q8 vs GGUF Q8_0");
}

TEST(NibbleFile, MixedLogitsEqualTheBundledQ4_0Gguf) {
  REQUIRE_SHARED();
  TempDir dir;
  QuantizeOptions o;
  o.tokenizer_path = kTokenizer;
  quantize_model(kBin, dir.file("kjv.q4"), "mixed", o);
  const ModelFile gguf = open_model_file(std::string(NIBBLE_SOURCE_DIR) + "/assets/kjv-llama-q4_0.gguf");
  const ModelFile q4 = open_model_file(dir.file("kjv.q4"));
  expect_same_tensors(gguf, q4);
  expect_same_logits(logits(gguf), logits(q4), "mixed vs the bundled Q4_0 GGUF");
}

TEST(NibbleFile, PrePackedWeightsAreBoundInPlace) {
  REQUIRE_SHARED();
  TempDir dir;
  QuantizeOptions o;
  o.tokenizer_path = kTokenizer;
  quantize_model(kBin, dir.file("kjv.q4"), "q4", o);
  const ModelFile f = open_model_file(dir.file("kjv.q4"));
  WeightStore store;
  const TensorInfo& t = f.tensor("blk.2.ffn_down.weight");
  ASSERT_EQ(t.layout, 1u);
  const WeightMatrix w = bind_matrix(f, t.name, 768, 256, &store);
  if (detail::rows16_layout_pays(t.type)) {
    // This target reads kLayoutRows16 (AVX-512): the file's tiles are repacked once into it.
    EXPECT_EQ(w.layout, kLayoutRows16);
    ASSERT_EQ(store.packed.size(), 1u);
    EXPECT_EQ(w.data, store.packed[0].view.data);
  } else {
    EXPECT_EQ(w.data, t.data);  // the file's pages, not a copy
    EXPECT_EQ(w.layout, kLayoutPacked4);
    EXPECT_TRUE(store.packed.empty());
  }
  // A packed tensor read row by row (no store) is refused, not misread.
  EXPECT_THROW(bind_matrix(f, t.name, 768, 256, nullptr), FileError);
  // The whole model: every matrix but the embedding table bound straight from the mapping (or
  // repacked from it).
  const std::vector<float> mapped = logits(f);
  // Read into memory instead (--no-mmap): same logits (misaligned packed tensors are copied).
  OpenOptions no_mmap;
  no_mmap.use_mmap = false;
  expect_same_logits(mapped, logits(open_model_file(dir.file("kjv.q4"), no_mmap)), "mmap vs read");
  expect_same_logits(mapped, logits(f, 1), "2 threads vs 1");
}

TEST(NibbleFile, CarriesTokenizerAndProvenance) {
  REQUIRE_SHARED();
  TempDir dir;
  QuantizeOptions o;
  o.tokenizer_path = kTokenizer;
  quantize_model(kBin, dir.file("kjv.q4"), "q4", o);
  const ModelFile f = open_model_file(dir.file("kjv.q4"));
  const ModelFile gguf = open_model_file(kKjv + "kjv-llama-Q8_0.gguf");
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"}) {
    const MetaValue* a = f.meta.find(key);
    const MetaValue* b = gguf.meta.find(key);
    ASSERT_NE(a, nullptr) << key;
    ASSERT_NE(b, nullptr) << key;
    EXPECT_EQ(a->strs, b->strs) << key;
    EXPECT_EQ(a->ints, b->ints) << key;
  }
  EXPECT_EQ(f.meta.get_string("nibble.quantization.recipe"), "q4");
  EXPECT_EQ(f.meta.get_string("nibble.source.file"), "kjv-llama.bin");
  EXPECT_EQ(f.meta.get_string("nibble.tool.version"), "nibble 0.1.0");
  std::ifstream sums(kKjv + "SHA256SUMS");
  std::string hash, name, want;
  while (sums >> hash >> name) {
    if (name == "kjv-llama.bin") want = hash;
  }
  EXPECT_EQ(f.meta.get_string("nibble.source.sha256"), want);
  EXPECT_FALSE(f.meta.has("general.file_type"));
}

TEST(NibbleFile, QuantizedGgufTensorsOfTheRecipesTypeAreCopied) {
  REQUIRE_SHARED();
  TempDir dir;
  QuantizeOptions o;
  o.measure = true;
  const QuantizeResult r = quantize_model(kKjv + "kjv-llama-Q8_0.gguf", dir.file("kjv.q8"), "q8", o);
  const ModelFile gguf = open_model_file(kKjv + "kjv-llama-Q8_0.gguf");
  const ModelFile q8 = open_model_file(dir.file("kjv.q8"));
  for (const TensorQuantStats& s : r.tensors) {
    if (s.src_type != TensorType::Q8_0) continue;
    EXPECT_TRUE(s.copied) << s.name;
    EXPECT_EQ(s.mse, 0.0) << s.name;
    EXPECT_TRUE(std::isinf(s.snr_db)) << s.name;
    EXPECT_TRUE(plain_bytes(gguf.tensor(s.name)) == plain_bytes(q8.tensor(s.name))) << s.name;
  }
  // A nibble file is an input too: its packed tensors come back out of a .gguf unchanged.
  quantize_model(dir.file("kjv.q8"), dir.file("back.gguf"), "Q8_0", {});
  expect_same_tensors(open_model_file(dir.file("back.gguf")), gguf);
}

TEST(NibbleFile, RecipeMistakesAreRefusedBeforeLoading) {
  TempDir dir;
  EXPECT_THROW(quantize_model("/nonexistent", dir.file("x.q4"), "Q4_0", {}), std::invalid_argument);
  EXPECT_THROW(quantize_model("/nonexistent", dir.file("x.gguf"), "q4", {}), std::invalid_argument);
  EXPECT_THROW(quantize_model("/nonexistent", dir.file("x.q4"), "q3", {}), std::invalid_argument);
  EXPECT_THROW(quantize_model("/nonexistent", dir.file("x.q8"), "q8a8", {}), std::invalid_argument);
  EXPECT_THROW(quantize_model("/nonexistent", dir.file("x.q4"), "q4", {}), FileError);
  // Fallbacks for rows that are not whole groups.
  TensorInfo t;
  t.name = "blk.0.ffn_up.weight";
  t.dims = {192, 4};
  EXPECT_EQ(recipe_tensor_type("q4-g128", t), TensorType::Q4_G64);
  t.dims = {96, 4};
  EXPECT_EQ(recipe_tensor_type("q4-g128", t), TensorType::Q4_0);
  t.dims = {80, 4};
  EXPECT_EQ(recipe_tensor_type("q4", t), TensorType::F16);
  t.dims = {80};
  EXPECT_EQ(recipe_tensor_type("q4", t), TensorType::F32);
}

// ---- Hugging Face checkpoints, written here from the llama2.c weights.

std::string json_dims(const std::vector<uint64_t>& dims) {  // outermost first, as HF writes
  std::string s = "[";
  for (size_t i = dims.size(); i-- > 0;) s += std::to_string(dims[i]) + (i ? ", " : "");
  return s + "]";
}

struct StTensor {
  std::string name, dtype;
  std::vector<uint64_t> dims;  // innermost first
  std::vector<uint8_t> data;
};

void write_safetensors(const std::string& path, const std::vector<StTensor>& ts) {
  std::string header = "{\"__metadata__\": {\"format\": \"pt\"}";
  uint64_t off = 0;
  for (const StTensor& t : ts) {
    header += ", \"" + t.name + "\": {\"dtype\": \"" + t.dtype + "\", \"shape\": " + json_dims(t.dims) +
              ", \"data_offsets\": [" + std::to_string(off) + ", " + std::to_string(off + t.data.size()) + "]}";
    off += t.data.size();
  }
  header += "}";
  while (header.size() % 8) header += ' ';
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const StTensor& t : ts) out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size()));
  ASSERT_TRUE(out.good());
}

std::string hf_name(const std::string& gguf) {
  if (gguf == "token_embd.weight") return "model.embed_tokens.weight";
  if (gguf == "output_norm.weight") return "model.norm.weight";
  const size_t dot = gguf.find('.', 4);
  const std::string layer = "model.layers." + gguf.substr(4, dot - 4) + ".";
  const std::string rest = gguf.substr(dot + 1);
  const std::pair<const char*, const char*> map[] = {
      {"attn_q.weight", "self_attn.q_proj.weight"}, {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"}, {"attn_output.weight", "self_attn.o_proj.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},  {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},  {"attn_norm.weight", "input_layernorm.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"}};
  for (const auto& [g, h] : map) {
    if (rest == g) return layer + h;
  }
  return "unknown";
}

TEST(NibbleFile, HuggingFaceCheckpointGivesTheSameModel) {
  REQUIRE_SHARED();
  TempDir dir;
  const std::string ckpt = dir.file("kjv-hf");
  std::filesystem::create_directories(ckpt);
  const ModelFile bin = open_model_file(kBin);
  // Two shards; the embedding as F16 (its f16 rounding is what the f16 recipe does anyway),
  // everything else F32; q/k rows back in HF's rotate-half order.
  std::vector<StTensor> shards[2];
  for (const TensorInfo& t : bin.tensors) {
    StTensor s;
    s.name = hf_name(t.name);
    s.dims = t.dims;
    if (t.name == "token_embd.weight") {
      s.dtype = "F16";
      s.data.resize(t.n_elements() * 2);
      quantize_row(TensorType::F16, reinterpret_cast<const float*>(t.data), static_cast<int64_t>(t.n_elements()), s.data.data());
    } else {
      s.dtype = "F32";
      s.data.assign(t.data, t.data + t.nbytes);
      const bool q = t.name.find("attn_q.") != std::string::npos, k = t.name.find("attn_k.") != std::string::npos;
      if (q || k) {
        unpermute_rope_rows(t.data, s.data.data(), t.n_rows(), t.row_length() * 4, q ? 8 : 4);
      }
    }
    const bool late = t.name.rfind("blk.", 0) == 0 && std::stoi(t.name.substr(4)) >= 4;
    shards[late || t.name == "output_norm.weight" ? 1 : 0].push_back(std::move(s));
  }
  write_safetensors(ckpt + "/model-00001-of-00002.safetensors", shards[0]);
  write_safetensors(ckpt + "/model-00002-of-00002.safetensors", shards[1]);
  const std::string config = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama",)"
                             R"( "hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 8,)"
                             R"( "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 32000,)"
                             R"( "max_position_embeddings": 256, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,)"
                             R"( "rope_scaling": null, "tie_word_embeddings": true, "torch_dtype": "float32"})";
  std::ofstream(ckpt + "/config.json") << config;
  std::filesystem::copy_file(kTokenizer, ckpt + "/tokenizer.model");

  QuantizeOptions from_hf;
  quantize_model(ckpt, dir.file("hf.f16"), "f16", from_hf);
  QuantizeOptions from_bin;
  from_bin.tokenizer_path = kTokenizer;
  quantize_model(kBin, dir.file("bin.f16"), "f16", from_bin);
  quantize_to_gguf(kBin, dir.file("bin-f16.gguf"), "F16", kTokenizer);

  const ModelFile hf = open_model_file(dir.file("hf.f16"));
  const ModelFile ref = open_model_file(dir.file("bin.f16"));
  expect_same_tensors(hf, ref);
  for (const char* key : {"llama.embedding_length", "llama.block_count", "llama.feed_forward_length",
                          "llama.attention.head_count", "llama.attention.head_count_kv",
                          "llama.context_length", "llama.rope.dimension_count"}) {
    EXPECT_EQ(hf.meta.get_uint(key), ref.meta.get_uint(key)) << key;
  }
  EXPECT_EQ(hf.meta.get_float("llama.attention.layer_norm_rms_epsilon"),
            ref.meta.get_float("llama.attention.layer_norm_rms_epsilon"));
  EXPECT_EQ(hf.meta.get_float("llama.rope.freq_base"), ref.meta.get_float("llama.rope.freq_base"));
  const std::vector<float> hf_logits = logits(hf);
  expect_same_logits(hf_logits, logits(ref), "HF checkpoint vs llama2.c checkpoint");
  expect_same_logits(hf_logits, logits(open_model_file(dir.file("bin-f16.gguf"))), "HF checkpoint vs GGUF F16");
}

}  // namespace
}  // namespace nibble
