// The one CPU-feature layer: Highway's run-time target choice, plus the override tests and
// users reach through NIBBLE_ISA (e.g. NIBBLE_ISA=AVX2 on an AVX-512 machine).
#pragma once

#include <string>
#include <vector>

namespace nibble {

// Name of the Highway target the dispatched kernels use now ("AVX3_DL", "AVX2", "SCALAR", ...).
std::string active_isa();

// Names of the compiled targets this CPU can run, best first.
std::vector<std::string> available_isas();

// Restricts dispatch to the named target (and lower ones are not considered); "" or "auto"
// restores the default. Throws std::invalid_argument for a name that is not available here.
void set_isa(const std::string& name);

// Applies NIBBLE_ISA from the environment if set (called once by the runtime at start-up).
void apply_isa_from_env();

}  // namespace nibble
