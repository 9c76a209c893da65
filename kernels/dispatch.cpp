// Highway owns target selection; this file names targets, forwards restrictions to Highway and
// keeps the one choice Highway cannot make: which int8 extension the matmul kernels use (AArch64
// dot product / i8mm, x86 AVX-VNNI under the AVX2 target).
#include "kernels/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dispatch.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace nibble {
namespace HWY_NAMESPACE {
// Reports the target HWY_DYNAMIC_DISPATCH picks now: asking the dispatcher itself cannot
// disagree with what the kernels run.
int64_t CompiledTarget() { return HWY_TARGET; }
}  // namespace HWY_NAMESPACE
}  // namespace nibble
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble {

HWY_EXPORT(CompiledTarget);

namespace {

struct Int8Name {
  const char* name;
  Int8Extension ext;
};
// AArch64's variants, best first, as available_isas lists them (each is the best Highway target
// plus the extension).
constexpr Int8Name kInt8Names[] = {{"NEON_I8MM", Int8Extension::kI8mm}, {"NEON_DOTPROD", Int8Extension::kDotprod}};
// x86's: the AVX2 target plus AVX-VNNI, listed just above "AVX2".
constexpr const char* kAvx2VnniName = "AVX2_VNNI";

// -1: follow the CPU; otherwise the Int8Extension set_isa chose.
std::atomic<int> g_int8_choice{-1};

Int8Extension detect_int8() {
#if defined(__aarch64__) && defined(__linux__)
  const unsigned long hwcap = getauxval(AT_HWCAP), hwcap2 = getauxval(AT_HWCAP2);
  if (!(hwcap & HWCAP_ASIMDDP)) return Int8Extension::kNone;
  // Every i8mm CPU has the dot product too (Armv8.6 requires both); the smmla kernels use sdot
  // for single activation rows.
  return (hwcap2 & HWCAP2_I8MM) ? Int8Extension::kI8mm : Int8Extension::kDotprod;
#elif (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  // cpuid leaf 7 subleaf 1, EAX bit 4. The OS's saving of the ymm state needs no check of its
  // own: AVX2_VNNI is only offered together with Highway's AVX2 target, which checked it.
  return __builtin_cpu_supports("avxvnni") ? Int8Extension::kAvxVnni : Int8Extension::kNone;
#else
  return Int8Extension::kNone;
#endif
}

// Whether the CPU runs the AArch64 variant with extension ext.
bool has_arm_variant(Int8Extension ext) {
  const Int8Extension d = detected_int8_extension();
  return d != Int8Extension::kAvxVnni && d != Int8Extension::kNone && ext <= d;
}

bool avx2_target_available() {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    if (target == HWY_AVX2) return true;
  }
  return false;
}

}  // namespace

Int8Extension detected_int8_extension() {
  static const Int8Extension detected = detect_int8();
  return detected;
}

CpuVendor cpu_vendor() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  // Once per process (make_args asks on every matmul); __builtin_cpu_init is needed if this runs
  // before the constructors that would have called it.
  static const CpuVendor vendor = [] {
    __builtin_cpu_init();
    return __builtin_cpu_is("amd")     ? CpuVendor::kAmd
           : __builtin_cpu_is("intel") ? CpuVendor::kIntel
                                       : CpuVendor::kOther;
  }();
  return vendor;
#else
  return CpuVendor::kOther;
#endif
}

Int8Extension active_int8_extension() {
  const int choice = g_int8_choice.load(std::memory_order_relaxed);
  return choice < 0 ? detected_int8_extension() : static_cast<Int8Extension>(choice);
}

std::string active_isa() {
  const Int8Extension ext = active_int8_extension();
  for (const Int8Name& n : kInt8Names) {
    if (n.ext == ext) return n.name;
  }
  const int64_t target = HWY_DYNAMIC_DISPATCH(CompiledTarget)();
  // AVX-VNNI changes nothing but the AVX2 kernels: on AVX3_DL it is not in force.
  if (ext == Int8Extension::kAvxVnni && target == HWY_AVX2) return kAvx2VnniName;
  return hwy::TargetName(target);
}

std::vector<std::string> available_isas() {
  std::vector<std::string> names;
  for (const Int8Name& n : kInt8Names) {
    if (has_arm_variant(n.ext)) names.emplace_back(n.name);
  }
  // SupportedAndGeneratedTargets lists lowest bit first, which is the best target.
  const bool vnni = detected_int8_extension() == Int8Extension::kAvxVnni;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    if (vnni && target == HWY_AVX2) names.emplace_back(kAvx2VnniName);
    names.emplace_back(hwy::TargetName(target));
  }
  return names;
}

void set_isa(const std::string& name) {
  // Drop any earlier restriction first, so the checks below see everything the CPU runs.
  hwy::SetSupportedTargetsForTest(0);
  g_int8_choice.store(-1, std::memory_order_relaxed);
  if (name.empty() || name == "auto") return;
  for (const Int8Name& n : kInt8Names) {
    if (name == n.name && has_arm_variant(n.ext)) {
      g_int8_choice.store(static_cast<int>(n.ext), std::memory_order_relaxed);
      return;
    }
  }
  if (name == kAvx2VnniName && detected_int8_extension() == Int8Extension::kAvxVnni && avx2_target_available()) {
    hwy::SetSupportedTargetsForTest(HWY_AVX2);
    g_int8_choice.store(static_cast<int>(Int8Extension::kAvxVnni), std::memory_order_relaxed);
    return;
  }
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    if (name == hwy::TargetName(target)) {
      hwy::SetSupportedTargetsForTest(target);
      g_int8_choice.store(static_cast<int>(Int8Extension::kNone), std::memory_order_relaxed);
      return;
    }
  }
  std::string known;
  for (const std::string& n : available_isas()) known += " " + n;
  throw std::invalid_argument("ISA '" + name + "' is not available on this CPU; available:" + known);
}

void apply_isa_from_env() {
  const char* value = std::getenv("NIBBLE_ISA");
  if (value != nullptr) set_isa(value);
}

}  // namespace nibble
#endif  // HWY_ONCE
