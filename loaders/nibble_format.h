// nibble's own model file (docs/format.md): the constants and size rules the reader and the
// writer share, so the two cannot disagree about what a valid file is.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/tensor_type.h"

namespace nibble::nbl {

inline constexpr uint8_t kMagic[8] = {0x89, 'N', 'I', 'B', 'B', 'L', 'E', '\n'};
inline constexpr uint16_t kVersionMajor = 1;
inline constexpr uint16_t kVersionMinor = 0;
inline constexpr uint32_t kHeaderSize = 128;
// Bytes of the header the header checksum covers (everything before the checksum field).
inline constexpr uint64_t kHeaderChecksummed = 88;
inline constexpr uint64_t kPageAlign = 4096;
inline constexpr uint32_t kDataAlignment = 64;
inline constexpr uint32_t kMaxDataAlignment = 4096;
inline constexpr uint32_t kMaxDims = 4;
inline constexpr uint64_t kMaxNameBytes = 4096;

// Layout ids (the same numbers as kernels/matmul.h's kLayoutGguf / kLayoutPacked4).
inline constexpr uint32_t kLayoutPlain = 0;
inline constexpr uint32_t kLayoutPacked = 1;

// Header field offsets.
namespace hdr {
inline constexpr uint64_t kMagic = 0, kVersionMajor = 8, kVersionMinor = 10, kHeaderSize = 12,
                          kFileSize = 16, kMetaOffset = 24, kMetaSize = 32, kDirOffset = 40,
                          kDirSize = 48, kTensorCount = 56, kDataOffset = 64, kDataSize = 72,
                          kDataAlignment = 80, kChecksum = 88;
}

// "plain", "packed4", or "layout N".
std::string layout_name(uint32_t layout);

// Weights sharing one scale, as the directory's group_size field records it: 0 for float types,
// the block size for block types, the row length for per-row types (Q8_C).
uint32_t group_size(TensorType type, uint64_t row_length);

// Bytes a tensor of `type` in `layout` with `dims` occupies. Returns 0 and sets *why when the
// combination is invalid (unknown type or layout, rows not whole blocks, a packed layout the
// type or shape does not have, overflow).
uint64_t tensor_bytes(uint32_t type_id, uint32_t layout, const std::vector<uint64_t>& dims,
                      std::string* why);

// True when layout 1 (packed4) exists for this type and row length: Q4_0 with K a multiple of
// 128, Q8_0 with K a multiple of 64 (kernels/repack.h packed_layout_fits), 2-D.
bool packed_layout_allowed(TensorType type, const std::vector<uint64_t>& dims);

}  // namespace nibble::nbl

namespace nibble::nbl {

// XXH64 with seed 0 (docs/format.md: tensor and header checksums).
uint64_t checksum(const void* data, uint64_t n);

// The same hash over bytes that arrive in pieces (the writer streams tensors).
class Checksum {
 public:
  Checksum();
  ~Checksum();
  Checksum(const Checksum&) = delete;
  Checksum& operator=(const Checksum&) = delete;
  void update(const void* data, uint64_t n);
  uint64_t digest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace nibble::nbl

namespace nibble::nbl {

// Layout 1 (packed4) back to plain rows: `packed` holds a 2-D Q4_0 / Q8_0 tensor of `dims` in
// kLayoutPacked4; `plain` receives rows × row_bytes bytes. The inverse of
// kernels/repack.h repack_for_matmul, written from the layout in docs/format.md.
void unpack_packed4(TensorType type, const std::vector<uint64_t>& dims, const uint8_t* packed,
                    uint8_t* plain);

}  // namespace nibble::nbl
