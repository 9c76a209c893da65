// The public C API for nibble files: inspection (metadata, tensor directory, verify) of nibble
// and GGUF files, quantization with a result, and misuse giving a status, never a crash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "nibble/nibble.h"

namespace {

const std::string kGguf = std::string(NIBBLE_SOURCE_DIR) + "/assets/kjv-llama-q4_0.gguf";

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("nibble-format-api-" + std::to_string(::getpid()) + "-" + name)).string();
}

TEST(FormatApi, QuantizeWithResultThenInspectAndVerify) {
  const std::string out = temp_path("kjv.q4");
  nibble_quantize_params p = nibble_quantize_default_params();
  p.measure = 1;
  nibble_quantize_result* r = nullptr;
  ASSERT_EQ(nibble_quantize_model(kGguf.c_str(), out.c_str(), "q4-g128", &p, &r), NIBBLE_OK)
      << nibble_last_error();
  nibble_quantize_summary s;
  ASSERT_EQ(nibble_quantize_result_summary(r, &s), NIBBLE_OK);
  EXPECT_STREQ(s.container, "nibble");
  EXPECT_STREQ(s.recipe, "q4-g128");
  EXPECT_EQ(s.n_tensors, 74);
  EXPECT_EQ(nibble_quantize_result_tensor_count(r), 74);
  EXPECT_GT(s.bits_per_weight, 4.0);
  EXPECT_LT(s.bits_per_weight, 4.5);
  EXPECT_NEAR(s.compression_vs_f16, 16.0 / s.bits_per_weight, 1e-9);
  EXPECT_TRUE(s.measured);
  EXPECT_GT(s.snr_db, 10);
  nibble_quantize_tensor t;
  ASSERT_EQ(nibble_quantize_result_tensor(r, 2, &t), NIBBLE_OK);
  EXPECT_STREQ(t.name, "blk.0.attn_q.weight");
  EXPECT_STREQ(t.src_type, "Q4_0");
  EXPECT_STREQ(t.type, "Q4_G128");
  EXPECT_EQ(t.n_dims, 2);
  EXPECT_GT(t.cosine, 0.9);
  EXPECT_EQ(nibble_quantize_result_tensor(r, 74, &t), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_quantize_result_tensor(r, -1, &t), NIBBLE_ERR_INVALID_ARGUMENT);
  nibble_quantize_result_free(r);

  nibble_file* f = nullptr;
  ASSERT_EQ(nibble_file_open(out.c_str(), &f), NIBBLE_OK) << nibble_last_error();
  nibble_file_info info;
  ASSERT_EQ(nibble_file_get_info(f, &info), NIBBLE_OK);
  EXPECT_STREQ(info.format, "nibble");
  EXPECT_EQ(info.version_major, 1u);
  EXPECT_EQ(info.n_tensors, 74);
  bool saw_tokens = false, saw_recipe = false;
  for (int64_t i = 0; i < info.n_meta; ++i) {
    nibble_meta_entry e;
    ASSERT_EQ(nibble_file_meta(f, i, &e), NIBBLE_OK);
    char buf[64];
    int32_t n = 0;
    const nibble_status st = nibble_file_meta_text(f, i, 8, buf, sizeof buf, &n);
    if (std::string(e.key) == "tokenizer.ggml.tokens") {
      saw_tokens = true;
      EXPECT_STREQ(e.type, "array");
      EXPECT_STREQ(e.elem_type, "string");
      EXPECT_EQ(e.array_len, 32000u);
      ASSERT_EQ(st, NIBBLE_OK);
      EXPECT_STREQ(buf, "[array of 32000 string]");
    }
    if (std::string(e.key) == "nibble.quantization.recipe") {
      saw_recipe = true;
      ASSERT_EQ(st, NIBBLE_OK);
      EXPECT_STREQ(buf, "q4-g128");
    }
    if (std::string(e.key) == "nibble.source.sha256") {  // 64 digits: too long for 64 bytes + NUL
      EXPECT_EQ(st, NIBBLE_ERR_BUFFER_TOO_SMALL);
      EXPECT_EQ(n, 64);
    }
  }
  EXPECT_TRUE(saw_tokens);
  EXPECT_TRUE(saw_recipe);
  nibble_tensor_info ti;
  ASSERT_EQ(nibble_file_tensor(f, 2, &ti), NIBBLE_OK);
  EXPECT_STREQ(ti.name, "blk.0.attn_q.weight");
  EXPECT_STREQ(ti.type, "Q4_G128");
  EXPECT_EQ(ti.type_id, 1025u);
  EXPECT_TRUE(ti.has_checksum);
  EXPECT_EQ(ti.offset % 64, 0u);
  EXPECT_EQ(nibble_file_tensor(f, 74, &ti), NIBBLE_ERR_INVALID_ARGUMENT);
  int64_t checked = -1;
  EXPECT_EQ(nibble_file_verify(f, &checked), NIBBLE_OK);
  EXPECT_EQ(checked, 74);
  nibble_file_free(f);

  // The model runs from the file.
  nibble_model* m = nullptr;
  ASSERT_EQ(nibble_model_load(out.c_str(), nullptr, &m), NIBBLE_OK) << nibble_last_error();
  nibble_model_info mi;
  ASSERT_EQ(nibble_model_get_info(m, &mi), NIBBLE_OK);
  EXPECT_EQ(mi.n_layer, 8);
  nibble_model_free(m);
  std::filesystem::remove(out);
}

