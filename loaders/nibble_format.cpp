// Size rules and checksums of nibble's own file format (docs/format.md).
#include "loaders/nibble_format.h"

#include <cstring>

#include "loaders/byte_reader.h"

// Header-only use of Debian's libxxhash: the functions are compiled into this file, so nothing
// is added to libnibble's link dependencies (and a static libnibble needs no extra library).
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace nibble::nbl {
namespace {

// Blocks per 64-byte quant run in kLayoutPacked4 (kernels/repack.h): Q4_0 blocks carry 16 quant
// bytes, Q8_0 blocks 32. 0: no packed layout for the type.
uint64_t packed_group_blocks(TensorType t) {
  return t == TensorType::Q4_0 ? 4 : t == TensorType::Q8_0 ? 2 : 0;
}

}  // namespace

std::string layout_name(uint32_t layout) {
  if (layout == kLayoutPlain) return "plain";
  if (layout == kLayoutPacked) return "packed4";
  return "layout " + std::to_string(layout);
}

uint32_t group_size(TensorType type, uint64_t row_length) {
  const TypeTraits* t = type_traits(type);
  if (t == nullptr) return 0;
  if (t->row_header_bytes != 0) return static_cast<uint32_t>(row_length);  // per-row scale
  if (t->block_elems == 1) return 0;  // floats and plain integers: no scales
  return t->block_elems;
}

bool packed_layout_allowed(TensorType type, const std::vector<uint64_t>& dims) {
  const uint64_t g = packed_group_blocks(type);
  return g != 0 && dims.size() == 2 && dims[0] > 0 && dims[1] > 0 && dims[0] % (32 * g) == 0;
}

uint64_t tensor_bytes(uint32_t type_id, uint32_t layout, const std::vector<uint64_t>& dims,
                      std::string* why) {
  auto fail = [&](const std::string& msg) -> uint64_t {
    if (why) *why = msg;
    return 0;
  };
  const TypeTraits* t = type_traits(type_id);
  if (t == nullptr) return fail("unknown tensor type id " + std::to_string(type_id));
  if (dims.empty() || dims.size() > kMaxDims) return fail("needs 1 to 4 dims");
  uint64_t rows = 1;
  for (size_t d = 1; d < dims.size(); ++d) {
    if (!checked_mul(rows, dims[d], &rows)) return fail("element count overflows");
  }
  const uint64_t row = row_bytes(type_id, dims[0]);
  if (row == 0) {
    return fail("row length " + std::to_string(dims[0]) + " is not a whole number of " +
                t->name + " blocks of " + std::to_string(t->block_elems));
  }
  if (layout == kLayoutPlain) {
    uint64_t n = 0;
    if (!checked_mul(rows, row, &n)) return fail("byte size overflows");
    return n;
  }
  if (layout == kLayoutPacked) {
    const auto type = static_cast<TensorType>(type_id);
    if (!packed_layout_allowed(type, dims)) {
      return fail("layout 1 (packed4) is defined only for 2-D Q4_0 tensors with rows a multiple "
                  "of 128 and Q8_0 with rows a multiple of 64, not " + std::string(t->name) +
                  " with row length " + std::to_string(dims[0]) + " and " +
                  std::to_string(dims.size()) + " dims");
    }
    uint64_t tile = 0, n = 0;
    if (!checked_mul(row, 4, &tile) || !checked_align_up(tile, 64, &tile) ||
        !checked_mul(tile, rows / 4 + (rows % 4 != 0), &n)) {
      return fail("byte size overflows");
    }
    return n;
  }
  return fail("unknown layout id " + std::to_string(layout) + " (this reader knows 0 plain and "
              "1 packed4)");
}

uint64_t checksum(const void* data, uint64_t n) { return XXH64(data, n, 0); }

struct Checksum::State {
  XXH64_state_t s;
};

Checksum::Checksum() : state_(std::make_unique<State>()) { XXH64_reset(&state_->s, 0); }
Checksum::~Checksum() = default;
void Checksum::update(const void* data, uint64_t n) { XXH64_update(&state_->s, data, n); }
uint64_t Checksum::digest() const { return XXH64_digest(&state_->s); }

}  // namespace nibble::nbl

namespace nibble::nbl {

void unpack_packed4(TensorType type, const std::vector<uint64_t>& dims, const uint8_t* packed,
                    uint8_t* plain) {
  const uint64_t G = packed_group_blocks(type);
  const uint64_t K = dims[0], N = dims[1];
  const uint64_t block_bytes = type_traits(type)->block_bytes;
  const uint64_t quant_bytes = block_bytes - 2;  // after each block's fp16 scale
  const uint64_t nb = K / 32;
  const uint64_t row = row_bytes(static_cast<uint32_t>(type), K);
  const uint64_t tile_bytes = (4 * row + 63) / 64 * 64;
  const uint64_t scales = nb * 4 * quant_bytes;  // where a tile's scales start
  for (uint64_t n = 0; n < N; ++n) {
    const uint8_t* tile = packed + (n / 4) * tile_bytes;
    const uint64_t r = n % 4;
    uint8_t* dst = plain + n * row;
    for (uint64_t b = 0; b < nb; ++b) {
      const uint64_t g = b / G, i = b % G;
      std::memcpy(dst + b * block_bytes, tile + scales + (g * 4 + r) * 2 * G + 2 * i, 2);
      std::memcpy(dst + b * block_bytes + 2, tile + (g * 4 + r) * 64 + i * quant_bytes, quant_bytes);
    }
  }
}

}  // namespace nibble::nbl
