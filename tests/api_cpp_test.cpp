// The C++ layer and what desktop apps rely on: one model shared by several contexts on
// different threads, load progress and cancellation.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "nibble/nibble.hpp"

namespace {

const std::string kModel = std::string(NIBBLE_SOURCE_DIR) + "/assets/kjv-llama-q4_0.gguf";

std::string greedy(nibble::Context& ctx, const std::string& prompt) {
  nibble_sampler_params sp = nibble_sampler_default_params();
  sp.temperature = 0;
  std::string out;
  ctx.reset();
  ctx.generate(prompt, 24, sp, [&](std::string_view t) {
    out += t;
    return true;
  });
  return out;
}

TEST(CppApi, FourContextsOnOneModelMatchTheirSoloRuns) {
  const nibble::Model model(kModel);
  const std::vector<std::string> prompts = {"And God said", "In the beginning",
                                            "The LORD is my shepherd", "Jesus wept"};
  nibble_context_params cp = nibble_context_default_params();
  cp.n_threads = 1;
  cp.n_ctx = 128;
  std::vector<std::string> solo;
  {
    nibble::Context ctx(model, cp);
    for (const auto& p : prompts) solo.push_back(greedy(ctx, p));
  }
  std::vector<std::string> together(prompts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i) {
    threads.emplace_back([&, i] {
      nibble::Context ctx(model, cp);
      for (int rep = 0; rep < 2; ++rep) together[i] = greedy(ctx, prompts[i]);
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(together[i], solo[i]) << prompts[i];
    EXPECT_FALSE(solo[i].empty());
  }
}

TEST(CppApi, ErrorsBecomeExceptionsWithTheStatus) {
  try {
    nibble::Model bad("/nonexistent.gguf");
    FAIL() << "loaded a missing file";
  } catch (const nibble::Error& e) {
    EXPECT_EQ(e.status(), NIBBLE_ERR_FILE);
    EXPECT_NE(std::string(e.what()).find("/nonexistent.gguf"), std::string::npos);
  }
  const nibble::Model model(kModel);
  nibble_context_params cp = nibble_context_default_params();
  cp.n_ctx = 4;
  nibble::Context ctx(model, cp);
  EXPECT_THROW(ctx.eval(model.tokenize("And God said unto Moses, I AM THAT I AM")), nibble::Error);
  const auto ids = model.tokenize("And God");
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(model.piece(ids[1]), " And");
}

TEST(CppApi, LoadReportsProgressAndCanBeCancelled) {
  for (int use_mmap : {1, 0}) {
    nibble_model_params p = nibble_model_default_params();
    p.use_mmap = use_mmap;
    std::vector<float> seen;
    p.progress = [](float f, void* user) {
      static_cast<std::vector<float>*>(user)->push_back(f);
      return 1;
    };
    p.progress_user = &seen;
    const nibble::Model m(kModel, p);
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back(), 1.0f);
    for (size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i], seen[i - 1]);

    p.progress = [](float, void*) { return 0; };
    nibble_model* out = nullptr;
    EXPECT_EQ(nibble_model_load(kModel.c_str(), &p, &out), NIBBLE_ERR_ABORTED);
    EXPECT_EQ(out, nullptr);
  }
}

TEST(CppApi, VersionAndIsaAreReported) {
  EXPECT_STREQ(nibble_version(), "0.1.0");
  EXPECT_GT(std::string(nibble_isa()).size(), 0u);
}

}  // namespace
