#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>

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

}  // namespace
}  // namespace nibble
