// kLayoutPacked4 packing and unpacking (layout in repack.h).
#include "kernels/repack.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "kernels/matmul_internal.h"
#include "kernels/tensor_type.h"
#include "kernels/unaligned.h"

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
  // Advice only (fine if THP is off), and only for the whole huge pages the weights fill: a huge
  // page over the partly used last 2 MiB would be resident in full once touched, up to 2 MiB per
  // tensor. Peak RSS of run-model on the 1.1B-shaped files: Q4_K_M 1039 → 856 MB, Q4_0 1026 → 825
  // MB (file 668 and 637 MB).
  if (huge) (void)madvise(buf, bytes / kHuge * kHuge, MADV_HUGEPAGE);
#endif
  return WeightStorage(buf);
}

bool packed_layout_fits(const WeightMatrix& W) {
  const int G = detail::packed_group_blocks(W.type);
  return W.layout == kLayoutGguf && G != 0 && W.data != nullptr && W.rows > 0 && W.cols > 0 &&
         W.cols % (32 * G) == 0;
}

namespace {
// From the file layout, or from kLayoutPacked4 as nibble files store it.
bool rows16_chosen(const WeightMatrix& W) {
  return (W.layout == kLayoutGguf || W.layout == kLayoutPacked4) && W.data != nullptr &&
         W.rows > 0 && detail::rows16_layout_fits(W.type, W.cols) &&
         detail::rows16_layout_pays(W.type);
}
}  // namespace

bool has_packed_layout(const WeightMatrix& W) {
  return rows16_chosen(W) || (packed_layout_fits(W) && detail::packed_layout_pays(W.type));
}

