// nibble's quantizers against files llama.cpp's own quantizer wrote from the same weights, its
// K-quant/IQ4 quantizers through a GGUF round trip, and the GGUF mixes' type rules.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/quantize.h"
#include "loaders/gguf_writer.h"
#include "loaders/model_file.h"
#include "quant/gguf_quantize.h"

namespace nibble {
namespace {

const std::string kKjv = std::string(NIBBLE_SHARED_DIR) + "/models/kjv-llama/";

void expect_bit_exact(const std::string& gguf, TensorType type) {
  if (!std::filesystem::exists(kKjv + gguf)) GTEST_SKIP() << "needs ../shared";
  const ModelFile f32 = open_model_file(kKjv + "kjv-llama.bin");
  const ModelFile theirs = open_model_file(kKjv + gguf);
  int compared = 0;
  for (const TensorInfo& t : theirs.tensors) {
    if (t.type != type) continue;
    const TensorInfo* src = f32.find_tensor(t.name);
    if (!src) continue;  // output.weight: the checkpoint's head is tied
    std::vector<uint8_t> ours(t.nbytes);
    const uint64_t k = t.row_length(), rb = row_bytes(static_cast<uint32_t>(type), k);
    for (uint64_t r = 0; r < t.n_rows(); ++r) {
      quantize_row(type, reinterpret_cast<const float*>(src->data) + r * k,
                   static_cast<int64_t>(k), ours.data() + r * rb);
    }
    ASSERT_EQ(0, std::memcmp(ours.data(), t.data, t.nbytes)) << gguf << ": " << t.name;
    ++compared;
  }
  EXPECT_GT(compared, 50) << gguf;
}

TEST(Quantizers, Q8_0IsBitExactWithLlamaCpp) { expect_bit_exact("kjv-llama-Q8_0.gguf", TensorType::Q8_0); }
TEST(Quantizers, Q4_0IsBitExactWithLlamaCpp) { expect_bit_exact("kjv-llama-Q4_0.gguf", TensorType::Q4_0); }
TEST(Quantizers, F16IsBitExactWithLlamaCpp) { expect_bit_exact("kjv-llama-F16.gguf", TensorType::F16); }

// Each searching quantizer's output as a GGUF tensor: written, read back by nibble's reader,
// and multiplied by matmul_reference, which must agree with the dequantised weights.
TEST(Quantizers, KQuantGgufRoundTripsAndMultiplies) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("nibble-kq-" + std::to_string(::getpid()) + ".gguf")).string();
  const TensorType types[] = {TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K,
                              TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS};
  const int64_t K = 512, N = 24, M = 3;
  std::mt19937 rng(21);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> w(K * N), x(M * K);
  for (float& v : w) v = g(rng);
  for (float& v : x) v = g(rng);
  Metadata meta;
  meta.set_string("general.architecture", "llama");
  std::vector<GgufTensorToWrite> tensors;
  for (TensorType t : types) {
    const uint64_t rb = row_bytes(static_cast<uint32_t>(t), K);
    std::vector<uint8_t> data(rb * N);
    for (int64_t r = 0; r < N; ++r) quantize_row(t, w.data() + r * K, K, data.data() + r * rb);
    tensors.push_back({std::string("w.") + type_name(static_cast<uint32_t>(t)), t,
                       {static_cast<uint64_t>(K), static_cast<uint64_t>(N)}, std::move(data)});
  }
  write_gguf(path, meta, tensors);
  {
    const ModelFile f = open_model_file(path);
    for (const GgufTensorToWrite& want : tensors) {
      SCOPED_TRACE(want.name);
      const TensorInfo& t = f.tensor(want.name);
      ASSERT_EQ(t.type, want.type);
      ASSERT_EQ(t.dims, want.dims);
      ASSERT_EQ(t.nbytes, want.data.size());
      ASSERT_EQ(0, std::memcmp(t.data, want.data.data(), t.nbytes));
      WeightMatrix W;
      W.type = t.type;
      W.data = t.data;
      W.rows = N;
      W.cols = K;
      W.row_bytes = row_bytes(static_cast<uint32_t>(t.type), K);
      std::vector<float> y(M * N), deq(K * N);
      matmul_reference(W, x.data(), M, y.data(), N);
      for (int64_t r = 0; r < N; ++r) dequantize_row(t.type, t.data + r * W.row_bytes, K, deq.data() + r * K);
      // The reference quantises x to 8 bits per block of 32: agreement to well under 1 %.
      double e = 0, s = 0, qe = 0;
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t n = 0; n < N; ++n) {
          double ref = 0, exact = 0;
          for (int64_t k = 0; k < K; ++k) {
            ref += double(deq[n * K + k]) * x[m * K + k];
            exact += double(w[n * K + k]) * x[m * K + k];
          }
          e += (y[m * N + n] - ref) * (y[m * N + n] - ref);
          qe += (ref - exact) * (ref - exact);
          s += exact * exact;
        }
      }
      EXPECT_LT(std::sqrt(e / s), 0.01);
      EXPECT_LT(std::sqrt(qe / s), t.type == TensorType::Q2_K ? 0.4 : 0.2);  // the weights' own error
    }
  }
  std::filesystem::remove(path);
}

