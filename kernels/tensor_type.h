// Weight and activation element types, numbered as GGML numbers them (enum ggml_type) so that
// a GGUF tensor's type id is used as is. A type is a value described by TypeTraits: adding a
// format touches the traits table and the kernel dispatch table, nothing else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace nibble {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ4_NL = 20,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
  // nibble's own weight formats (ids from 1024 up: never valid in a GGUF file). Each has a
  // scalar reference, dequantization and kernels like the GGML types.
  Q4_G64 = 1024,   // 4-bit symmetric, groups of 64: fp16 scale + 32 nibble bytes (4.25 bpw)
  Q4_G128 = 1025,  // 4-bit symmetric, groups of 128: fp16 scale + 64 nibble bytes (4.125 bpw)
  Q8_C = 1026,     // int8 per output channel: one f32 scale per row, then K int8 values
};

// Ids below this are GGML's; a GGUF tensor with a larger id is refused.
constexpr uint32_t kFirstNibbleType = 1024;

struct TypeTraits {
  const char* name;         // GGML's spelling: "Q4_0", "F16", ...
  uint32_t block_elems;     // elements per block (1 for plain types)
  uint32_t block_bytes;     // bytes per block
  bool runnable;            // nibble has matmul/dequantize kernels for it
  uint32_t row_header_bytes = 0;  // bytes before a row's first block (Q8_C: its f32 scale)
};

// Traits of a GGML type id, or nullptr when the id is not a known type.
const TypeTraits* type_traits(uint32_t type_id);
// "Q4_0", or "type 99" for an unknown id.
std::string type_name(uint32_t type_id);
inline const TypeTraits* type_traits(TensorType t) { return type_traits(static_cast<uint32_t>(t)); }

// Bytes of one row of `elems` elements (row header included); 0 when the row is not a whole
// number of blocks or the type is unknown (callers turn that into an error naming the tensor).
uint64_t row_bytes(uint32_t type_id, uint64_t elems);

}  // namespace nibble