namespace {

// Where block i of group g of row r keeps its quant bytes and header field f (repack.h).
struct PackedGeometry {
  int G;                 // blocks per group
  uint64_t block_bytes;  // GGUF block
  uint64_t header;       // fp16 header bytes per block (2·fields)
  uint64_t quant;        // quant bytes per block (64 / G)
  uint64_t scale_base;   // where the header fields start in a tile
  PackedGeometry(TensorType t, int64_t K)
      : G(detail::packed_group_blocks(t)),
        block_bytes(type_traits(t)->block_bytes),
        header(static_cast<uint64_t>(detail::packed_header_bytes(t))),
        quant(block_bytes - header),
        scale_base(static_cast<uint64_t>(K / 32) * 4 * quant) {}
  uint64_t quant_at(int64_t g, int r, int64_t i) const { return (g * 4 + r) * 64 + i * quant; }
  uint64_t field_at(int64_t g, uint64_t f, int r, int64_t i) const {
    const uint64_t fields = header / 2;
    return scale_base + ((g * fields + f) * 4 + r) * 2 * G + 2 * i;
  }
};

// Q4_K's and Q5_K's packed tiles, one run per super-block of the 4 rows' bytes (repack.h): the
// 4 rows' 16-byte headers, then sub-block k's 32 elements of each row as 16 bytes at 64 + 64k +
// 16r, element e's nibble low in byte e (e < 16) or high in byte e − 16 — the Q4_0 order, from
// GGUF's sub-block order (chunk k/2 of 32 bytes, low nibbles for even k, high for odd) — and for
// Q5_K the fifth bits of sub-block k at kK5FifthBitsAt + 16k: 16 bits per row for elements
// 0..15 (2r) and 16 for 16..31 (8 + 2r), bit e of each for element e (GGUF: bit k of qh[e]).
struct K45Layout {
  bool five;
  uint64_t super_bytes;  // GGUF: 144 (Q4_K) or 176 (Q5_K)
  uint64_t qs;           // quant bytes' offset in a GGUF super-block
  explicit K45Layout(TensorType t)
      : five(t == TensorType::Q5_K), super_bytes(five ? 176 : 144), qs(five ? 48 : 16) {}
  uint64_t run_bytes() const { return five ? detail::kK5RunBytes : detail::kK4RunBytes; }
};

bool is_k45(TensorType t) { return t == TensorType::Q4_K || t == TensorType::Q5_K; }

// 8 bytes at a time: the nibbles of one sub-block sit in the low (even k) or high (odd k) half
// of each GGUF byte, elements e and e + 16 are 16 bytes apart.
constexpr uint64_t kLowNibbles = 0x0F0F0F0F0F0F0F0Full;

void pack_k45_row(const K45Layout& L, const uint8_t* src, int64_t n_super, int r, uint8_t* tile) {
  for (int64_t s = 0; s < n_super; ++s) {
    const uint8_t* sb = src + s * L.super_bytes;
    uint8_t* run = tile + s * L.run_bytes();
    std::memcpy(run + 16 * r, sb, 16);
    for (int k = 0; k < 8; ++k) {
      const uint8_t* chunk = sb + L.qs + 32 * (k / 2);
      uint8_t* dst = run + 64 + 64 * k + 16 * r;
      const unsigned shift = k % 2 ? 4 : 0;
      for (int e = 0; e < 16; e += 8) {
        const uint64_t lo = (detail::load_u64(chunk + e) >> shift) & kLowNibbles;
        const uint64_t hi = (detail::load_u64(chunk + e + 16) >> shift) & kLowNibbles;
        detail::store_u64(dst + e, lo | hi << 4);
      }
      if (L.five) {
        const uint8_t* qh = sb + 16;
        uint16_t bits[2] = {0, 0};
        for (int e = 0; e < 32; ++e)
          bits[e / 16] |= static_cast<uint16_t>(((qh[e] >> k) & 1) << (e % 16));
        std::memcpy(run + detail::kK5FifthBitsAt + 16 * k + 2 * r, &bits[0], 2);
        std::memcpy(run + detail::kK5FifthBitsAt + 16 * k + 8 + 2 * r, &bits[1], 2);
      }
    }
  }
}

void unpack_k45_row(const K45Layout& L, const uint8_t* tile, int64_t n_super, int r, uint8_t* dst) {
  for (int64_t s = 0; s < n_super; ++s) {
    const uint8_t* run = tile + s * L.run_bytes();
    uint8_t* sb = dst + s * L.super_bytes;
    std::memcpy(sb, run + 16 * r, 16);
    for (int c = 0; c < 4; ++c) {  // chunk c: sub-block 2c low, 2c + 1 high
      const uint8_t* even = run + 64 + 64 * (2 * c) + 16 * r;
      const uint8_t* odd = even + 64;
      uint8_t* chunk = sb + L.qs + 32 * c;
      for (int e = 0; e < 16; e += 8) {
        const uint64_t a = detail::load_u64(even + e), b = detail::load_u64(odd + e);
        detail::store_u64(chunk + e, (a & kLowNibbles) | (b & kLowNibbles) << 4);
        detail::store_u64(chunk + e + 16, (a >> 4 & kLowNibbles) | (b & ~kLowNibbles));
      }
    }
    if (L.five) {
      uint8_t* qh = sb + 16;
      std::memset(qh, 0, 32);
      for (int k = 0; k < 8; ++k) {
        uint16_t bits[2];
        std::memcpy(&bits[0], run + detail::kK5FifthBitsAt + 16 * k + 2 * r, 2);
        std::memcpy(&bits[1], run + detail::kK5FifthBitsAt + 16 * k + 8 + 2 * r, 2);
        for (int e = 0; e < 32; ++e)
          qh[e] = static_cast<uint8_t>(qh[e] | ((bits[e / 16] >> (e % 16)) & 1) << k);
      }
    }
  }
}

void pack_block_row(const PackedGeometry& geo, const uint8_t* src, int64_t nb, int r,
                    uint8_t* tile) {
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t g = b / geo.G, i = b % geo.G;
    const uint8_t* blk = src + b * geo.block_bytes;
    std::memcpy(tile + geo.quant_at(g, r, i), blk + geo.header, geo.quant);
    for (uint64_t f = 0; f < geo.header / 2; ++f)
      std::memcpy(tile + geo.field_at(g, f, r, i), blk + 2 * f, 2);
  }
}

