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

// Runs f(name) once per ISA variant this CPU runs (available_isas(): every compiled Highway
// target, and on AArch64 the dot-product / i8mm int8 kernels), with dispatch forced to it, then
// restores normal dispatch.
template <class F>
void for_each_target(F&& f) {
  set_isa("auto");
  const std::vector<std::string> names = available_isas();
  ASSERT_FALSE(names.empty());
  for (const std::string& name : names) {
    set_isa(name);
    SCOPED_TRACE("target " + name);
    ASSERT_EQ(active_isa(), name) << "dispatch did not follow the forced target";
    f(name);
  }
  set_isa("auto");
}

inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace nibble::test
