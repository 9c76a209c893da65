#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/amx_matmul.h"
#include "kernels/onednn_matmul.h"
#include "loaders/model_file.h"
#include "runtime/generate.h"
#include "runtime/loaded_model.h"
#include "runtime/session.h"

namespace nibble {
namespace {

const std::string kModel = std::string(NIBBLE_SOURCE_DIR) + "/assets/kjv-llama-q4_0.gguf";

TEST(Session, RefusesTokensPastTheContextAndKeepsItsState) {
  auto lm = load_model_and_tokenizer(kModel, {});
  SessionOptions o;
  o.n_ctx = 16;
  o.n_threads = 1;
  Session s(*lm->model, o);
  std::vector<int32_t> ids(10, 1);
  s.eval(ids);
  EXPECT_EQ(s.n_past(), 10);
  EXPECT_THROW(s.eval(ids), ContextFullError);
  EXPECT_EQ(s.n_past(), 10);
  s.reset();
  EXPECT_EQ(s.n_past(), 0);
  s.eval(ids);
  EXPECT_EQ(s.n_past(), 10);
}

TEST(Session, ResetGivesTheSameLogits) {
  auto lm = load_model_and_tokenizer(kModel, {});
  SessionOptions o;
  o.n_ctx = 64;
  Session s(*lm->model, o);
  const auto ids = lm->tokenizer->encode("And God said", true);
  const float* a = s.eval(ids);
  std::vector<float> la(a, a + s.n_vocab());
  s.reset();
  const float* b = s.eval(ids);
  for (int64_t i = 0; i < s.n_vocab(); ++i) ASSERT_EQ(la[i], b[i]);
}

// A new session's prompt matmul is "auto": nibble's AMX tile kernel where the CPU has AMX,
// else nibble's int8 GEMM; each can be named. An unknown name is refused and lists the known
// ones; a matmul this CPU or build lacks is a runtime_error that says so.
TEST(Session, GemmAutoIsAmxExactlyWhereAvailable) {
  auto lm = load_model_and_tokenizer(kModel, {});
  SessionOptions o;
  o.n_ctx = 64;
  Session s(*lm->model, o);
  const std::string expected = AmxMatmul::available() ? "amx" : "nibble";
  EXPECT_EQ(s.gemm(), expected);
  s.set_gemm("nibble");
  EXPECT_EQ(s.gemm(), "nibble");
  s.set_gemm("auto");
  EXPECT_EQ(s.gemm(), expected);
  o.gemm = "nibble";
  EXPECT_EQ(Session(*lm->model, o).gemm(), "nibble");
  if (OneDnnMatmul::available()) {
    s.set_gemm("onednn");
    EXPECT_EQ(s.gemm(), "onednn");
  }
  if (!AmxMatmul::available()) {
    try {
      s.set_gemm("amx");
      FAIL() << "amx was accepted without AMX";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("AMX"), std::string::npos) << e.what();
    }
  }
  try {
    s.set_gemm("tiles");
    FAIL() << "an unknown name was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("auto, nibble, amx, onednn"), std::string::npos)
        << e.what();
  }
}

TEST(Generate, GreedyIsDeterministicAndStopsAtTheContext) {
  auto lm = load_model_and_tokenizer(kModel, {});
  SessionOptions o;
  o.n_ctx = 24;
  Session s(*lm->model, o);
  SamplerParams p;
  p.temperature = 0;
  const auto ids = lm->tokenizer->encode("And God said", true);
  std::string text1, text2;
  Sampler s1(p);
  const auto st = generate(s, *lm->tokenizer, s1, ids, -1, [&](std::string_view t) {
    text1 += t;
    return true;
  });
  EXPECT_TRUE(st.hit_context_limit || st.hit_end_of_generation);
  EXPECT_LE(s.n_past(), 24);
  s.reset();
  Sampler s2(p);
  generate(s, *lm->tokenizer, s2, ids, -1, [&](std::string_view t) {
    text2 += t;
    return true;
  });
  EXPECT_EQ(text1, text2);
  EXPECT_FALSE(text1.empty());
}

TEST(Generate, CallbackCanAbort) {
  auto lm = load_model_and_tokenizer(kModel, {});
  Session s(*lm->model, {});
  SamplerParams p;
  p.temperature = 0;
  Sampler sm(p);
  int calls = 0;
  const auto st = generate(s, *lm->tokenizer, sm, lm->tokenizer->encode("And", true), 50,
                           [&](std::string_view) { return ++calls < 3; });
  EXPECT_TRUE(st.aborted);
  EXPECT_EQ(calls, 3);
}

}  // namespace
}  // namespace nibble
