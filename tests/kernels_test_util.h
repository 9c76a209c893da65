// Helpers shared by the kernels tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "kernels/dispatch.h"

namespace nibble::test {

// Runs f(target name) once per Highway target that is compiled in and runs on this CPU, with
// dispatch forced to that target, then restores normal dispatch.
template <class F>
void for_each_target(F&& f) {
  hwy::SetSupportedTargetsForTest(0);
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    const std::string name = hwy::TargetName(target);
    SCOPED_TRACE("target " + name);
    ASSERT_EQ(active_isa(), name) << "dispatch did not follow the forced target";
    f(name);
  }
  hwy::SetSupportedTargetsForTest(0);
}

inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace nibble::test
