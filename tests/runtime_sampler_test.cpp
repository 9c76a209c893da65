#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "runtime/sampler.h"

namespace nibble {
namespace {

TEST(Sampler, ZeroTemperatureIsArgmaxWhateverElseIsSet) {
  SamplerParams p;
  p.temperature = 0;
  p.repeat_penalty = 5.0f;  // bypassed at temperature 0
  Sampler s(p);
  const std::vector<float> logits = {0.1f, 3.0f, -1.0f, 2.9f};
  s.accept(1);
  EXPECT_EQ(s.sample(logits.data(), logits.size()), 1);
}

TEST(Sampler, TopKOneIsArgmax) {
  SamplerParams p;
  p.top_k = 1;
  p.temperature = 5.0f;
  Sampler s(p);
  const std::vector<float> logits = {0.1f, 0.2f, 0.3f, 0.25f};
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(logits.data(), logits.size()), 2);
}

TEST(Sampler, SameSeedSameTokens) {
  SamplerParams p;
  p.seed = 1234;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.temperature = 1.0f;
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = std::sin(i * 0.37f);
  Sampler a(p), b(p);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(logits.data(), 100), b.sample(logits.data(), 100));
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  SamplerParams p;
  p.seed = 7;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.temperature = 1.0f;
  Sampler s(p);
  const std::vector<float> logits = {0.0f, std::log(3.0f)};  // p = 1/4, 3/4
  int ones = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ones += s.sample(logits.data(), 2) == 1;
  EXPECT_NEAR(ones / double(n), 0.75, 0.02);
}

TEST(Sampler, MinPAndTopPDropTheTail) {
  SamplerParams p;
  p.seed = 3;
  p.top_k = 0;
  p.temperature = 1.0f;
  p.top_p = 1.0f;
  p.min_p = 0.5f;  // keeps tokens with p ≥ half the best
  Sampler s(p);
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  std::map<int, int> seen;
  for (int i = 0; i < 2000; ++i) ++seen[s.sample(logits.data(), 3)];
  EXPECT_EQ(seen.count(2), 0u);
  EXPECT_GT(seen[1], 0);

  p.min_p = 0.0f;
  p.top_p = 0.7f;  // 0.5 + 0.3 reaches it: the 0.2 token is cut
  Sampler t(p);
  seen.clear();
  for (int i = 0; i < 2000; ++i) ++seen[t.sample(logits.data(), 3)];
  EXPECT_EQ(seen.count(2), 0u);
  EXPECT_GT(seen[1], 0);
}

TEST(Sampler, RepeatPenaltyPushesRecentTokensDown) {
  SamplerParams p;
  p.seed = 1;
  p.top_k = 1;
  p.repeat_penalty = 2.0f;
  Sampler s(p);
  const std::vector<float> logits = {1.0f, 0.8f};
  EXPECT_EQ(s.sample(logits.data(), 2), 0);
  s.accept(0);  // 1.0 / 2 = 0.5 < 0.8
  EXPECT_EQ(s.sample(logits.data(), 2), 1);
}

}  // namespace
}  // namespace nibble