// kLayoutRows16 (repack.h): where row r's quant dword k and header field f of block b sit in its
// strip. Blocks come in pairs so that every pair starts 64-byte aligned.
struct Rows16Geometry {
  uint64_t block_bytes, header, quant;
  explicit Rows16Geometry(TensorType t)
      : block_bytes(type_traits(t)->block_bytes),
        header(static_cast<uint64_t>(detail::packed_header_bytes(t))),
        quant(block_bytes - header) {}
  uint64_t pair_at(int64_t b) const {
    return static_cast<uint64_t>(b / 2) * 2 * detail::kRows16 * block_bytes;
  }
  uint64_t quant_at(int64_t b, int64_t k, int r) const {
    return pair_at(b) + static_cast<uint64_t>(b % 2) * detail::kRows16 * quant + 64 * k + 4 * r;
  }
  uint64_t field_at(int64_t b, uint64_t f, int r) const {
    return pair_at(b) + 2 * detail::kRows16 * quant + (2 * f + static_cast<uint64_t>(b % 2)) * 32 +
           2 * r;
  }
};

// Q6_K in kLayoutRows16 (repack.h), one row's super-blocks, a dword (4 elements) at a time.
// GGUF keeps element 128h + 32c + l (h < 2, c < 4, l < 32) as the low nibble of
// ql[64h + 32(c % 2) + l] (the high nibble for c ≥ 2) and 2 high bits at bits 2c of qh[32h + l].
constexpr uint32_t kNibbles32 = 0x0F0F0F0Fu, kPairs32 = 0x03030303u;

// Low nibbles of elements e … e+3 (e a multiple of 4), one per byte.
uint32_t q6_k_low4(const uint8_t* sb, int e) {
  const int h = e / 128, c = e % 128 / 32, l = e % 32;
  const uint32_t w = detail::load_u32(sb + 64 * h + 32 * (c % 2) + l);
  return (c >= 2 ? w >> 4 : w) & kNibbles32;
}

// High bit pairs of elements e … e+3, one per byte.
uint32_t q6_k_high2(const uint8_t* sb, int e) {
  const int h = e / 128, c = e % 128 / 32, l = e % 32;
  return (detail::load_u32(sb + 128 + 32 * h + l) >> (2 * c)) & kPairs32;
}

void pack_q6_k_row(const uint8_t* src, int64_t n_super, int r, uint8_t* strip) {
  for (int64_t s = 0; s < n_super; ++s) {
    const uint8_t* sb = src + 210 * s;
    uint8_t* q = strip + detail::rows16_q6_k_quants_at(s) + 4 * r;
    uint8_t* meta = strip + detail::rows16_q6_k_scales_at(s);
    for (int j = 0; j < 32; ++j) {  // elements 4j… low, 128 + 4j… high
      const uint32_t v = q6_k_low4(sb, 4 * j) | q6_k_low4(sb, 128 + 4 * j) << 4;
      detail::store_u32(q + detail::rows16_q6_k_low_at(j), v);
    }
    for (int j = 0; j < 16; ++j) {  // elements 64g + 4j… at bits 2g
      uint32_t v = 0;
      for (int g = 0; g < 4; ++g) v |= q6_k_high2(sb, 64 * g + 4 * j) << (2 * g);
      detail::store_u32(q + detail::rows16_q6_k_high_at(j), v);
    }
    for (int t = 0; t < 16; ++t) meta[16 * t + r] = sb[192 + t];
    std::memcpy(meta + 256 + 2 * r, sb + 208, 2);
  }
}

