// kLayoutPacked4 packing and unpacking (layout in repack.h).
#include "kernels/repack.h"

#include <algorithm>
#include <cstring>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "kernels/matmul_internal.h"
#include "kernels/tensor_type.h"

namespace nibble {

WeightStorage allocate_weight_storage(uint64_t bytes) {
  // Decode streams every weight once per token: with 4 KiB pages that is a TLB miss every 4 KiB
  // and the hardware prefetchers stop at each page boundary. Large buffers therefore go on
  // 2 MiB-aligned memory that the kernel may back with transparent huge pages.
  constexpr uint64_t kHuge = 2u << 20;
  const bool huge = bytes >= kHuge;
  const uint64_t align = huge ? kHuge : 64;
  const uint64_t size = (std::max<uint64_t>(bytes, 1) + align - 1) / align * align;
  uint8_t* buf = static_cast<uint8_t*>(std::aligned_alloc(align, size));
  if (buf == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (huge) (void)madvise(buf, size, MADV_HUGEPAGE);  // advice only: fine if THP is off
#endif
  return WeightStorage(buf);
}

bool has_packed_layout(const WeightMatrix& W) {
  const int G = detail::packed_group_blocks(W.type);
  return W.layout == kLayoutGguf && G != 0 && W.data != nullptr && W.rows > 0 && W.cols > 0 &&
         W.cols % (32 * G) == 0;
}

PackedWeight repack_for_matmul(const WeightMatrix& W) {
  PackedWeight out;
  out.view = W;
  if (!has_packed_layout(W)) return out;
  const int G = detail::packed_group_blocks(W.type);
  const uint64_t block_bytes = type_traits(W.type)->block_bytes;
  const uint64_t quant_bytes = block_bytes - 2;  // after the fp16 scale
  const int64_t nb = W.cols / 32;
  const uint64_t gguf_row = row_bytes(static_cast<uint32_t>(W.type), static_cast<uint64_t>(W.cols));
  const uint64_t tile_bytes = detail::packed_tile_bytes(gguf_row);
  const int64_t n_tiles = (W.rows + 3) / 4;
  out.storage_bytes = tile_bytes * static_cast<uint64_t>(n_tiles);
  out.storage = allocate_weight_storage(out.storage_bytes);
  uint8_t* buf = out.storage.get();
  const uint64_t scale_base = static_cast<uint64_t>(nb) * 4 * quant_bytes;
  for (int64_t t = 0; t < n_tiles; ++t) {
    uint8_t* tile = buf + t * tile_bytes;
    std::memset(tile + 4 * gguf_row, 0, tile_bytes - 4 * gguf_row);  // alignment padding
    for (int r = 0; r < 4; ++r) {
      const int64_t row = std::min<int64_t>(4 * t + r, W.rows - 1);  // N tail: repeat the last row
      const uint8_t* src = W.data + static_cast<uint64_t>(row) * W.row_bytes;
      for (int64_t b = 0; b < nb; ++b) {
        const int64_t g = b / G, i = b % G;
        const uint8_t* blk = src + b * block_bytes;
        std::memcpy(tile + (g * 4 + r) * 64 + i * quant_bytes, blk + 2, quant_bytes);
        std::memcpy(tile + scale_base + (g * 4 + r) * 2 * G + 2 * i, blk, 2);
      }
    }
  }
  out.view.data = buf;
  out.view.row_bytes = gguf_row;
  out.view.layout = kLayoutPacked4;
  return out;
}

namespace detail {

void unpack_packed_tile(TensorType type, const uint8_t* tile, int64_t K, int r0, int nr, uint8_t* out,
                        uint64_t out_row_bytes) {
  const int G = packed_group_blocks(type);
  const uint64_t block_bytes = type_traits(type)->block_bytes;
  const uint64_t quant_bytes = block_bytes - 2;
  const int64_t nb = K / 32;
  const uint64_t scale_base = static_cast<uint64_t>(nb) * 4 * quant_bytes;
  for (int i = 0; i < nr; ++i) {
    const int r = r0 + i;
    uint8_t* dst = out + i * out_row_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t g = b / G, j = b % G;
      std::memcpy(dst + b * block_bytes, tile + scale_base + (g * 4 + r) * 2 * G + 2 * j, 2);
      std::memcpy(dst + b * block_bytes + 2, tile + (g * 4 + r) * 64 + j * quant_bytes, quant_bytes);
    }
  }
}

}  // namespace detail
}  // namespace nibble
