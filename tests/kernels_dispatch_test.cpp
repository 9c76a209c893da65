#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
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
  if (ext != Int8Extension::kAvxVnni) {
    if (ext >= Int8Extension::kI8mm) want.push_back("NEON_I8MM");
    if (ext >= Int8Extension::kDotprod) want.push_back("NEON_DOTPROD");
  }
  ASSERT_GT(names.size(), want.size());
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + static_cast<long>(want.size())), want);
  for (size_t i = want.size(); i < names.size(); ++i) {
    set_isa(names[i]);
    const Int8Extension expect = names[i] == "AVX2_VNNI" ? Int8Extension::kAvxVnni : Int8Extension::kNone;
    EXPECT_EQ(active_int8_extension(), expect) << names[i];
  }
  set_isa("auto");
}

// AVX2_VNNI is the AVX2 target plus AVX-VNNI: offered exactly where the CPU has AVX-VNNI and
// AVX2 is available, listed right above AVX2, and "AVX2" alone turns the extension off.
TEST(Dispatch, Avx2VnniSitsAboveAvx2) {
  set_isa("auto");
  const auto names = available_isas();
  const auto avx2 = std::find(names.begin(), names.end(), "AVX2");
  const auto vnni = std::find(names.begin(), names.end(), "AVX2_VNNI");
  const bool want = avx2 != names.end() && detected_int8_extension() == Int8Extension::kAvxVnni;
  ASSERT_EQ(vnni != names.end(), want);
  if (!want) {
    EXPECT_THROW(set_isa("AVX2_VNNI"), std::invalid_argument);
    set_isa("auto");
    GTEST_SKIP() << "no AVX-VNNI with AVX2 here";
  }
  EXPECT_EQ(vnni + 1, avx2);
  set_isa("AVX2_VNNI");
  EXPECT_EQ(active_isa(), "AVX2_VNNI");
  EXPECT_EQ(active_int8_extension(), Int8Extension::kAvxVnni);
  set_isa("AVX2");
  EXPECT_EQ(active_isa(), "AVX2");
  EXPECT_EQ(active_int8_extension(), Int8Extension::kNone);
  set_isa("auto");
  // The default stays the best Highway target; AVX-VNNI only names it where that is AVX2.
  EXPECT_EQ(active_isa(), names.front());
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

// cpu_vendor() picks the decode GEMV's prefetch hint: it must agree with what the kernel reports
// (Linux's vendor_id line, from the same cpuid leaf 0).
TEST(Dispatch, CpuVendorMatchesProcCpuinfo) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, vendor;
  while (vendor.empty() && std::getline(cpuinfo, line)) {
    if (line.rfind("vendor_id", 0) == 0) vendor = line.substr(line.find(':') + 2);
  }
#if defined(__x86_64__) || defined(__i386__)
  if (vendor.empty()) GTEST_SKIP() << "no vendor_id in /proc/cpuinfo";
  const nibble::CpuVendor expected = vendor == "AuthenticAMD"   ? nibble::CpuVendor::kAmd
                                     : vendor == "GenuineIntel" ? nibble::CpuVendor::kIntel
                                                                : nibble::CpuVendor::kOther;
  EXPECT_EQ(nibble::cpu_vendor(), expected) << "vendor_id: " << vendor;
#else
  EXPECT_EQ(nibble::cpu_vendor(), nibble::CpuVendor::kOther);
#endif
}