void unpack_q6_k_row(const uint8_t* strip, int64_t n_super, int r, uint8_t* dst) {
  for (int64_t s = 0; s < n_super; ++s) {
    uint8_t* sb = dst + 210 * s;
    const uint8_t* q = strip + detail::rows16_q6_k_quants_at(s) + 4 * r;
    const uint8_t* meta = strip + detail::rows16_q6_k_scales_at(s);
    // Elements e … e+3 back from the strip: low nibble and high pair.
    const auto low4 = [&](int e) {
      const uint32_t w = detail::load_u32(q + detail::rows16_q6_k_low_at(e % 128 / 4));
      return (e >= 128 ? w >> 4 : w) & kNibbles32;
    };
    const auto high2 = [&](int e) {
      return (detail::load_u32(q + detail::rows16_q6_k_high_at(e % 64 / 4)) >> (2 * (e / 64))) &
             kPairs32;
    };
    for (int h = 0; h < 2; ++h) {
      for (int l = 0; l < 32; l += 4) {
        for (int p = 0; p < 2; ++p) {  // ql[64h + 32p + l]: elements 128h + 32p + l and + 64
          const int e = 128 * h + 32 * p + l;
          detail::store_u32(sb + 64 * h + 32 * p + l, low4(e) | low4(e + 64) << 4);
        }
        uint32_t v = 0;
        for (int c = 0; c < 4; ++c) v |= high2(128 * h + 32 * c + l) << (2 * c);
        detail::store_u32(sb + 128 + 32 * h + l, v);
      }
    }
    for (int t = 0; t < 16; ++t) sb[192 + t] = meta[16 * t + r];
    std::memcpy(sb + 208, meta + 256 + 2 * r, 2);
  }
}

// Q4_K and Q5_K in kLayoutRows16 (repack.h). GGUF's 12 scale bytes q hold sc_j = q[j] & 63 and
// m_j = q[j + 4] & 63 for j < 4; for j = 4 + i, sc_j = (q[8 + i] & 15) | (q[i] >> 6) << 4 and
// m_j = (q[8 + i] >> 4) | (q[4 + i] >> 6) << 4. The strip keeps, per row, 4 bytes sc_k | m_k << 4
// (low nibbles) for k < 4 and k ≥ 4, and 4 bytes of high bit pairs: byte i = sc_i | sc_{4+i} << 2 |
// m_i << 4 | m_{4+i} << 6 (their bits 4-5). Sub-block k's quants are a Q4_0 block's 16 bytes:
// element e in the low nibble of byte e (e < 16) or the high nibble of byte e − 16.
// Q5_K: the same with qh (32 bytes: bit k of qh[e] is element e's fifth bit in sub-block k)
// before the quants, and sub-block k's fifth bits after its quant vectors as 8 64-bit masks: mask
// 2i (2i + 1) has bit 4r + j set where row r's element 4i + j (16 + 4i + j) has it.
void pack_k45_rows16_row(bool five, const uint8_t* src, int64_t n_super, int r, uint8_t* strip) {
  const int64_t super_bytes = five ? 176 : 144, qs = five ? 48 : 16;
  for (int64_t s = 0; s < n_super; ++s) {
    const uint8_t* sb = src + super_bytes * s;
    uint8_t* meta = strip + s * detail::rows16_k45_super_bytes(five);
    const uint8_t* q = sb + 4;
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 4; ++j) {
      sc[j] = q[j] & 63;
      mn[j] = q[j + 4] & 63;
      sc[4 + j] = static_cast<uint8_t>((q[8 + j] & 15) | (q[j] >> 6) << 4);
      mn[4 + j] = static_cast<uint8_t>((q[8 + j] >> 4) | (q[4 + j] >> 6) << 4);
    }
    for (int k = 0; k < 8; ++k)
      meta[64 * (k / 4) + 4 * r + k % 4] = static_cast<uint8_t>((sc[k] & 15) | (mn[k] & 15) << 4);
    for (int i = 0; i < 4; ++i) {
      meta[128 + 4 * r + i] = static_cast<uint8_t>(sc[i] >> 4 | (sc[4 + i] >> 4) << 2 |
                                                   (mn[i] >> 4) << 4 | (mn[4 + i] >> 4) << 6);
    }
    std::memcpy(meta + 192 + 2 * r, sb, 2);      // d
    std::memcpy(meta + 224 + 2 * r, sb + 2, 2);  // dmin
    for (int k = 0; k < 8; ++k) {  // sub-block k: nibble k % 2 of chunk k / 2
      const uint8_t* chunk = sb + qs + 32 * (k / 2);
      uint8_t* sub = meta + detail::rows16_k45_sub_at(five, k);
      const unsigned shift = k % 2 ? 4 : 0;
      for (int i = 0; i < 4; ++i) {
        const uint32_t lo = (detail::load_u32(chunk + 4 * i) >> shift) & kNibbles32;
        const uint32_t hi = (detail::load_u32(chunk + 16 + 4 * i) >> shift) & kNibbles32;
        detail::store_u32(sub + 64 * i + 4 * r, lo | hi << 4);
      }
      if (!five) continue;
      uint8_t* masks = sub + 256;
      if (r == 0) std::memset(masks, 0, 64);  // rows are packed in order
      for (int e = 0; e < 32; ++e) {
        const int i = e % 16 / 4, half = e / 16, bit = 4 * r + e % 4;
        if ((sb[16 + e] >> k) & 1)
          masks[8 * (2 * i + half) + bit / 8] |= static_cast<uint8_t>(1 << (bit % 8));
      }
    }
  }
}

