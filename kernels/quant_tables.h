// Fixed value tables of the non-linear GGML formats, shared by the quantizers, the matmul
// kernels and the reference.
#pragma once

#include <cstdint>

namespace nibble {

// IQ4_NL / IQ4_XS: a 4-bit index selects one of these 16 levels (gguf-facts.md). All fit int8,
// which is what lets the kernels map indices with one byte shuffle.
inline constexpr int8_t kIQ4NLValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

}  // namespace nibble
