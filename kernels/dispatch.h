// The one CPU-feature layer: Highway's run-time target choice, plus the int8 extensions Highway
// 1.0.3 has no target for (AArch64 dot product and i8mm, read from HWCAP), and the override
// tests and users reach through NIBBLE_ISA.
//
// ISA names, best first: on AArch64 "NEON_I8MM" and "NEON_DOTPROD" where the CPU has them (int8
// matmul on the smmla / sdot kernels of matmul_neon*.cpp, everything else on the best Highway
// target), then the Highway targets ("NEON"; on x86 "AVX3_DL", "AVX2", ...), each meaning that
// target for everything with no int8 extension, so NIBBLE_ISA=NEON is the plain NEON fallback
// (on AArch64 its int8 matmuls are matmul_neon_plain.cpp's tiles). On x86 "AVX2_VNNI", listed
// just above "AVX2" where the CPU has AVX-VNNI, is Highway's AVX2 target plus the VEX vpdpbusd
// prefill GEMM (Highway 1.0.3 has no target between AVX2 and AVX-512; Alder Lake and later
// Intel client cores have AVX-VNNI without AVX-512). The default is the first name; where the
// best Highway target is AVX2 on an AVX-VNNI CPU that is "AVX2_VNNI".
#pragma once

#include <string>
#include <vector>

namespace nibble {

// Name of the variant the dispatched kernels use now ("NEON_I8MM", "AVX3_DL", "SCALAR", ...).
std::string active_isa();

// Names of the compiled variants this CPU can run, best first.
std::vector<std::string> available_isas();

// Restricts dispatch to the named variant; "" or "auto" restores the default. Throws
// std::invalid_argument for a name that is not available here.
void set_isa(const std::string& name);

// Applies NIBBLE_ISA from the environment if set (called once by the runtime at start-up).
void apply_isa_from_env();

// Int8 extensions beyond Highway's targets. The AArch64 ones are in increasing order (an i8mm
// CPU has the dot product too); kAvxVnni (x86 AVX-VNNI) stands alone and only changes the AVX2
// target's kernels.
enum class Int8Extension { kNone = 0, kDotprod = 1, kI8mm = 2, kAvxVnni = 3 };

// What this CPU has (HWCAP on AArch64 Linux, cpuid on x86; kNone elsewhere).
Int8Extension detected_int8_extension();

// What the int8 matmul kernels use now: the detected one unless set_isa chose otherwise.
Int8Extension active_int8_extension();

// The x86 CPU's vendor (kOther elsewhere): the memory hints that stream weights fastest differ
// between AMD's and Intel's caches (the decode GEMV's prefetch, kernels/matmul_internal.h).
enum class CpuVendor { kOther = 0, kIntel = 1, kAmd = 2 };
CpuVendor cpu_vendor();

}  // namespace nibble