TensorInfo fake_tensor(const std::string& name, uint64_t k, uint64_t n) {
  TensorInfo t;
  t.name = name;
  t.dims = {k, n};
  return t;
}

// A 16-layer model's tensor list, in GGUF order.
std::vector<TensorInfo> fake_model(uint64_t k, bool tied) {
  std::vector<TensorInfo> v = {fake_tensor("token_embd.weight", k, 1000)};
  for (int i = 0; i < 16; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    for (const char* n : {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
                          "ffn_gate.weight", "ffn_down.weight", "ffn_up.weight"}) {
      v.push_back(fake_tensor(b + n, k, k));
    }
    TensorInfo norm;
    norm.name = b + "attn_norm.weight";
    norm.dims = {k};
    v.push_back(norm);
  }
  if (!tied) v.push_back(fake_tensor("output.weight", k, 1000));
  return v;
}

TensorType type_of(const std::vector<TensorInfo>& ts, const std::vector<TensorType>& types, const std::string& name) {
  for (size_t i = 0; i < ts.size(); ++i) {
    if (ts[i].name == name) return types[i];
  }
  ADD_FAILURE() << "no " << name;
  return TensorType::F32;
}

TEST(Quantizers, MixesFollowLlamaCppRules) {
  using T = TensorType;
  const auto m = fake_model(512, /*tied=*/false);
  GgufMixInfo info;
  auto types = gguf_recipe_types("Q4_K_M", m, info);
  // n = 16: more-bits layers are 0, 1 (< n/8), 14, 15 (≥ 7n/8) and 4, 7, 10, 13 ((i − 2) % 3 == 2).
  for (int i = 0; i < 16; ++i) {
    const bool more = i < 2 || i >= 14 || (i - 2) % 3 == 2;
    const std::string b = "blk." + std::to_string(i) + ".";
    EXPECT_EQ(type_of(m, types, b + "attn_v.weight"), more ? T::Q6_K : T::Q4_K) << i;
    EXPECT_EQ(type_of(m, types, b + "ffn_down.weight"), more ? T::Q6_K : T::Q4_K) << i;
    EXPECT_EQ(type_of(m, types, b + "attn_q.weight"), T::Q4_K);
    EXPECT_EQ(type_of(m, types, b + "attn_norm.weight"), T::F32);
  }
  EXPECT_EQ(type_of(m, types, "output.weight"), T::Q6_K);
  EXPECT_EQ(type_of(m, types, "token_embd.weight"), T::Q4_K);
  EXPECT_EQ(gguf_recipe_file_type("Q4_K_M"), 15u);

  types = gguf_recipe_types("Q3_K_M", m, info);
  EXPECT_EQ(type_of(m, types, "blk.0.attn_v.weight"), T::Q5_K);
  EXPECT_EQ(type_of(m, types, "blk.2.attn_v.weight"), T::Q4_K);
  EXPECT_EQ(type_of(m, types, "blk.0.ffn_down.weight"), T::Q5_K);  // i < n/16
  EXPECT_EQ(type_of(m, types, "blk.1.ffn_down.weight"), T::Q4_K);
  EXPECT_EQ(type_of(m, types, "blk.5.attn_output.weight"), T::Q4_K);
  EXPECT_EQ(type_of(m, types, "blk.5.ffn_up.weight"), T::Q3_K);
  EXPECT_EQ(gguf_recipe_file_type("Q3_K_M"), 12u);

  types = gguf_recipe_types("Q4_K_S", m, info);
  EXPECT_EQ(type_of(m, types, "blk.3.attn_v.weight"), T::Q5_K);
  EXPECT_EQ(type_of(m, types, "blk.4.attn_v.weight"), T::Q4_K);
  EXPECT_EQ(type_of(m, types, "blk.1.ffn_down.weight"), T::Q5_K);
  EXPECT_EQ(type_of(m, types, "blk.2.ffn_down.weight"), T::Q4_K);

  types = gguf_recipe_types("Q2_K", m, info);
  EXPECT_EQ(type_of(m, types, "blk.3.attn_v.weight"), T::Q3_K);
  EXPECT_EQ(type_of(m, types, "blk.3.ffn_down.weight"), T::Q3_K);
  EXPECT_EQ(type_of(m, types, "blk.3.attn_output.weight"), T::Q3_K);
  EXPECT_EQ(type_of(m, types, "blk.3.ffn_gate.weight"), T::Q2_K);
  info.n_gqa = 4;
  types = gguf_recipe_types("Q2_K", m, info);
  EXPECT_EQ(type_of(m, types, "blk.3.attn_v.weight"), T::Q4_K);
  types = gguf_recipe_types("IQ4_XS", m, info);
  EXPECT_EQ(type_of(m, types, "blk.3.attn_v.weight"), T::Q5_K);
  EXPECT_EQ(type_of(m, types, "blk.1.ffn_down.weight"), T::Q5_K);
  EXPECT_EQ(type_of(m, types, "blk.2.ffn_down.weight"), T::IQ4_XS);
  info.n_gqa = 1;

  // Tied head: token_embd takes the head's type.
  const auto tied = fake_model(512, /*tied=*/true);
  info.has_output = false;
  types = gguf_recipe_types("Q5_K_M", tied, info);
  EXPECT_EQ(type_of(tied, types, "token_embd.weight"), T::Q6_K);
  EXPECT_EQ(type_of(tied, types, "blk.4.ffn_down.weight"), T::Q6_K);
  EXPECT_EQ(type_of(tied, types, "blk.5.ffn_down.weight"), T::Q5_K);

  info.has_output = true;

  // Rows that are not whole super-blocks: llama.cpp's fallbacks.
  const auto odd = fake_model(288, /*tied=*/false);
  types = gguf_recipe_types("Q4_K_M", odd, info);
  EXPECT_EQ(type_of(odd, types, "output.weight"), T::Q8_0);
  EXPECT_EQ(type_of(odd, types, "blk.0.attn_v.weight"), T::Q8_0);   // Q6_K → Q8_0
  EXPECT_EQ(type_of(odd, types, "blk.3.attn_q.weight"), T::Q5_0);   // Q4_K → Q5_0
  types = gguf_recipe_types("Q5_K_S", odd, info);
  EXPECT_EQ(type_of(odd, types, "blk.3.attn_q.weight"), T::Q5_1);
  types = gguf_recipe_types("IQ4_XS", odd, info);
  EXPECT_EQ(type_of(odd, types, "blk.3.attn_q.weight"), T::IQ4_NL);
  types = gguf_recipe_types("Q3_K_S", fake_model(48, false), info);
  EXPECT_EQ(types[1], T::F16);  // not even a 32-block

  // llama.cpp's legacy types: the base type everywhere but a Q6_K head (Q8_0 if its rows are
  // not whole super-blocks); token_embd keeps the base type.
  for (const auto& [recipe, base, ftype] :
       {std::tuple{"Q4_1", T::Q4_1, 3u}, std::tuple{"Q5_0", T::Q5_0, 8u}, std::tuple{"Q5_1", T::Q5_1, 9u}}) {
    types = gguf_recipe_types(recipe, m, info);
    EXPECT_EQ(type_of(m, types, "output.weight"), T::Q6_K) << recipe;
    EXPECT_EQ(type_of(m, types, "token_embd.weight"), base) << recipe;
    EXPECT_EQ(type_of(m, types, "blk.1.ffn_down.weight"), base) << recipe;
    EXPECT_EQ(type_of(m, types, "blk.0.attn_v.weight"), base) << recipe;
    EXPECT_EQ(gguf_recipe_file_type(recipe), ftype);
    types = gguf_recipe_types(recipe, odd, info);
    EXPECT_EQ(type_of(odd, types, "output.weight"), T::Q8_0) << recipe;
  }

  EXPECT_THROW(gguf_recipe_types("Q4_K_X", m, info), std::invalid_argument);
}

