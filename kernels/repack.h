// Weight repacking at load time into the kernels' own layouts (kLayoutPacked4, kLayoutRows16).
//
// GGUF Q4_0 blocks are 18 bytes (fp16 scale + 16 nibble bytes), Q8_0 blocks 34 (fp16 + 32),
// IQ4_NL 18 like Q4_0, Q4_1 20 (fp16 scale and min + 16).
// None of these sizes is a multiple of 16, so the AVX-512 kernels used to assemble each 64-byte
// operand from four unaligned 16-byte pieces (Q4_0) or two 32-byte ones (Q8_0) and gather every
// fp16 scale with a separate 2-byte load; those instructions, not the dot products, dominated
// decode. kLayoutPacked4 stores exactly the same bits rearranged so that a kernel reads one aligned
// 64-byte vector per row per group of blocks and one vector of scales per 4 rows:
//
//   rows are grouped in tiles of 4 (the kernels' tile height; the last tile repeats the last row
//   when N is not a multiple of 4); tile t starts at data + t·packed_tile_bytes, 64-byte aligned.
//   G = 4 blocks (Q4_0, Q4_1, IQ4_NL) or 2 blocks (Q8_0), so G blocks' quant bytes are exactly
//   64 bytes. A block's header is F fp16 fields: F = 1 (the scale d), 2 for Q4_1 (d, then the
//   min m). Inside a tile, with nb = K/32 blocks per row (a multiple of G):
//     quants  at (g·4 + r)·64                          : quant bytes of blocks gG … gG+G−1 of
//                                                         row r, in order
//     field f at nb·4·(64/G) + ((g·F + f)·4 + r)·2G    : field f (fp16) of the same G blocks
//   for group g < nb/G and row r < 4. One group's field f for all 4 rows is contiguous (4G fp16:
//   32 bytes for the 4-bit types, 16 for Q8_0) and loads as one vector; Q4_1's 4 rows' mins
//   follow their scales.
//
// Q4_K and Q5_K (K a multiple of 256) have a layout of their own, in the same 4-row tiles of
// exactly the 4 GGUF rows' bytes: Q4_K's super-block s of the tile (144 bytes per row) is the 576
// bytes at s·576,
//     header        at 16·r            : row r's 16-byte super-block header as in GGUF (d,
//                                         dmin, the 12 bytes of 6-bit scales and mins)
//     sub-block k   at 64 + 64·k + 16·r : row r's 32 elements of sub-block k (k < 8) as 16 bytes,
//                                         element e in the low nibble of byte e (e < 16) or the
//                                         high nibble of byte e − 16 (Q4_0's order)
// so that one aligned 64-byte load holds a sub-block of all 4 rows with dword 4r + j carrying
// row r's elements 4j..4j+3 and 16+4j..16+4j+3: PackedTileQ45_K (dot-inl.h) multiplies it with
// 16 activations broadcast to every row's lanes, one vpdpbusd per nibble half, and applies the
// row's sub-block scale to its own lanes with one vpdpwssd. Q5_K (176 bytes per super-block and
// row) has the same 576 bytes followed by 128 bytes of fifth bits,
//     fifth bits    at 576 + 16·k + 2·r      : 16 bits, bit e for element e of sub-block k
//                   at 576 + 16·k + 8 + 2·r  : 16 bits, bit e for element 16 + e
// so that the 8 bytes at 576 + 16·k (and + 8) are a 64-bit mask over the sub-block vector's
// bytes, low (high) nibble half.
//
// kLayoutRows16 (Q4_0 and Q4_1 with K/32 even and Q6_K on AVX-512 targets, IQ4_NL, Q8_0, Q4_K
// and Q5_K on AVX-512 VNNI, which then prefer it to kLayoutPacked4 or the file layout; in memory
// only, never in a file) interleaves 16 rows per block so that one vector lane is one ROW: the
// decode GEMV then broadcasts activations to all lanes and sums a whole block per lane, where the
// 4-row tiles reduce quarter-block lanes per row (dot-inl.h, Rows16Tile). Q4_0 and IQ4_NL have
// 18-byte blocks (fp16 d + 16 nibble bytes), Q4_1 20-byte ones (fp16 d, fp16 m + 16 nibble bytes).
// Strip s holds rows 16s … 16s+15 (the last strip repeats the last row past N) in 16 · row bytes,
// block pairs of 2 · 16 · 18 = 576 bytes (Q4_1: 640; 64-byte aligned) in order; in pair p, for i =
// 0, 1 (block 2p + i) and row r < 16:
//     quant dword k (k < 4)  at 256·i + 64·k + 4·r  : the GGUF block's bytes 4k … 4k+3 of its 16
//                                                    quant bytes (elements 4k… low, 16+4k… high)
//     fp16 scale d           at 512 + 32·i + 2·r
//     fp16 min m (Q4_1)      at 576 + 32·i + 2·r
// so that 4 aligned loads give the block's 16 rows with dword k of row r in lane r, and one
// 32-byte load their 16 scales (mins). Q8_0 (34-byte blocks: fp16 d + 32 int8) has the same pairs
// with 8 quant dwords per block: 2 · 16 · 34 = 1088 bytes, block i's quant dword k (k < 8) at
// 512·i + 64·k + 4·r and its d at 1024 + 32·i + 2·r. Same bytes as the GGUF rows (lossless,
// unpack_rows inverts it).
// Q6_K (K a multiple of 256, on AVX-512) has strips of the same kind, one 3360-byte run per
// super-block s of the 16 rows (the strip padded to a multiple of 64): 3072 bytes of quants and
// 288 of scales, the quants first for even s and the scales first for odd s, so that every quant
// vector is 64-byte aligned. For row r (lane r) and j < 16, 4 consecutive elements per dword:
//     low-nibble vector j       at 768·(j/4) + 64·(j%4)        + 4r : elements 4j… (low nibbles)
//                                                                   and 128 + 4j… (high nibbles)
//     low-nibble vector 16 + j  at 768·(j/4) + 256 + 64·(j%4)  + 4r : elements 64 + 4j… and
//                                                                   192 + 4j…
//     high-bit vector j         at 768·(j/4) + 512 + 64·(j%4)  + 4r : the 2 high bits of elements
//                                                                   64g + 4j… at bits 2g (g < 4)
//     scale of sub-block t      at 16·t + r (int8), then d at 256 + 2r (fp16), in the scales
// so that the GEMV reads each 768-byte run front to back (Rows16TileQ6_K) and one 16-byte load
// gives a sub-block's 16 row scales.
// Q4_K (K a multiple of 256, on AVX-512 VNNI, where it replaces the 4-row packed tile) has one
// 2304-byte run per super-block s of the 16 rows: 256 bytes of scales, then the quants:
//     at 4r + b (b < 4)        : sc_b & 15 | (m_b & 15) << 4 (the 6-bit scale and min of
//                                sub-block b, low nibbles)
//     at 64 + 4r + b           : the same for sub-block 4 + b
//     at 128 + 4r + b          : bits 4-5 of sc_b, sc_4+b, m_b, m_4+b at bits 0, 2, 4, 6
//     at 192 + 2r, 224 + 2r    : d and dmin (fp16)
//     at 256 + 256k + 64i + 4r : dword i of sub-block k as Q4_0's block (elements 4i… low
//                                nibbles, 16 + 4i… high)
// (Rows16TileQ45_K). Q5_K (also AVX-512 VNNI) has the same 256 bytes of scales, then per
// sub-block k at 256 + 320k its 4 quant vectors as Q4_K's and 64 bytes of fifth bits as 8 64-bit
// masks over those vectors' bytes: at 256 + 16i (+ 8) the mask of vector i's low (high) nibbles,
// bit 4r + j for row r's element 4i + j (16 + 4i + j); 2816 bytes per super-block.
//
// A type is packed at load only where the running target has a native packed tile for it
// (detail::packed_layout_pays: AVX-512 and AArch64 for Q4_0 and Q8_0, AVX-512 for Q4_1,
// AVX-512 VNNI for IQ4_NL, Q4_K and Q5_K; kLayoutRows16 where detail::rows16_layout_pays says
// so); nibble's own files store Q4_0 and Q8_0 packed
// (docs/format.md), which other targets then unpack per tile.
//
// The mapping is lossless (same nibbles / int8s, same fp16 scales), and the AVX-512 kernels do
// the same arithmetic in the same order as on GGUF blocks, so results are bit-identical to the
// plain layout — except the Q4_K / Q5_K tile, which sums each row's 4 lanes in float in another
// order (equal within float rounding; bit for bit wherever the sums are exact). Targets without a
// native packed kernel (AVX2, portable) unpack one tile to GGUF blocks in scratch and run their
// usual kernel, which is bit-identical.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "kernels/matmul.h"