void unpack_k45_rows16_row(bool five, const uint8_t* strip, int64_t n_super, int r, uint8_t* dst) {
  const int64_t super_bytes = five ? 176 : 144, qs = five ? 48 : 16;
  for (int64_t s = 0; s < n_super; ++s) {
    uint8_t* sb = dst + super_bytes * s;
    const uint8_t* meta = strip + s * detail::rows16_k45_super_bytes(five);
    uint8_t sc[8], mn[8];
    for (int k = 0; k < 8; ++k) {
      const uint8_t low = meta[64 * (k / 4) + 4 * r + k % 4];
      const uint8_t pairs = meta[128 + 4 * r + k % 4];
      const int at = k < 4 ? 0 : 2;  // bit pair of sc_k; m_k's is 4 above
      sc[k] = static_cast<uint8_t>((low & 15) | ((pairs >> at) & 3) << 4);
      mn[k] = static_cast<uint8_t>((low >> 4) | ((pairs >> (at + 4)) & 3) << 4);
    }
    std::memcpy(sb, meta + 192 + 2 * r, 2);
    std::memcpy(sb + 2, meta + 224 + 2 * r, 2);
    uint8_t* q = sb + 4;
    for (int j = 0; j < 4; ++j) {
      q[j] = static_cast<uint8_t>(sc[j] | (sc[4 + j] >> 4) << 6);
      q[4 + j] = static_cast<uint8_t>(mn[j] | (mn[4 + j] >> 4) << 6);
      q[8 + j] = static_cast<uint8_t>((sc[4 + j] & 15) | (mn[4 + j] & 15) << 4);
    }
    for (int c = 0; c < 4; ++c) {  // chunk c: sub-block 2c low nibbles, 2c + 1 high
      uint8_t* chunk = sb + qs + 32 * c;
      const uint8_t* even = meta + detail::rows16_k45_sub_at(five, 2 * c) + 4 * r;
      const uint8_t* odd = meta + detail::rows16_k45_sub_at(five, 2 * c + 1) + 4 * r;
      for (int i = 0; i < 4; ++i) {
        const uint32_t a = detail::load_u32(even + 64 * i), b = detail::load_u32(odd + 64 * i);
        detail::store_u32(chunk + 4 * i, (a & kNibbles32) | (b & kNibbles32) << 4);
        detail::store_u32(chunk + 16 + 4 * i, (a >> 4 & kNibbles32) | (b & ~kNibbles32));
      }
    }
    if (!five) continue;
    uint8_t* qh = sb + 16;
    std::memset(qh, 0, 32);
    for (int k = 0; k < 8; ++k) {
      const uint8_t* masks = meta + detail::rows16_k45_sub_at(true, k) + 256;
      for (int e = 0; e < 32; ++e) {
        const int i = e % 16 / 4, half = e / 16, bit = 4 * r + e % 4;
        const int set = (masks[8 * (2 * i + half) + bit / 8] >> (bit % 8)) & 1;
        qh[e] = static_cast<uint8_t>(qh[e] | set << k);
      }
    }
  }
}

