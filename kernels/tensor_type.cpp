#include "kernels/tensor_type.h"

#include <array>
#include <iterator>
#include <optional>

namespace nibble {
namespace {

// Indexed by GGML type id. Retired ids (4, 5, 31–33, 36–38) stay empty so files using them are
// rejected rather than misread. Sizes: gguf-facts.md and ggml-common.h's block structs.
constexpr uint32_t kMaxTypeId = 42;

constexpr std::array<std::optional<TypeTraits>, kMaxTypeId + 1> make_table() {
  std::array<std::optional<TypeTraits>, kMaxTypeId + 1> t{};
  t[0] = TypeTraits{"F32", 1, 4, true};
  t[1] = TypeTraits{"F16", 1, 2, true};
  t[2] = TypeTraits{"Q4_0", 32, 18, true};
  t[3] = TypeTraits{"Q4_1", 32, 20, true};
  t[6] = TypeTraits{"Q5_0", 32, 22, true};
  t[7] = TypeTraits{"Q5_1", 32, 24, true};
  t[8] = TypeTraits{"Q8_0", 32, 34, true};
  t[9] = TypeTraits{"Q8_1", 32, 36, false};
  t[10] = TypeTraits{"Q2_K", 256, 84, true};
  t[11] = TypeTraits{"Q3_K", 256, 110, true};
  t[12] = TypeTraits{"Q4_K", 256, 144, true};
  t[13] = TypeTraits{"Q5_K", 256, 176, true};
  t[14] = TypeTraits{"Q6_K", 256, 210, true};
  t[15] = TypeTraits{"Q8_K", 256, 292, false};
  t[16] = TypeTraits{"IQ2_XXS", 256, 66, false};
  t[17] = TypeTraits{"IQ2_XS", 256, 74, false};
  t[18] = TypeTraits{"IQ3_XXS", 256, 98, false};
  t[19] = TypeTraits{"IQ1_S", 256, 50, false};
  t[20] = TypeTraits{"IQ4_NL", 32, 18, true};
  t[21] = TypeTraits{"IQ3_S", 256, 110, false};
  t[22] = TypeTraits{"IQ2_S", 256, 82, false};
  t[23] = TypeTraits{"IQ4_XS", 256, 136, true};
  t[24] = TypeTraits{"I8", 1, 1, false};
  t[25] = TypeTraits{"I16", 1, 2, false};
  t[26] = TypeTraits{"I32", 1, 4, false};
  t[27] = TypeTraits{"I64", 1, 8, false};
  t[28] = TypeTraits{"F64", 1, 8, false};
  t[29] = TypeTraits{"IQ1_M", 256, 56, false};
  t[30] = TypeTraits{"BF16", 1, 2, true};
  t[34] = TypeTraits{"TQ1_0", 256, 54, false};
  t[35] = TypeTraits{"TQ2_0", 256, 66, false};
  t[39] = TypeTraits{"MXFP4", 32, 17, false};
  t[40] = TypeTraits{"NVFP4", 64, 36, false};
  t[41] = TypeTraits{"Q1_0", 128, 18, false};
  t[42] = TypeTraits{"Q2_0", 64, 18, false};
  return t;
}

constexpr auto kTypeTable = make_table();

// nibble's own formats, ids kFirstNibbleType + i (layouts in tensor_type.h and docs/format.md).
constexpr TypeTraits kNibbleTypes[] = {
    {"Q4_G64", 64, 34, true},
    {"Q4_G128", 128, 66, true},
    {"Q8_C", 32, 32, true, 4},
};

}  // namespace

const TypeTraits* type_traits(uint32_t type_id) {
  if (type_id >= kFirstNibbleType) {
    const uint32_t i = type_id - kFirstNibbleType;
    return i < std::size(kNibbleTypes) ? &kNibbleTypes[i] : nullptr;
  }
  if (type_id > kMaxTypeId || !kTypeTable[type_id]) return nullptr;
  return &*kTypeTable[type_id];
}

std::string type_name(uint32_t type_id) {
  const TypeTraits* t = type_traits(type_id);
  return t ? std::string(t->name) : "type " + std::to_string(type_id);
}

uint64_t row_bytes(uint32_t type_id, uint64_t elems) {
  const TypeTraits* t = type_traits(type_id);
  if (t == nullptr || elems % t->block_elems != 0) return 0;
  return t->row_header_bytes + elems / t->block_elems * t->block_bytes;
}

}  // namespace nibble
