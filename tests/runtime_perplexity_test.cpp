#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "nibble/nibble.h"
#include "runtime/perplexity.h"

namespace nibble {
namespace {

TEST(Perplexity, ChunkPlanScoresTheSecondHalfOfEachChunk) {
  const ChunkPlan p = plan_chunks(1000, 256, -1);
  EXPECT_EQ(p.n_chunks, 3);
  EXPECT_EQ(p.first, 128);
  EXPECT_EQ(p.scored_per_chunk(), 127);  // logits 128..254 predict tokens 129..255
  EXPECT_EQ(plan_chunks(1000, 256, 2).n_chunks, 2);
  EXPECT_THROW(plan_chunks(511, 256, -1), std::invalid_argument);
  EXPECT_THROW(plan_chunks(100, 2, -1), std::invalid_argument);
}

TEST(Perplexity, OfKnownProbabilities) {
  // Uniform over 4 tokens: every token has p = 1/4, so PPL = 4 exactly.
  std::vector<double> lp;
  const std::vector<float> uniform = {0.5f, 0.5f, 0.5f, 0.5f};
  log_softmax(uniform.data(), 4, lp);
  NllAccumulator acc;
  for (int i = 0; i < 10; ++i) acc.add(-lp[i % 4]);
  EXPECT_NEAR(acc.ppl(), 4.0, 1e-12);
  EXPECT_NEAR(acc.ppl_stderr(), 0.0, 1e-12);
  // p = 1/2 then 1/8: PPL = exp(mean(log 2, log 8)) = sqrt(16) = 4.
  NllAccumulator mixed;
  mixed.add(std::log(2.0));
  mixed.add(std::log(8.0));
  EXPECT_NEAR(mixed.ppl(), 4.0, 1e-12);
  // stderr = ppl · sqrt(var/(n−1)) with var = (log 4)² / 4 ... = ((log8 − log2)/2)².
  const double sd = (std::log(8.0) - std::log(2.0)) / 2;
  EXPECT_NEAR(mixed.ppl_stderr(), 4.0 * sd, 1e-12);
}

TEST(Perplexity, KlDivergenceOfKnownDistributions) {
  const std::vector<double> p = {std::log(0.5), std::log(0.5)};
  const std::vector<double> q = {std::log(0.25), std::log(0.75)};
  // 0.5·ln(0.5/0.25) + 0.5·ln(0.5/0.75)
  EXPECT_NEAR(kl_divergence(p, q), 0.5 * std::log(2.0) + 0.5 * std::log(2.0 / 3.0), 1e-12);
  EXPECT_EQ(kl_divergence(p, p), 0.0);
}

const std::string kKjv = std::string(NIBBLE_SHARED_DIR) + "/models/kjv-llama/";
const std::string kValid = std::string(NIBBLE_SHARED_DIR) + "/data/kjv-valid.txt";

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Loaded {
  nibble_model* m = nullptr;
  explicit Loaded(const std::string& path, const char* tokenizer = nullptr) {
    nibble_model_params p = nibble_model_default_params();
    p.tokenizer_path = tokenizer;
    EXPECT_EQ(nibble_model_load(path.c_str(), &p, &m), NIBBLE_OK) << nibble_last_error();
  }
  ~Loaded() { nibble_model_free(m); }
};

nibble_perplexity_result run(nibble_model* m, nibble_model* ref, const std::string& text,
                             int chunks) {
  nibble_perplexity_params pp = nibble_perplexity_default_params();
  pp.n_ctx = 256;
  pp.n_chunks = chunks;
  pp.n_threads = 2;
  nibble_perplexity_result r{};
  EXPECT_EQ(nibble_perplexity(m, ref, text.data(), text.size(), &pp, &r), NIBBLE_OK)
      << nibble_last_error();
  return r;
}

TEST(Perplexity, ModelAgainstItselfHasNoDivergence) {
  if (!std::filesystem::exists(kKjv)) GTEST_SKIP() << "needs ../shared";
  const std::string text = read_all(kValid).substr(0, 60000);
  const std::string tok = std::string(NIBBLE_SHARED_DIR) + "/models/llama2-tokenizer.model";
  Loaded a(kKjv + "kjv-llama.bin", tok.c_str()), b(kKjv + "kjv-llama.bin", tok.c_str());
  const auto r = run(a.m, b.m, text, 3);
  EXPECT_EQ(r.n_chunks, 3);
  EXPECT_EQ(r.n_scored, 3 * 127);
  EXPECT_EQ(r.delta_ppl, 0.0);
  EXPECT_EQ(r.kld_mean, 0.0);
  EXPECT_EQ(r.kld_max, 0.0);
  EXPECT_EQ(r.top1_agreement, 1.0);
  EXPECT_EQ(r.dp_rms, 0.0);
  EXPECT_GT(r.ppl, 1.0);
}

TEST(Perplexity, F16AgainstF32CheckpointIsNearlyIdentical) {
  if (!std::filesystem::exists(kKjv)) GTEST_SKIP() << "needs ../shared";
  const std::string text = read_all(kValid).substr(0, 60000);
  const std::string tok = std::string(NIBBLE_SHARED_DIR) + "/models/llama2-tokenizer.model";
  Loaded f16(kKjv + "kjv-llama-F16.gguf"), f32(kKjv + "kjv-llama.bin", tok.c_str());
  const auto r = run(f16.m, f32.m, text, 4);
  EXPECT_LT(r.kld_mean, 1e-4);
  EXPECT_GT(r.top1_agreement, 0.98);
  EXPECT_LT(std::abs(r.ppl_ratio - 1.0), 0.01);
}

TEST(Perplexity, TextShorterThanTwoChunksIsRefused) {
  if (!std::filesystem::exists(kKjv)) GTEST_SKIP() << "needs ../shared";
  Loaded a(kKjv + "kjv-llama-Q4_0.gguf");
  nibble_perplexity_params pp = nibble_perplexity_default_params();
  pp.n_ctx = 256;
  nibble_perplexity_result r{};
  const std::string text = "And God said";
  EXPECT_EQ(nibble_perplexity(a.m, nullptr, text.data(), text.size(), &pp, &r),
            NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(nibble_last_error()).find("2·n_ctx"), std::string::npos);
}

}  // namespace
}  // namespace nibble