// Row r of a strip from its GGUF blocks.
void pack_rows16_row(TensorType t, const uint8_t* src, int64_t K, int r, uint8_t* strip) {
  if (t == TensorType::Q6_K) return pack_q6_k_row(src, K / 256, r, strip);
  if (t == TensorType::Q4_K || t == TensorType::Q5_K)
    return pack_k45_rows16_row(t == TensorType::Q5_K, src, K / 256, r, strip);
  const Rows16Geometry geo(t);
  for (int64_t b = 0; b < K / 32; ++b) {
    const uint8_t* blk = src + b * geo.block_bytes;
    for (uint64_t k = 0; k < geo.quant / 4; ++k)
      std::memcpy(strip + geo.quant_at(b, static_cast<int64_t>(k), r), blk + geo.header + 4 * k, 4);
    for (uint64_t f = 0; f < geo.header / 2; ++f)
      std::memcpy(strip + geo.field_at(b, f, r), blk + 2 * f, 2);
  }
}

PackedWeight pack_rows16(const WeightMatrix& W) {
  PackedWeight out;
  out.view = W;
  const uint64_t gguf_row = row_bytes(static_cast<uint32_t>(W.type), static_cast<uint64_t>(W.cols));
  const uint64_t strip_bytes = detail::rows16_strip_bytes(gguf_row);
  const int64_t n_strips = (W.rows + detail::kRows16 - 1) / detail::kRows16;
  out.storage_bytes = strip_bytes * static_cast<uint64_t>(n_strips);
  out.storage = allocate_weight_storage(out.storage_bytes);
  // Strips are independent: packing them on every core (and faulting in their fresh pages, half
  // the time) took a 1.1B-shaped Q6_K file's load from 0.83–1.48 s to 0.56–1.08 s on two
  // (bench-load, Zen 4).
#pragma omp parallel
  {
    // A kLayoutPacked4 source (a nibble file's) is read back one GGUF row at a time.
    std::vector<uint8_t> unpacked(W.layout == kLayoutGguf ? 0 : gguf_row);
#pragma omp for schedule(static)
    for (int64_t s = 0; s < n_strips; ++s) {
      uint8_t* strip = out.storage.get() + s * strip_bytes;
      std::memset(strip + detail::kRows16 * gguf_row, 0, strip_bytes - detail::kRows16 * gguf_row);
      for (int r = 0; r < detail::kRows16; ++r) {
        // N tail: the last row repeats (its outputs are never stored).
        const int64_t row = std::min<int64_t>(detail::kRows16 * s + r, W.rows - 1);
        const uint8_t* src = W.data + static_cast<uint64_t>(row) * W.row_bytes;
        if (!unpacked.empty()) {
          detail::unpack_rows(W, row, 1, unpacked.data(), gguf_row);
          src = unpacked.data();
        }
        pack_rows16_row(W.type, src, W.cols, r, strip);
      }
    }
  }
  out.view.data = out.storage.get();
  out.view.row_bytes = gguf_row;
  out.view.layout = kLayoutRows16;
  return out;
}

void unpack_rows16_row(TensorType t, const uint8_t* strip, int64_t K, int r, uint8_t* dst) {
  if (t == TensorType::Q6_K) return unpack_q6_k_row(strip, K / 256, r, dst);
  if (t == TensorType::Q4_K || t == TensorType::Q5_K)
    return unpack_k45_rows16_row(t == TensorType::Q5_K, strip, K / 256, r, dst);
  const Rows16Geometry geo(t);
  for (int64_t b = 0; b < K / 32; ++b) {
    uint8_t* blk = dst + b * geo.block_bytes;
    for (uint64_t k = 0; k < geo.quant / 4; ++k)
      std::memcpy(blk + geo.header + 4 * k, strip + geo.quant_at(b, static_cast<int64_t>(k), r), 4);
    for (uint64_t f = 0; f < geo.header / 2; ++f)
      std::memcpy(blk + 2 * f, strip + geo.field_at(b, f, r), 2);
  }
}

}  // namespace

