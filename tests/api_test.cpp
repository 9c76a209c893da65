// The C API as an app sees it: misuse gives a status and a message, never a crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nibble/nibble.h"

namespace {

const std::string kModel = std::string(NIBBLE_SOURCE_DIR) + "/assets/kjv-llama-q4_0.gguf";

struct ModelHandle {
  nibble_model* m = nullptr;
  ~ModelHandle() { nibble_model_free(m); }
};

TEST(CApi, NullArgumentsAreRejected) {
  nibble_model* m = nullptr;
  EXPECT_EQ(nibble_model_load(nullptr, nullptr, &m), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_model_load(kModel.c_str(), nullptr, nullptr), NIBBLE_ERR_INVALID_ARGUMENT);
  nibble_context* c = nullptr;
  EXPECT_EQ(nibble_context_create(nullptr, nullptr, &c), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_eval(nullptr, nullptr, 0), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_generate(nullptr, "x", 1, nullptr, nullptr, nullptr, nullptr),
            NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_get_logits(nullptr), nullptr);
  nibble_model_free(nullptr);
  nibble_context_free(nullptr);
}

TEST(CApi, MissingAndBogusFilesGiveFileErrors) {
  nibble_model* m = nullptr;
  EXPECT_EQ(nibble_model_load("/nonexistent/model.gguf", nullptr, &m), NIBBLE_ERR_FILE);
  EXPECT_NE(std::string(nibble_last_error()).find("/nonexistent/model.gguf"), std::string::npos);
  EXPECT_EQ(m, nullptr);
  EXPECT_EQ(nibble_model_load("/dev/zero", nullptr, &m), NIBBLE_ERR_FILE);
  EXPECT_EQ(nibble_model_load(NIBBLE_SOURCE_DIR, nullptr, &m), NIBBLE_ERR_FILE);
}

TEST(CApi, TokenizeReportsTheSizeItNeeds) {
  ModelHandle h;
  ASSERT_EQ(nibble_model_load(kModel.c_str(), nullptr, &h.m), NIBBLE_OK) << nibble_last_error();
  const std::string text = "In the beginning God created the heaven and the earth.";
  int32_t n = 0;
  int32_t one[1];
  EXPECT_EQ(nibble_tokenize(h.m, text.data(), text.size(), 1, 0, one, 1, &n),
            NIBBLE_ERR_BUFFER_TOO_SMALL);
  ASSERT_GT(n, 5);
  std::vector<int32_t> ids(n);
  ASSERT_EQ(nibble_tokenize(h.m, text.data(), text.size(), 1, 0, ids.data(), n, &n), NIBBLE_OK);
  EXPECT_EQ(ids[0], nibble_token_bos(h.m));
  std::string back;
  char buf[64];
  for (int i = 1; i < n; ++i) {
    int32_t len = 0;
    ASSERT_EQ(nibble_token_to_piece(h.m, ids[i], buf, sizeof buf, &len), NIBBLE_OK);
    back.append(buf, len);
  }
  EXPECT_EQ(back, " " + text);  // the sentencepiece dummy prefix
  int32_t len = 0;
  EXPECT_EQ(nibble_token_to_piece(h.m, -1, buf, sizeof buf, &len), NIBBLE_ERR_INVALID_ARGUMENT);
}

TEST(CApi, PromptLongerThanTheContextIsAnError) {
  ModelHandle h;
  ASSERT_EQ(nibble_model_load(kModel.c_str(), nullptr, &h.m), NIBBLE_OK);
  nibble_context_params cp = nibble_context_default_params();
  cp.n_ctx = 8;
  nibble_context* c = nullptr;
  ASSERT_EQ(nibble_context_create(h.m, &cp, &c), NIBBLE_OK);
  const nibble_status s = nibble_generate(
      c, "And God said, Let there be light: and there was light. And God saw the light", 4,
      nullptr, nullptr, nullptr, nullptr);
  EXPECT_EQ(s, NIBBLE_ERR_CONTEXT_FULL);
  EXPECT_NE(std::string(nibble_context_last_error(c)).find("context"), std::string::npos);
  std::vector<int32_t> bad = {1, 999999};
  EXPECT_EQ(nibble_eval(c, bad.data(), 2), NIBBLE_ERR_INVALID_ARGUMENT);
  nibble_context_free(c);
}

int collect(const char* text, size_t len, void* user) {
  static_cast<std::string*>(user)->append(text, len);
  return 1;
}

// Generating after explicit tokens is generating after the same text.
TEST(CApi, GenerateTokensMatchesGenerate) {
  ModelHandle h;
  ASSERT_EQ(nibble_model_load(kModel.c_str(), nullptr, &h.m), NIBBLE_OK);
  nibble_context* c = nullptr;
  ASSERT_EQ(nibble_context_create(h.m, nullptr, &c), NIBBLE_OK);
  nibble_sampler_params sp = nibble_sampler_default_params();
  sp.temperature = 0;
  std::string a, b;
  ASSERT_EQ(nibble_generate(c, "And God said", 12, &sp, collect, &a, nullptr), NIBBLE_OK);
  ASSERT_EQ(nibble_context_reset(c), NIBBLE_OK);
  int32_t ids[32];
  int32_t n = 0;
  ASSERT_EQ(nibble_tokenize(h.m, "And God said", 12, 1, 0, ids, 32, &n), NIBBLE_OK);
  ASSERT_EQ(nibble_generate_tokens(c, ids, n, 12, &sp, collect, &b, nullptr), NIBBLE_OK);
  EXPECT_EQ(a, b);
  const int32_t bad[] = {-1};
  EXPECT_EQ(nibble_generate_tokens(c, bad, 1, 4, &sp, collect, &b, nullptr), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_generate_tokens(c, nullptr, 3, 4, &sp, collect, &b, nullptr), NIBBLE_ERR_INVALID_ARGUMENT);
  nibble_context_free(c);
}

TEST(CApi, ChatApply) {
  ModelHandle h;
  ASSERT_EQ(nibble_model_load(kModel.c_str(), nullptr, &h.m), NIBBLE_OK);
  const nibble_chat_message msgs[] = {{"system", "Be brief."}, {"user", "Hi"}};
  int32_t n = 0;
  // The KJV model has no template and no turn markers: a format must be named.
  EXPECT_EQ(nibble_chat_format(h.m, nullptr), nullptr);
  EXPECT_NE(std::string(nibble_last_error()).find("--chat-template"), std::string::npos);
  EXPECT_EQ(nibble_chat_apply(h.m, nullptr, msgs, 2, 1, nullptr, 0, &n), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(nibble_chat_format(h.m, "chatml"), "chatml");
  // Too small a buffer reports the length needed; then the text with its NUL.
  EXPECT_EQ(nibble_chat_apply(h.m, "chatml", msgs, 2, 1, nullptr, 0, &n), NIBBLE_ERR_BUFFER_TOO_SMALL);
  const std::string expected =
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
  ASSERT_EQ(n, static_cast<int32_t>(expected.size()));
  std::vector<char> buf(n + 1);
  ASSERT_EQ(nibble_chat_apply(h.m, "chatml", msgs, 2, 1, buf.data(), n + 1, &n), NIBBLE_OK);
  EXPECT_EQ(std::string(buf.data()), expected);
  const nibble_chat_message null_content[] = {{"user", nullptr}};
  EXPECT_EQ(nibble_chat_apply(h.m, "chatml", null_content, 1, 1, buf.data(), n + 1, &n), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_chat_apply(h.m, "bogus", msgs, 2, 1, buf.data(), n + 1, &n), NIBBLE_ERR_INVALID_ARGUMENT);
}

TEST(CApi, GreedyGenerationIsRepeatable) {
  ModelHandle h;
  ASSERT_EQ(nibble_model_load(kModel.c_str(), nullptr, &h.m), NIBBLE_OK);
  nibble_context* c = nullptr;
  ASSERT_EQ(nibble_context_create(h.m, nullptr, &c), NIBBLE_OK);
  nibble_sampler_params sp = nibble_sampler_default_params();
  sp.temperature = 0;
  std::string a, b;
  nibble_generate_stats st{};
  ASSERT_EQ(nibble_generate(c, "And God said", 16, &sp, collect, &a, &st), NIBBLE_OK);
  EXPECT_EQ(st.n_generated, 16);
  ASSERT_EQ(nibble_context_reset(c), NIBBLE_OK);
  ASSERT_EQ(nibble_generate(c, "And God said", 16, &sp, collect, &b, nullptr), NIBBLE_OK);
  EXPECT_EQ(a, b);
  EXPECT_GT(a.size(), 16u);
  nibble_context_free(c);
}

}  // namespace

namespace {

TEST(CApi, ManualLoopWithASamplerMatchesGenerate) {
  ModelHandle h;
  ASSERT_EQ(nibble_model_load(kModel.c_str(), nullptr, &h.m), NIBBLE_OK);
  nibble_context* c = nullptr;
  ASSERT_EQ(nibble_context_create(h.m, nullptr, &c), NIBBLE_OK);
  nibble_sampler_params sp = nibble_sampler_default_params();
  sp.temperature = 0;
  std::string want;
  ASSERT_EQ(nibble_generate(c, "And God said", 12, &sp, collect, &want, nullptr), NIBBLE_OK);

  nibble_context_reset(c);
  nibble_sampler* s = nullptr;
  ASSERT_EQ(nibble_sampler_create(&sp, &s), NIBBLE_OK);
  int32_t tok = 0;
  EXPECT_EQ(nibble_sampler_sample(s, c, &tok), NIBBLE_ERR_INVALID_ARGUMENT);  // no logits yet
  int32_t ids[16];
  int32_t n = 0;
  ASSERT_EQ(nibble_tokenize(h.m, "And God said", 12, 1, 0, ids, 16, &n), NIBBLE_OK);
  ASSERT_EQ(nibble_eval(c, ids, n), NIBBLE_OK);
  std::vector<int32_t> out;
  for (int i = 0; i < 12; ++i) {
    ASSERT_EQ(nibble_sampler_sample(s, c, &tok), NIBBLE_OK);
    nibble_sampler_accept(s, tok);
    out.push_back(tok);
    ASSERT_EQ(nibble_eval(c, &tok, 1), NIBBLE_OK);
  }
  char buf[512];
  int32_t len = 0;
  ASSERT_EQ(nibble_detokenize(h.m, out.data(), 12, buf, sizeof buf, &len), NIBBLE_OK);
  // generate() streams pieces after the prompt, so its text keeps the first piece's space.
  std::string got = " ";
  got.append(buf, len);
  EXPECT_EQ(got, want);
  EXPECT_EQ(nibble_detokenize(h.m, out.data(), 12, buf, 2, &len), NIBBLE_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(len, static_cast<int32_t>(want.size()) - 1);
  nibble_sampler_free(s);
  nibble_context_free(c);
}

}  // namespace

// Prompts evaluated by the bf16 prompt matmuls (nibble's AMX kernel, oneDNN's) give (nearly)
// the logits of nibble's int8 kernels; a matmul the CPU or build lacks is refused with a message
// that names it; unknown names are refused.
TEST(CApi, PromptMatmulsGiveTheSameLogits) {
  ModelHandle h;
  ASSERT_EQ(nibble_model_load(kModel.c_str(), nullptr, &h.m), NIBBLE_OK);
  nibble_context* c = nullptr;
  ASSERT_EQ(nibble_context_create(h.m, nullptr, &c), NIBBLE_OK);
  EXPECT_EQ(nibble_context_set_gemm(c, "bogus"), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(nibble_context_last_error(c)).find("bogus"), std::string::npos);
  EXPECT_EQ(nibble_context_set_gemm(nullptr, "nibble"), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(nibble_context_gemm(nullptr), "");
  const std::string by_default = nibble_context_gemm(c);
  EXPECT_TRUE(by_default == "amx" || by_default == "nibble") << by_default;
  const char* text =
      "And God said, Let there be light: and there was light. And God saw the light, that it was "
      "good: and God "
      "divided the light from the darkness. And God called the light Day, and the darkness he "
      "called Night.";
  int32_t ids[96];
  int32_t n = 0;
  ASSERT_EQ(
      nibble_tokenize(h.m, text, static_cast<int32_t>(std::string(text).size()), 1, 0, ids, 96, &n),
      NIBBLE_OK);
  ASSERT_GE(n, 40);  // long enough for every prompt matmul (AMX from 32 rows)
  nibble_model_info info{};
  ASSERT_EQ(nibble_model_get_info(h.m, &info), NIBBLE_OK);
  const int32_t n_vocab = info.n_vocab;
  ASSERT_EQ(nibble_context_set_gemm(c, "nibble"), NIBBLE_OK);
  ASSERT_EQ(nibble_eval(c, ids, n), NIBBLE_OK);
  const std::vector<float> ours(nibble_get_logits(c), nibble_get_logits(c) + n_vocab);
  for (const char* name : {"amx", "onednn"}) {
    SCOPED_TRACE(name);
    const nibble_status st = nibble_context_set_gemm(c, name);
    if (st == NIBBLE_ERR_INTERNAL) {  // no AMX here, or a build without oneDNN: it says which
      const std::string why = nibble_context_last_error(c);
      EXPECT_TRUE(why.find("AMX") != std::string::npos || why.find("oneDNN") != std::string::npos)
          << why;
      continue;
    }
    ASSERT_EQ(st, NIBBLE_OK);
    EXPECT_STREQ(nibble_context_gemm(c), name);
    ASSERT_EQ(nibble_context_reset(c), NIBBLE_OK);
    ASSERT_EQ(nibble_eval(c, ids, n), NIBBLE_OK);
    const float* theirs = nibble_get_logits(c);
    float max_abs = 0.0f, max_diff = 0.0f;
    for (int32_t i = 0; i < n_vocab; ++i) {
      max_abs = std::max(max_abs, std::fabs(ours[i]));
      max_diff = std::max(max_diff, std::fabs(ours[i] - theirs[i]));
    }
    EXPECT_LT(max_diff, 0.05f * max_abs);
    EXPECT_GT(max_diff, 0.0f) << "the same bits: was the prompt matmul used at all?";
  }
  nibble_context_free(c);
}
