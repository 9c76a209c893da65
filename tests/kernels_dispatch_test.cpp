#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/dispatch.h"

namespace nibble {
namespace {

TEST(Dispatch, SetIsaSelectsEachAvailableTarget) {
  set_isa("auto");
  const auto names = available_isas();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(active_isa(), names.front());  // best first
  for (const std::string& name : names) {
    set_isa(name);
    EXPECT_EQ(active_isa(), name);
  }
  set_isa("");
  EXPECT_EQ(active_isa(), names.front());
  EXPECT_EQ(available_isas(), names);
}

TEST(Dispatch, RejectsUnknownNames) {
  EXPECT_THROW(set_isa("NOT_AN_ISA"), std::invalid_argument);
  set_isa("auto");
}

TEST(Dispatch, EnvironmentOverride) {
  const auto names = available_isas();
  setenv("NIBBLE_ISA", names.back().c_str(), 1);
  apply_isa_from_env();
  EXPECT_EQ(active_isa(), names.back());
  unsetenv("NIBBLE_ISA");
  set_isa("auto");
}

// The variants a CPU offers follow its int8 extensions: i8mm implies the dot-product variant
// too, and the plain Highway targets are always there (the fallback).
TEST(Dispatch, Int8ExtensionsAreListedBestFirst) {
  set_isa("auto");
  const auto names = available_isas();
  const Int8Extension ext = detected_int8_extension();
  EXPECT_EQ(active_int8_extension(), ext);
  std::vector<std::string> want;
  if (ext >= Int8Extension::kI8mm) want.push_back("NEON_I8MM");
  if (ext >= Int8Extension::kDotprod) want.push_back("NEON_DOTPROD");
  ASSERT_GT(names.size(), want.size());
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + static_cast<long>(want.size())), want);
  for (size_t i = want.size(); i < names.size(); ++i) {
    set_isa(names[i]);
    EXPECT_EQ(active_int8_extension(), Int8Extension::kNone) << names[i];
  }
  set_isa("auto");
}

// scripts/test-aarch64.sh names the variants each emulated CPU must offer, so a CPU model that
// silently lost (or gained) an extension cannot hide a path from the other tests.
TEST(Dispatch, MatchesExpectedVariants) {
  const char* expected = std::getenv("NIBBLE_EXPECT_ISAS");
  if (expected == nullptr) GTEST_SKIP() << "NIBBLE_EXPECT_ISAS not set";
  set_isa("auto");
  std::string got;
  for (const std::string& n : available_isas()) got += (got.empty() ? "" : " ") + n;
  EXPECT_EQ(got, expected);
}

}  // namespace
}  // namespace nibble