namespace nibble {
namespace {

TEST(Perplexity, SavedReferenceLogitsGiveTheSameComparison) {
  if (!std::filesystem::exists(kKjv)) GTEST_SKIP() << "needs ../shared";
  const std::string text = read_all(kValid).substr(0, 60000);
  const std::string saved =
      (std::filesystem::temp_directory_path() / ("nibble-ref-" + std::to_string(::getpid()) + ".logits")).string();
  Loaded ref(kKjv + "kjv-llama-F16.gguf"), q4(kKjv + "kjv-llama-Q4_0.gguf");
  nibble_perplexity_params pp = nibble_perplexity_default_params();
  pp.n_ctx = 256;
  pp.n_chunks = 3;
  pp.n_threads = 2;
  pp.save_logits = saved.c_str();
  nibble_perplexity_result saved_run{};
  ASSERT_EQ(nibble_perplexity(ref.m, nullptr, text.data(), text.size(), &pp, &saved_run),
            NIBBLE_OK) << nibble_last_error();

  const auto direct = run(q4.m, ref.m, text, 3);
  pp.save_logits = nullptr;
  pp.ref_logits = saved.c_str();
  nibble_perplexity_result from_file{};
  ASSERT_EQ(nibble_perplexity(q4.m, nullptr, text.data(), text.size(), &pp, &from_file),
            NIBBLE_OK) << nibble_last_error();
  EXPECT_EQ(from_file.ppl, direct.ppl);
  EXPECT_NEAR(from_file.ref_ppl, direct.ref_ppl, 1e-4 * direct.ref_ppl);  // f32-stored target
  // 16-bit log-probabilities: the KLD moves by far less than its own size.
  EXPECT_NEAR(from_file.kld_mean, direct.kld_mean, 0.02 * direct.kld_mean);
  EXPECT_NEAR(from_file.top1_agreement, direct.top1_agreement, 0.01);

  // A file made with another -c, or from other text, is refused by name.
  pp.n_ctx = 128;
  EXPECT_EQ(nibble_perplexity(q4.m, nullptr, text.data(), text.size(), &pp, &from_file),
            NIBBLE_ERR_FILE);
  EXPECT_NE(std::string(nibble_last_error()).find(saved), std::string::npos);
  pp.n_ctx = 256;
  const std::string other = read_all(kValid).substr(60000, 60000);
  EXPECT_EQ(nibble_perplexity(q4.m, nullptr, other.data(), other.size(), &pp, &from_file),
            NIBBLE_ERR_FILE);
  std::filesystem::remove(saved);
}

}  // namespace
}  // namespace nibble