namespace nibble {

struct AlignedFree {
  void operator()(uint8_t* p) const { std::free(p); }
};

using WeightStorage = std::unique_ptr<uint8_t, AlignedFree>;

// Uninitialised storage for `bytes` of weights: 64-byte aligned, and for large sizes 2 MiB
// aligned and advised for transparent huge pages.
WeightStorage allocate_weight_storage(uint64_t bytes);

// A repacked weight: `view` points into `storage` (or at the input's bytes when the type has no
// packed layout, in which case storage is empty and view == input).
struct PackedWeight {
  WeightMatrix view;
  WeightStorage storage;
  uint64_t storage_bytes = 0;
};

// True when W (layout kLayoutGguf) has a kLayoutPacked4 form that the kernels of every target
// run: Q4_0, Q4_1, IQ4_NL with K/32 a multiple of 4, Q8_0 with K/32 even, Q4_K and Q5_K.
bool packed_layout_fits(const WeightMatrix& W);

// True when repack_for_matmul would pack W: it fits and the running target has a native packed
// tile for its type (detail::packed_layout_pays, detail::rows16_layout_pays). A kLayoutPacked4 W
// (a nibble file's) is repacked only where the target reads kLayoutRows16 instead.
bool has_packed_layout(const WeightMatrix& W);

// Packs W into the layout the running target reads fastest (kLayoutRows16 or kLayoutPacked4), or
// returns it unchanged (no storage) when it has none.
PackedWeight repack_for_matmul(const WeightMatrix& W);

// Packs W into kLayoutPacked4 wherever that fits (packed_layout_fits), whatever the running target
// prefers: the layout nibble files store (docs/format.md). Unchanged (no storage) otherwise.
PackedWeight repack_packed4(const WeightMatrix& W);

}  // namespace nibble