// The KJV model's Q4_K_M from llama.cpp: nibble's mix gives every tensor the same type.
TEST(Quantizers, Q4_K_MTypesMatchLlamaCpp) {
  if (!std::filesystem::exists(kKjv + "kjv-llama-Q4_K_M.gguf")) GTEST_SKIP() << "needs ../shared";
  const ModelFile src = open_model_file(kKjv + "kjv-llama-F16.gguf");
  const ModelFile theirs = open_model_file(kKjv + "kjv-llama-Q4_K_M.gguf");
  const auto types = gguf_recipe_types("Q4_K_M", src.tensors, gguf_mix_info(src));
  ASSERT_EQ(src.tensors.size(), theirs.tensors.size());
  for (size_t i = 0; i < src.tensors.size(); ++i) {
    EXPECT_EQ(types[i], theirs.tensor(src.tensors[i].name).type) << src.tensors[i].name;
  }
  EXPECT_EQ(theirs.meta.get_uint("general.file_type"), gguf_recipe_file_type("Q4_K_M"));
}

TEST(Quantizers, QuantizeModelWritesARunnableGguf) {
  if (!std::filesystem::exists(kKjv)) GTEST_SKIP() << "needs ../shared";
  const std::string out = (std::filesystem::temp_directory_path() / ("nibble-q8-" + std::to_string(::getpid()) + ".gguf")).string();
  const auto rep = quantize_to_gguf(kKjv + "kjv-llama-F16.gguf", out, "Q8_0", "");
  const ModelFile f = open_model_file(out);
  EXPECT_EQ(f.tensor("blk.3.ffn_down.weight").type, TensorType::Q8_0);
  EXPECT_EQ(f.tensor("blk.3.ffn_norm.weight").type, TensorType::F32);
  EXPECT_EQ(f.meta.get_uint("general.file_type"), 7u);
  EXPECT_EQ(rep.n_tensors, f.tensors.size());
  EXPECT_TRUE(f.meta.has("tokenizer.ggml.tokens"));
  EXPECT_THROW(quantize_to_gguf(kKjv + "kjv-llama-F16.gguf", out, "Q3_X", ""), std::invalid_argument);
  EXPECT_THROW(quantize_to_gguf(kKjv + "kjv-llama.bin", out, "Q8_0", ""), FileError);  // no vocab
  std::filesystem::remove(out);
}

}  // namespace
}  // namespace nibble