TEST(FormatApi, GgufFilesInspectWithoutChecksums) {
  nibble_file* f = nullptr;
  ASSERT_EQ(nibble_file_open(kGguf.c_str(), &f), NIBBLE_OK);
  nibble_file_info info;
  nibble_file_get_info(f, &info);
  EXPECT_STREQ(info.format, "gguf");
  nibble_tensor_info ti;
  ASSERT_EQ(nibble_file_tensor(f, 0, &ti), NIBBLE_OK);
  EXPECT_FALSE(ti.has_checksum);
  EXPECT_STREQ(ti.layout_name, "plain");
  int64_t checked = -1;
  EXPECT_EQ(nibble_file_verify(f, &checked), NIBBLE_OK);
  EXPECT_EQ(checked, 0);
  nibble_file_free(f);
}

TEST(FormatApi, MisuseGivesAStatus) {
  nibble_file* f = nullptr;
  EXPECT_EQ(nibble_file_open(nullptr, &f), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_file_open(kGguf.c_str(), nullptr), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_file_open("/nonexistent.q4", &f), NIBBLE_ERR_FILE);
  EXPECT_EQ(f, nullptr);
  EXPECT_EQ(nibble_file_get_info(nullptr, nullptr), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_file_verify(nullptr, nullptr), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_file_meta_text(nullptr, 0, 0, nullptr, 0, nullptr), NIBBLE_ERR_INVALID_ARGUMENT);
  nibble_file_free(nullptr);
  nibble_quantize_result* r = nullptr;
  EXPECT_EQ(nibble_quantize_model(nullptr, "x.q4", "q4", nullptr, &r), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_quantize_model(kGguf.c_str(), temp_path("x.q4").c_str(), "Q4_0", nullptr, &r),
            NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(nibble_last_error()).find(".gguf"), std::string::npos);
  EXPECT_EQ(r, nullptr);
  EXPECT_EQ(nibble_quantize_result_tensor_count(nullptr), 0);
  nibble_quantize_result_free(nullptr);
  const char *name = nullptr, *ext = nullptr, *desc = nullptr;
  int n = 0;
  while (nibble_quantize_recipe_info(n, &name, &ext, &desc)) ++n;
  EXPECT_EQ(n, 30);  // 11 nibble recipes (8 plain, q8a8, q8o, auto) + 19 GGUF
  EXPECT_EQ(nibble_quantize_recipe_info(-1, nullptr, nullptr, nullptr), 0);
}

}  // namespace
