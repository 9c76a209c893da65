// llama2.c checkpoints: the shared FP32 file against the F16 GGUF converted from it, a synthetic
// checkpoint with a separate classifier, and header/size corruption.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "kernels/fp16.h"
#include "loaders/mapped_file.h"
#include "loaders/model_file.h"
#include "loaders_test_util.h"

namespace nibble {
namespace {

using test::write_bytes;

const char* kMatrices[] = {"attn_q",   "attn_k",   "attn_v", "attn_output",
                           "ffn_gate", "ffn_down", "ffn_up"};

// |f32 - f16| within half an f16 ulp (plus the subnormal step).
void expect_matches_f16(const TensorInfo& f32, const TensorInfo& f16) {
  ASSERT_EQ(f32.type, TensorType::F32);
  ASSERT_EQ(f16.type, TensorType::F16);
  ASSERT_EQ(f32.dims, f16.dims) << f32.name;
  const uint64_t n = f32.n_elements();
  size_t bad = 0;
  for (uint64_t k = 0; k < n; ++k) {
    float a;
    uint16_t h;
    std::memcpy(&a, f32.data + 4 * k, 4);
    std::memcpy(&h, f16.data + 2 * k, 2);
    const float b = fp16_to_fp32(h);
    if (std::fabs(a - b) > std::fabs(a) * (1.0f / 2048) + 3e-8f) ++bad;
  }
  EXPECT_EQ(bad, 0u) << f32.name << ": " << bad << " of " << n << " elements differ";
}

TEST(Llama2c, SharedCheckpointParses) {
  NIBBLE_REQUIRE_SHARED();
  const ModelFile m = open_model_file(test::kjv_dir() + "/kjv-llama.bin");
  EXPECT_EQ(m.format, "llama2c");
  EXPECT_EQ(m.architecture(), "llama");
  EXPECT_EQ(m.meta.get_uint("llama.embedding_length"), 256u);
  EXPECT_EQ(m.meta.get_uint("llama.feed_forward_length"), 768u);
  EXPECT_EQ(m.meta.get_uint("llama.block_count"), 8u);
  EXPECT_EQ(m.meta.get_uint("llama.attention.head_count"), 8u);
  EXPECT_EQ(m.meta.get_uint("llama.attention.head_count_kv"), 4u);
  EXPECT_EQ(m.meta.get_uint("llama.context_length"), 256u);
  EXPECT_EQ(m.meta.get_uint("llama.rope.dimension_count"), 32u);
  EXPECT_EQ(m.meta.get_uint("llama.vocab_size"), 32000u);
  EXPECT_NEAR(*m.meta.get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-12);
  EXPECT_EQ(m.meta.get_float("llama.rope.freq_base"), 10000.0);
  EXPECT_FALSE(m.meta.has("tokenizer.ggml.tokens"));  // the user passes --tokenizer

  ASSERT_EQ(m.tensors.size(), 74u);  // tied head: no output.weight
  EXPECT_EQ(m.find_tensor("output.weight"), nullptr);
  EXPECT_EQ(m.tensor("token_embd.weight").dims, (std::vector<uint64_t>{256, 32000}));
  EXPECT_EQ(m.tensor("token_embd.weight").file_offset, 28u);
  EXPECT_EQ(m.tensor("blk.2.attn_q.weight").dims, (std::vector<uint64_t>{256, 256}));
  EXPECT_EQ(m.tensor("blk.2.attn_k.weight").dims, (std::vector<uint64_t>{256, 128}));
  EXPECT_EQ(m.tensor("blk.2.attn_v.weight").dims, (std::vector<uint64_t>{256, 128}));
  EXPECT_EQ(m.tensor("blk.2.attn_output.weight").dims, (std::vector<uint64_t>{256, 256}));
  EXPECT_EQ(m.tensor("blk.2.ffn_gate.weight").dims, (std::vector<uint64_t>{256, 768}));
  EXPECT_EQ(m.tensor("blk.2.ffn_down.weight").dims, (std::vector<uint64_t>{768, 256}));
  EXPECT_EQ(m.tensor("blk.2.ffn_up.weight").dims, (std::vector<uint64_t>{256, 768}));
  EXPECT_EQ(m.tensor("blk.2.ffn_norm.weight").dims, (std::vector<uint64_t>{256}));
  for (const TensorInfo& t : m.tensors) {
    EXPECT_EQ(t.type, TensorType::F32);
    EXPECT_EQ(t.nbytes, t.n_elements() * 4);
    EXPECT_LE(t.file_offset + t.nbytes, m.mapping->size());
  }
}

TEST(Llama2c, WeightsEqualTheF16Gguf) {
  NIBBLE_REQUIRE_SHARED();
  const ModelFile c = read_llama2c(test::kjv_dir() + "/kjv-llama.bin");
  const ModelFile g = read_gguf(test::kjv_gguf("F16"));
  expect_matches_f16(c.tensor("token_embd.weight"), g.tensor("token_embd.weight"));
  // The GGUF stores the tied head explicitly; it is the embedding.
  expect_matches_f16(c.tensor("token_embd.weight"), g.tensor("output.weight"));
  // Layer tensors too: checks the per-layer offsets and that no Q/K permutation is needed.
  for (int l : {0, 7}) {
    for (const char* w : kMatrices) {
      const std::string name = "blk." + std::to_string(l) + "." + w + ".weight";
      expect_matches_f16(c.tensor(name), g.tensor(name));
    }
    for (const char* w : {"attn_norm", "ffn_norm"}) {
      const std::string name = "blk." + std::to_string(l) + "." + w + ".weight";
      const TensorInfo& a = c.tensor(name);
      const TensorInfo& b = g.tensor(name);
      ASSERT_EQ(a.nbytes, b.nbytes);
      EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << name;
    }
  }
  const TensorInfo& a = c.tensor("output_norm.weight");
  EXPECT_EQ(std::memcmp(a.data, g.tensor("output_norm.weight").data, a.nbytes), 0);
}

struct Shape {
  int32_t dim = 8, hidden = 12, layers = 2, heads = 2, kv_heads = 1, vocab = -10, seq = 4;
};

// Floats of a checkpoint for `s`, each equal to its own index, so a tensor's first element tells
// where the reader thinks it starts.
std::vector<uint8_t> make_checkpoint(const Shape& s) {
  const int64_t vocab = std::abs(static_cast<int64_t>(s.vocab));
  const int64_t head = s.dim / s.heads, kv = head * s.kv_heads;
  int64_t n = vocab * s.dim +
              s.layers * (2 * s.dim + 2 * s.dim * s.dim + 2 * s.dim * kv + 3 * s.dim * s.hidden) +
              s.dim + s.seq * head + (s.vocab < 0 ? vocab * s.dim : 0);
  std::vector<uint8_t> b(28 + 4 * n);
  const int32_t h[7] = {s.dim, s.hidden, s.layers, s.heads, s.kv_heads, s.vocab, s.seq};
  std::memcpy(b.data(), h, 28);
  for (int64_t k = 0; k < n; ++k) test::poke<float>(b, 28 + 4 * k, static_cast<float>(k));
  return b;
}

float first(const ModelFile& m, const std::string& name) {
  float v;
  std::memcpy(&v, m.tensor(name).data, 4);
  return v;
}

TEST(Llama2c, SeparateClassifierAndOffsets) {
  test::TempDir dir;
  const Shape s;
  write_bytes(dir.file("m.bin"), make_checkpoint(s));
  const ModelFile m = open_model_file(dir.file("m.bin"));
  ASSERT_EQ(m.tensors.size(), 1u + 2 * 9 + 2);
  // Offsets in floats, in llama2.c's order: embd 80, rms_att 2x8, wq 2x64, wk 2x32, wv 2x32,
  // wo 2x64, rms_ffn 2x8, w1 2x96, w2 2x96, w3 2x96, rms_final 8, freq 2x(4x2), wcls 80.
  EXPECT_EQ(first(m, "token_embd.weight"), 0);
  EXPECT_EQ(first(m, "blk.0.attn_norm.weight"), 80);
  EXPECT_EQ(first(m, "blk.1.attn_norm.weight"), 88);
  EXPECT_EQ(first(m, "blk.1.attn_q.weight"), 96 + 64);
  EXPECT_EQ(first(m, "blk.1.attn_k.weight"), 224 + 32);
  EXPECT_EQ(first(m, "blk.1.attn_v.weight"), 288 + 32);
  EXPECT_EQ(first(m, "blk.1.attn_output.weight"), 352 + 64);
  EXPECT_EQ(first(m, "blk.1.ffn_norm.weight"), 480 + 8);
  EXPECT_EQ(first(m, "blk.1.ffn_gate.weight"), 496 + 96);
  EXPECT_EQ(first(m, "blk.1.ffn_down.weight"), 688 + 96);
  EXPECT_EQ(first(m, "blk.1.ffn_up.weight"), 880 + 96);
  EXPECT_EQ(first(m, "output_norm.weight"), 1072);
  EXPECT_EQ(first(m, "output.weight"), 1080 + 16);
  EXPECT_EQ(m.tensor("output.weight").dims, (std::vector<uint64_t>{8, 10}));
  EXPECT_EQ(m.tensor("blk.0.attn_k.weight").dims, (std::vector<uint64_t>{8, 4}));
  EXPECT_EQ(m.tensor("blk.0.ffn_down.weight").dims, (std::vector<uint64_t>{12, 8}));
  EXPECT_EQ(m.meta.get_uint("llama.vocab_size"), 10u);
  EXPECT_EQ(m.meta.get_uint("llama.rope.dimension_count"), 4u);
}

void expect_error(const std::string& path, const std::string& fragment) {
  for (bool via_open : {true, false}) {
    try {
      via_open ? open_model_file(path) : read_llama2c(path);
      ADD_FAILURE() << "expected FileError containing '" << fragment << "'";
    } catch (const FileError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
      EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
      if (via_open) {
        EXPECT_NE(msg.find("not a GGUF file or llama2.c checkpoint"), std::string::npos) << msg;
      }
    }
  }
}

TEST(Llama2c, CorruptHeadersAndSizes) {
  test::TempDir dir;
  const std::string p = dir.file("bad.bin");
  const std::vector<uint8_t> good = make_checkpoint(Shape{});

  write_bytes(p, good.data(), 20);
  expect_error(p, "truncated");
  write_bytes(p, good.data(), good.size() - 4);
  expect_error(p, "implies a file of");
  std::vector<uint8_t> longer = good;
  longer.resize(good.size() + 4);
  write_bytes(p, longer);
  expect_error(p, "implies a file of");

  const char* names[] = {"dim",        "hidden_dim", "n_layers", "n_heads",
                         "n_kv_heads", nullptr,      "seq_len"};
  for (int f = 0; f < 7; ++f) {
    if (names[f] == nullptr) continue;
    for (int32_t v : {0, -1, INT32_MIN}) {
      std::vector<uint8_t> b = good;
      test::poke<int32_t>(b, 4 * f, v);
      write_bytes(p, b);
      expect_error(p, std::string(names[f]) + " is " + std::to_string(v));
    }
  }
  std::vector<uint8_t> b = good;
  test::poke<int32_t>(b, 20, 0);
  write_bytes(p, b);
  expect_error(p, "vocab_size is 0");
  b = good;
  test::poke<int32_t>(b, 20, INT32_MIN);  // |vocab| that does not fit int32; size mismatch
  write_bytes(p, b);
  expect_error(p, "implies a file of");
  b = good;
  test::poke<int32_t>(b, 20, 10);  // flipping to shared: wcls bytes left over
  write_bytes(p, b);
  expect_error(p, "implies a file of");
  b = good;
  test::poke<int32_t>(b, 12, 3);  // 3 heads do not divide dim 8
  write_bytes(p, b);
  expect_error(p, "does not divide dim");
  b = good;
  test::poke<int32_t>(b, 12, 4);
  test::poke<int32_t>(b, 16, 3);  // 3 kv heads do not divide 4 heads
  write_bytes(p, b);
  expect_error(p, "does not divide n_heads");
  b = good;
  for (int f = 0; f < 7; ++f) test::poke<int32_t>(b, 4 * f, INT32_MAX);  // sizes ~2^124
  write_bytes(p, b);
  expect_error(p, "overflow");
}

TEST(Llama2c, SharedCheckpointTruncated) {
  NIBBLE_REQUIRE_SHARED();
  test::TempDir dir;
  const std::vector<uint8_t> all = test::read_bytes(test::kjv_dir() + "/kjv-llama.bin");
  ASSERT_GT(all.size(), 1000u);
  for (size_t n :
       {size_t{1}, size_t{27}, size_t{28}, size_t{1000}, all.size() / 2, all.size() - 1}) {
    const std::string p = dir.file("t.bin");
    write_bytes(p, all.data(), n);
    EXPECT_THROW(open_model_file(p), FileError) << n;
  }
}

}  // namespace
}  // namespace nibble