PackedWeight repack_for_matmul(const WeightMatrix& W) {
  if (rows16_chosen(W)) return pack_rows16(W);
  if (!has_packed_layout(W)) {
    PackedWeight out;
    out.view = W;
    return out;
  }
  return repack_packed4(W);
}

PackedWeight repack_packed4(const WeightMatrix& W) {
  PackedWeight out;
  out.view = W;
  if (!packed_layout_fits(W)) return out;
  const int64_t nb = W.cols / 32;
  const uint64_t gguf_row = row_bytes(static_cast<uint32_t>(W.type), static_cast<uint64_t>(W.cols));
  const uint64_t tile_bytes = detail::packed_tile_bytes(gguf_row);
  const int64_t n_tiles = (W.rows + 3) / 4;
  out.storage_bytes = tile_bytes * static_cast<uint64_t>(n_tiles);
  out.storage = allocate_weight_storage(out.storage_bytes);
  uint8_t* buf = out.storage.get();
  for (int64_t t = 0; t < n_tiles; ++t) {
    uint8_t* tile = buf + t * tile_bytes;
    std::memset(tile + 4 * gguf_row, 0, tile_bytes - 4 * gguf_row);  // alignment padding
    for (int r = 0; r < 4; ++r) {
      const int64_t row = std::min<int64_t>(4 * t + r, W.rows - 1);  // N tail: repeat the last row
      const uint8_t* src = W.data + static_cast<uint64_t>(row) * W.row_bytes;
      if (is_k45(W.type)) {
        pack_k45_row(K45Layout(W.type), src, nb / 8, r, tile);
      } else {
        pack_block_row(PackedGeometry(W.type, W.cols), src, nb, r, tile);
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
  if (is_k45(type)) {
    for (int i = 0; i < nr; ++i)
      unpack_k45_row(K45Layout(type), tile, K / 256, r0 + i, out + i * out_row_bytes);
    return;
  }
  const PackedGeometry geo(type, K);
  const int64_t nb = K / 32;
  for (int i = 0; i < nr; ++i) {
    const int r = r0 + i;
    uint8_t* dst = out + i * out_row_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t g = b / geo.G, j = b % geo.G;
      uint8_t* blk = dst + b * geo.block_bytes;
      for (uint64_t f = 0; f < geo.header / 2; ++f)
        std::memcpy(blk + 2 * f, tile + geo.field_at(g, f, r, j), 2);
      std::memcpy(blk + geo.header, tile + geo.quant_at(g, r, j), geo.quant);
    }
  }
}

void unpack_rows(const WeightMatrix& W, int64_t n, int64_t nr, uint8_t* out,
                 uint64_t out_row_bytes) {
  const uint64_t gguf_row = row_bytes(static_cast<uint32_t>(W.type), static_cast<uint64_t>(W.cols));
  for (int64_t i = 0; i < nr; ++i) {
    const int64_t row = n + i;
    uint8_t* dst = out + static_cast<uint64_t>(i) * out_row_bytes;
    if (W.layout == kLayoutRows16) {
      unpack_rows16_row(W.type, W.data + (row / kRows16) * rows16_strip_bytes(gguf_row), W.cols,
                        static_cast<int>(row % kRows16), dst);
    } else if (W.layout == kLayoutPacked4) {
      unpack_packed_tile(W.type, W.data + (row / 4) * packed_tile_bytes(gguf_row), W.cols,
                         static_cast<int>(row % 4), 1, dst, out_row_bytes);
    } else {
      std::memcpy(dst, W.data + static_cast<uint64_t>(row) * W.row_bytes, gguf_row);
    }
  }
}

UnpackedWeight unpack_weight(const WeightMatrix& W) {
  UnpackedWeight u;
  const uint64_t rb = row_bytes(static_cast<uint32_t>(W.type), static_cast<uint64_t>(W.cols));
  u.bytes.resize(rb * static_cast<uint64_t>(W.rows));
  unpack_rows(W, 0, W.rows, u.bytes.data(), rb);
  u.view = W;
  u.view.data = u.bytes.data();
  u.view.row_bytes = rb;
  u.view.layout = kLayoutGguf;
  return u;
}

}  // namespace detail
}  // namespace nibble
