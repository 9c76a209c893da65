// Highway owns target selection; this file only names targets and forwards restrictions to it.
#include "kernels/dispatch.h"

#include <cstdlib>
#include <stdexcept>

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

std::string active_isa() { return hwy::TargetName(HWY_DYNAMIC_DISPATCH(CompiledTarget)()); }

std::vector<std::string> available_isas() {
  std::vector<std::string> names;
  // SupportedAndGeneratedTargets lists lowest bit first, which is the best target.
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) names.emplace_back(hwy::TargetName(target));
  return names;
}

void set_isa(const std::string& name) {
  // Drop any earlier restriction first, so the check below sees everything the CPU runs.
  hwy::SetSupportedTargetsForTest(0);
  if (name.empty() || name == "auto") return;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    if (name == hwy::TargetName(target)) {
      hwy::SetSupportedTargetsForTest(target);
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
