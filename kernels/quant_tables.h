// Fixed value tables and bit packings of the GGML formats, shared by the quantizers, the matmul
// kernels and the reference.
#pragma once

#include <cstdint>

namespace nibble {

// IQ4_NL / IQ4_XS: a 4-bit index selects one of these 16 levels (gguf-facts.md). All fit int8,
// which is what lets the kernels map indices with one byte shuffle.
inline constexpr int8_t kIQ4NLValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// Q4_K / Q5_K: the 6-bit scale and min of sub-block s (0..7) from the super-block's 12 packed
// bytes (gguf-facts.md): sub-blocks 0–3 in the low 6 bits of bytes s and s + 4, 4–7 split
// between the nibbles of byte s + 4 and the top 2 bits of bytes s − 4 (scale) and s (min).
inline void k4_scale_min(const uint8_t* sc, int s, int* scale, int* min) {
  if (s < 4) {
    *scale = sc[s] & 63;
    *min = sc[s + 4] & 63;
  } else {
    *scale = (sc[s + 4] & 0x0F) | (sc[s - 4] >> 6) << 4;
    *min = (sc[s + 4] >> 4) | (sc[s] >> 6) << 4;
  }
}

}  // namespace nibble
