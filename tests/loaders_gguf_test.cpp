// Every shared GGUF (model files and vocabulary-only files) parses with the expected directory.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "loaders/mapped_file.h"
#include "loaders/model_file.h"
#include "loaders_test_util.h"

namespace nibble {
namespace {

using test::write_bytes;

using test::kjv_gguf;

struct KjvCase {
  const char* file_type;  // file name suffix
  uint64_t ftype;         // general.file_type
  TensorType matrix;      // type of token_embd and the layer matrices
};

class KjvGguf : public ::testing::TestWithParam<KjvCase> {};

TEST_P(KjvGguf, Parses) {
  NIBBLE_REQUIRE_SHARED();
  const KjvCase& c = GetParam();
  const ModelFile m = open_model_file(kjv_gguf(c.file_type));
  EXPECT_EQ(m.format, "gguf");
  EXPECT_EQ(m.version, 3u);
  EXPECT_EQ(m.architecture(), "llama");
  ASSERT_EQ(m.tensors.size(), 75u);  // 8 layers x 9 + token_embd + output_norm + output

  EXPECT_EQ(m.meta.get_uint("general.file_type"), c.ftype);
  EXPECT_EQ(m.meta.get_uint("llama.embedding_length"), 256u);
  EXPECT_EQ(m.meta.get_uint("llama.block_count"), 8u);
  EXPECT_EQ(m.meta.get_uint("llama.feed_forward_length"), 768u);
  EXPECT_EQ(m.meta.get_uint("llama.attention.head_count"), 8u);
  EXPECT_EQ(m.meta.get_uint("llama.attention.head_count_kv"), 4u);
  EXPECT_EQ(m.meta.get_uint("llama.context_length"), 128u);
  EXPECT_NEAR(*m.meta.get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-12);
  EXPECT_EQ(m.meta.get_string("tokenizer.ggml.model"), "llama");
  // 4294967295 is stored as is: interpreting it as "none" is the tokenizer's business.
  EXPECT_EQ(m.meta.get_uint("tokenizer.ggml.padding_token_id"), 4294967295u);
  EXPECT_EQ(m.meta.get_int("tokenizer.ggml.bos_token_id"), 1);
  const auto* tokens = m.meta.get_string_array("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  ASSERT_EQ(tokens->size(), 32000u);
  EXPECT_EQ((*tokens)[0], "<unk>");
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ((*tokens)[2], "</s>");
  EXPECT_EQ((*tokens)[3], "<0x00>");
  const auto* scores = m.meta.get_num_array("tokenizer.ggml.scores");
  ASSERT_NE(scores, nullptr);
  EXPECT_EQ(scores->size(), 32000u);
  EXPECT_EQ(m.meta.get_int_array("tokenizer.ggml.scores"), nullptr);  // floats have no int view
  const auto* ttype = m.meta.get_int_array("tokenizer.ggml.token_type");
  ASSERT_NE(ttype, nullptr);
  ASSERT_EQ(ttype->size(), 32000u);
  EXPECT_EQ((*ttype)[0], 2);  // unknown
  EXPECT_EQ((*ttype)[1], 3);  // control
  EXPECT_EQ((*ttype)[3], 6);  // byte
  // Wrong-kind lookups are nullopt, not exceptions.
  EXPECT_FALSE(m.meta.get_uint("general.architecture"));
  EXPECT_FALSE(m.meta.get_string("llama.block_count"));
  EXPECT_EQ(m.meta.get_string_array("tokenizer.ggml.scores"), nullptr);

  const TensorInfo& embd = m.tensor("token_embd.weight");
  EXPECT_EQ(embd.dims, (std::vector<uint64_t>{256, 32000}));
  EXPECT_EQ(embd.type, c.matrix);
  EXPECT_EQ(embd.n_rows(), 32000u);
  EXPECT_EQ(m.tensor("blk.0.attn_k.weight").dims, (std::vector<uint64_t>{256, 128}));
  EXPECT_EQ(m.tensor("blk.7.ffn_down.weight").dims, (std::vector<uint64_t>{768, 256}));
  EXPECT_EQ(m.tensor("blk.3.ffn_gate.weight").dims, (std::vector<uint64_t>{256, 768}));
  EXPECT_EQ(m.tensor("blk.3.attn_norm.weight").type, TensorType::F32);
  EXPECT_EQ(m.tensor("output_norm.weight").dims, (std::vector<uint64_t>{256}));
  EXPECT_EQ(m.find_tensor("blk.8.attn_q.weight"), nullptr);
  EXPECT_THROW(m.tensor("nope"), FileError);

  std::map<TensorType, int> by_type;
  const uint8_t* base = m.mapping->data();
  for (const TensorInfo& t : m.tensors) {
    ++by_type[t.type];
    EXPECT_EQ(t.file_offset % 32, 0u) << t.name;
    EXPECT_EQ(t.data, base + t.file_offset) << t.name;
    EXPECT_LE(t.file_offset + t.nbytes, m.mapping->size()) << t.name;
    EXPECT_EQ(t.nbytes, row_bytes(static_cast<uint32_t>(t.type), t.row_length()) * t.n_rows());
  }
  EXPECT_EQ(by_type[TensorType::F32], 17);
  if (c.matrix == TensorType::Q4_0 || c.matrix == TensorType::Q4_1) {
    // llama.cpp's quantizer keeps the head at Q6_K (decisions.md #1).
    EXPECT_EQ(by_type[c.matrix], 57);
    EXPECT_EQ(m.tensor("output.weight").type, TensorType::Q6_K);
  } else if (c.matrix == TensorType::Q4_K) {
    EXPECT_EQ(by_type[TensorType::Q4_K] + by_type[TensorType::Q6_K], 58);
    EXPECT_GT(by_type[TensorType::Q6_K], 1);  // the _M mix: some attn_v / ffn_down are Q6_K
  } else {
    EXPECT_EQ(by_type[c.matrix], 58);
  }
}

INSTANTIATE_TEST_SUITE_P(All, KjvGguf,
                         ::testing::Values(KjvCase{"F16", 1, TensorType::F16},
                                           KjvCase{"Q8_0", 7, TensorType::Q8_0},
                                           KjvCase{"Q4_0", 2, TensorType::Q4_0},
                                           KjvCase{"Q4_1", 3, TensorType::Q4_1},
                                           KjvCase{"Q4_K_M", 15, TensorType::Q4_K},
                                           KjvCase{"Q6_K", 18, TensorType::Q6_K}),
                         [](const auto& info) { return std::string(info.param.file_type); });

TEST(GgufReader, ReadWithoutMmapMatches) {
  NIBBLE_REQUIRE_SHARED();
  const ModelFile a = read_gguf(kjv_gguf("Q4_0"));
  const ModelFile b = read_gguf(kjv_gguf("Q4_0"), OpenOptions{.use_mmap = false, .progress = {}});
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t k = 0; k < a.tensors.size(); ++k) {
    EXPECT_EQ(a.tensors[k].name, b.tensors[k].name);
    EXPECT_EQ(a.tensors[k].file_offset, b.tensors[k].file_offset);
    ASSERT_EQ(a.tensors[k].nbytes, b.tensors[k].nbytes);
    EXPECT_EQ(std::memcmp(a.tensors[k].data, b.tensors[k].data, a.tensors[k].nbytes), 0);
  }
  EXPECT_EQ(a.meta.entries().size(), b.meta.entries().size());
}

TEST(GgufReader, TensorsOutliveModelFileMoves) {
  NIBBLE_REQUIRE_SHARED();
  ModelFile a = read_gguf(kjv_gguf("Q8_0"));
  const uint8_t* p = a.tensor("output_norm.weight").data;
  float first = 0;
  std::memcpy(&first, p, 4);
  ModelFile b = std::move(a);
  float again = 0;
  std::memcpy(&again, b.tensor("output_norm.weight").data, 4);
  EXPECT_EQ(first, again);
}

TEST(GgufReader, VocabularyOnlyFilesParse) {
  NIBBLE_REQUIRE_SHARED();
  // Expected vocabulary sizes and tokenizer models, from the files themselves.
  const std::map<std::string, std::pair<size_t, std::string>> expected = {
      {"ggml-vocab-deepseek-coder.gguf", {32256, "gpt2"}},
      {"ggml-vocab-falcon.gguf", {65024, "gpt2"}},
      {"ggml-vocab-gpt-2.gguf", {50257, "gpt2"}},
      {"ggml-vocab-llama-spm.gguf", {32000, "llama"}},
      {"ggml-vocab-phi-3.gguf", {32064, "llama"}},
      {"ggml-vocab-starcoder.gguf", {49152, "gpt2"}},
  };
  size_t seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(test::vocab_dir())) {
    if (entry.path().extension() != ".gguf") continue;
    ++seen;
    SCOPED_TRACE(entry.path().string());
    const ModelFile m = open_model_file(entry.path().string());
    EXPECT_EQ(m.format, "gguf");
    EXPECT_TRUE(m.tensors.empty());
    EXPECT_FALSE(m.architecture().empty());
    const auto* tokens = m.meta.get_string_array("tokenizer.ggml.tokens");
    ASSERT_NE(tokens, nullptr);
    const auto* types = m.meta.get_int_array("tokenizer.ggml.token_type");
    ASSERT_NE(types, nullptr);
    EXPECT_EQ(types->size(), tokens->size());
    auto it = expected.find(entry.path().filename().string());
    if (it != expected.end()) {
      EXPECT_EQ(tokens->size(), it->second.first);
      EXPECT_EQ(m.meta.get_string("tokenizer.ggml.model"), it->second.second);
    }
    if (m.meta.get_string("tokenizer.ggml.model") == "gpt2") {
      const auto* merges = m.meta.get_string_array("tokenizer.ggml.merges");
      ASSERT_NE(merges, nullptr);
      EXPECT_GT(merges->size(), 1000u);
    }
  }
  EXPECT_GE(seen, expected.size());
}

TEST(GgufReader, DetectsFormatAndRejectsOthers) {
  NIBBLE_REQUIRE_SHARED();
  // A text file is neither format; the message says so and starts with the path.
  const std::string sums = test::kjv_dir() + "/SHA256SUMS";
  try {
    open_model_file(sums);
    FAIL() << "expected FileError";
  } catch (const FileError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(sums + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find("not a GGUF file or llama2.c checkpoint"), std::string::npos) << msg;
  }
  // read_gguf on a llama2.c file names the magic.
  try {
    read_gguf(test::kjv_dir() + "/kjv-llama.bin");
    FAIL() << "expected FileError";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("magic"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nibble
