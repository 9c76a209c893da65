// Loads and stores of little-endian integers at any byte address (weight blocks pack their fp16
// scales and quant words at odd offsets). memcpy is the defined way to read them; compilers turn
// it into one plain load or store.
#pragma once

#include <cstdint>
#include <cstring>

namespace nibble::detail {

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline uint64_t load_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline void store_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

inline void store_u64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }

}  // namespace nibble::detail
