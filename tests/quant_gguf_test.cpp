// nibble's quantizers against files llama.cpp's own quantizer wrote from the same weights.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "kernels/quantize.h"
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
