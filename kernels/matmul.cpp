// Matmul driver: validates, quantises X once, hands chunks of output rows to OpenMP threads and
// calls the per-type kernel of the dispatched Highway target (dot-inl.h).
#include "kernels/matmul.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/matmul_internal.h"
#include "kernels/matmul_neon.h"
#include "kernels/onednn_matmul.h"
#include "kernels/prompt_matmul.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dot-inl.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/dot-inl.h"

#if HWY_ONCE
namespace nibble {

HWY_EXPORT(QuantizeBlocks);
HWY_EXPORT(QuantizePanelTile);
HWY_EXPORT(HasPanelGemm);
HWY_EXPORT(MatmulRowsF32);
HWY_EXPORT(MatmulRowsF16);
HWY_EXPORT(MatmulRowsBF16);
HWY_EXPORT(MatmulRowsQ8_0);
HWY_EXPORT(MatmulRowsQ4_0);
HWY_EXPORT(MatmulRowsQ4_0Packed);
HWY_EXPORT(MatmulRowsQ8_0Packed);
HWY_EXPORT(MatmulRowsQ4_1Packed);
HWY_EXPORT(MatmulRowsIQ4_NLPacked);
HWY_EXPORT(MatmulRowsQ6_KPacked);
HWY_EXPORT(MatmulRowsQ4_KPacked);
HWY_EXPORT(MatmulRowsQ5_KPacked);
HWY_EXPORT(HasNativePackedTile);
HWY_EXPORT(HasNativeRows16Tile);
HWY_EXPORT(MatmulRowsQ6_K);
HWY_EXPORT(MatmulRowsQ4_1);
HWY_EXPORT(MatmulRowsQ5_0);
HWY_EXPORT(MatmulRowsQ5_1);
HWY_EXPORT(MatmulRowsIQ4_NL);
HWY_EXPORT(MatmulRowsIQ4_XS);
HWY_EXPORT(MatmulRowsQ2_K);
HWY_EXPORT(MatmulRowsQ3_K);
HWY_EXPORT(MatmulRowsQ4_K);
HWY_EXPORT(MatmulRowsQ5_K);
HWY_EXPORT(MatmulRowsQ4_G64);
HWY_EXPORT(MatmulRowsQ4_G128);
HWY_EXPORT(MatmulRowsQ8_C);

namespace detail {
bool packed_layout_pays(TensorType t) {
  return packed_group_blocks(t) != 0 && HWY_DYNAMIC_DISPATCH(HasNativePackedTile)(t);
}
bool rows16_layout_pays(TensorType t) { return HWY_DYNAMIC_DISPATCH(HasNativeRows16Tile)(t); }
}  // namespace detail
namespace {

using detail::MatmulArgs;
using RowsFn = void (*)(const MatmulArgs&, int64_t, int64_t);

// HWY_DYNAMIC_DISPATCH resolves the target at each call, so the table holds thin forwarders
// (set_isa / NIBBLE_ISA changes take effect immediately).
void rows_f32(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsF32)(a, n0, n1); }
void rows_f16(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsF16)(a, n0, n1); }
void rows_bf16(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsBF16)(a, n0, n1); }
void rows_q8_0(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsQ8_0)(a, n0, n1); }
void rows_q4_0(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsQ4_0)(a, n0, n1); }
void rows_q4_0_packed(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsQ4_0Packed)(a, n0, n1); }
void rows_q8_0_packed(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsQ8_0Packed)(a, n0, n1); }
void rows_q4_1_packed(const MatmulArgs& a, int64_t n0, int64_t n1) {
  HWY_DYNAMIC_DISPATCH(MatmulRowsQ4_1Packed)(a, n0, n1);
}
void rows_iq4_nl_packed(const MatmulArgs& a, int64_t n0, int64_t n1) {
  HWY_DYNAMIC_DISPATCH(MatmulRowsIQ4_NLPacked)(a, n0, n1);
}
void rows_q6_k_packed(const MatmulArgs& a, int64_t n0, int64_t n1) {
  HWY_DYNAMIC_DISPATCH(MatmulRowsQ6_KPacked)(a, n0, n1);
}
void rows_q4_k_packed(const MatmulArgs& a, int64_t n0, int64_t n1) {
  HWY_DYNAMIC_DISPATCH(MatmulRowsQ4_KPacked)(a, n0, n1);
}
void rows_q5_k_packed(const MatmulArgs& a, int64_t n0, int64_t n1) {
  HWY_DYNAMIC_DISPATCH(MatmulRowsQ5_KPacked)(a, n0, n1);
}
void rows_q6_k(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsQ6_K)(a, n0, n1); }
void rows_q4_1(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsQ4_1)(a, n0, n1); }
void rows_q5_0(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsQ5_0)(a, n0, n1); }
void rows_q5_1(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsQ5_1)(a, n0, n1); }
void rows_iq4_nl(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsIQ4_NL)(a, n0, n1); }
void rows_iq4_xs(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsIQ4_XS)(a, n0, n1); }
void rows_q2_k(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsQ2_K)(a, n0, n1); }
void rows_q3_k(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsQ3_K)(a, n0, n1); }
void rows_q4_k(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsQ4_K)(a, n0, n1); }
void rows_q5_k(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsQ5_K)(a, n0, n1); }
void rows_q4_g64(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsQ4_G64)(a, n0, n1); }
void rows_q4_g128(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsQ4_G128)(a, n0, n1); }
void rows_q8_c(const MatmulArgs& a, int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(MatmulRowsQ8_C)(a, n0, n1); }

// The one per-type table: adding a weight format adds a row here.
struct MatmulKernel {
  TensorType type;
  bool int8_input;  // activations quantised to QuantizedInput first
  RowsFn rows;
  RowsFn packed_rows = nullptr;  // kLayoutPacked4 and kLayoutRows16 (kernels/repack.h), where
                                 // the type has them
};
constexpr MatmulKernel kKernels[] = {
    {TensorType::F32, false, rows_f32},
    {TensorType::F16, false, rows_f16},
    {TensorType::BF16, false, rows_bf16},
    {TensorType::Q8_0, true, rows_q8_0, rows_q8_0_packed},
    {TensorType::Q4_0, true, rows_q4_0, rows_q4_0_packed},
    {TensorType::Q6_K, true, rows_q6_k, rows_q6_k_packed},
    {TensorType::Q4_1, true, rows_q4_1, rows_q4_1_packed},
    {TensorType::Q5_0, true, rows_q5_0},
    {TensorType::Q5_1, true, rows_q5_1},
    {TensorType::IQ4_NL, true, rows_iq4_nl, rows_iq4_nl_packed},
    {TensorType::IQ4_XS, true, rows_iq4_xs},
    {TensorType::Q2_K, true, rows_q2_k},
    {TensorType::Q3_K, true, rows_q3_k},
    {TensorType::Q4_K, true, rows_q4_k, rows_q4_k_packed},
    {TensorType::Q5_K, true, rows_q5_k, rows_q5_k_packed},
    {TensorType::Q4_G64, true, rows_q4_g64},
    {TensorType::Q4_G128, true, rows_q4_g128},
    {TensorType::Q8_C, true, rows_q8_c},
};

const MatmulKernel* find_kernel(TensorType type) {
  for (const MatmulKernel& k : kKernels) {
    if (k.type == type) return &k;
  }
  return nullptr;
}

const MatmulKernel& checked_kernel(const WeightMatrix& W) {
  const MatmulKernel* kernel = find_kernel(W.type);
  if (kernel == nullptr) {
    throw std::invalid_argument("matmul: no kernel for " + type_name(static_cast<uint32_t>(W.type)));
  }
  const TypeTraits* traits = type_traits(W.type);
  if (W.cols <= 0 || W.cols % traits->block_elems != 0) {
    throw std::invalid_argument("matmul: K=" + std::to_string(W.cols) + " is not a positive multiple of the " +
                                traits->name + " block (" + std::to_string(traits->block_elems) + ")");
  }
  if (W.data == nullptr || W.rows < 0 || W.row_bytes < row_bytes(static_cast<uint32_t>(W.type), W.cols)) {
    throw std::invalid_argument("matmul: weight matrix has no data or rows shorter than K");
  }
  const bool packed4 = W.layout == kLayoutPacked4 && detail::packed_group_blocks(W.type) != 0 &&
                       W.cols % (32 * detail::packed_group_blocks(W.type)) == 0;
  const bool rows16 = W.layout == kLayoutRows16 && detail::rows16_layout_fits(W.type, W.cols);
  if (W.layout != kLayoutGguf &&
      ((!packed4 && !rows16) || kernel->packed_rows == nullptr ||
       W.row_bytes != row_bytes(static_cast<uint32_t>(W.type), W.cols))) {
    throw std::invalid_argument("matmul: unsupported weight layout " + std::to_string(W.layout) + " for " +
                                traits->name);
  }
  return *kernel;
}

// Output rows go to threads in chunks of whole 4-row tiles (the kernels' tile height; packed
// weights are stored in such tiles, or in strips of 16 rows), handed out dynamically: on a shared
// machine a thread that is preempted mid-matmul would otherwise hold up the join with its whole
// static half. Chunks are 16..64 rows, and at least ~8 per thread where N allows, so the tail
// imbalance is small while each chunk still streams a few KB of contiguous weights.
constexpr int64_t kTileRows = 4;
// Decode (M ≤ 2) shares rows differently (run_decode_pieces): each thread owns a contiguous range
// of pieces of this many rows and streams it front to back, its GEMV prefetch running on from one
// piece into the next; a thread whose range is done takes pieces from the back of another's. The
// pieces are small so that the threads end together.
constexpr int64_t kDecodePieceRows = 32;

// The panel GEMM (M ≥ kPanelMinM) works on 64 rows at a time: its chunks are whole multiples.
constexpr int64_t kPanelChunk = 64;

// Chunks are multiples of `tile` rows (the weight's tile height), which divides each constant here.
int64_t chunk_rows(int64_t N, int n_threads, int64_t M, int64_t tile) {
  static_assert(kPanelChunk % detail::kRows16 == 0 && kDecodePieceRows % detail::kRows16 == 0);
  if (M >= detail::kPanelMinM) {
    const int64_t c = std::clamp<int64_t>(N / (4 * static_cast<int64_t>(n_threads)), kPanelChunk, 2 * kPanelChunk);
    return (c + kPanelChunk - 1) / kPanelChunk * kPanelChunk;
  }
  if (M <= 2) return kDecodePieceRows;
  const int64_t c = std::clamp<int64_t>(N / (8 * static_cast<int64_t>(n_threads)), 16, 64);
  return (c + tile - 1) / tile * tile;
}

// One weight's share of a (possibly shared-input) matmul.
struct RowJob {
  RowsFn rows = nullptr;
  MatmulArgs args;
  int64_t N = 0;
  int64_t chunk = kTileRows;
  int64_t n_chunks = 0;
};

// Chunk c of the jobs (chunk indices run through the jobs in order): its job and rows.
struct ChunkRows {
  const RowJob* job;
  int64_t n0, n1;
};
ChunkRows chunk_at(const RowJob* jobs, int64_t c) {
  int j = 0;
  while (c >= jobs[j].n_chunks) c -= jobs[j++].n_chunks;
  return {&jobs[j], c * jobs[j].chunk, std::min(jobs[j].N, (c + 1) * jobs[j].chunk)};
}

// Runs every job's row chunks in ONE parallel region (one fork/join per matmul_shared_input call,
// not one per weight), dynamically.
void run_chunks(const RowJob* jobs, int64_t total, int n_threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
  for (int64_t c = 0; c < total; ++c) {
    const ChunkRows r = chunk_at(jobs, c);
    r.job->rows(r.job->args, r.n0, r.n1);
  }
}

// --- Decode ------------------------------------------------------------------------------------
// Why not chunks: with 2 dynamic chunks per thread every chunk's stream started cold, and the
// thread that finished first waited for the other's last chunk at the join (4.2 % of the 1.1B
// Q4_K_M decode samples in libgomp's barrier; 0.9 % with pieces, docs/design.md "Threads").

// Pieces [front, back) of a thread's range, front in the low 32 bits: the owner takes from the
// front, the others from the back, one compare-and-swap per piece. A cache line each.
struct alignas(64) OwnedPieces {
  std::atomic<uint64_t> range{0};
};
constexpr int kMaxDecodeThreads = 128;

bool take_piece(OwnedPieces& o, bool from_front, int64_t& piece) {
  uint64_t v = o.range.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t front = v & 0xFFFFFFFFu, back = v >> 32;
    if (front >= back) return false;
    const uint64_t taken = from_front ? (back << 32 | (front + 1)) : ((back - 1) << 32 | front);
    if (o.range.compare_exchange_weak(v, taken, std::memory_order_relaxed)) {
      piece = static_cast<int64_t>(from_front ? front : back - 1);
      return true;
    }
  }
}

// Thread t's range of the `total` pieces when n_threads share them.
int64_t first_piece(int64_t total, int t, int n_threads) { return total * t / n_threads; }

// Bytes of a decode thread's first rows that a waiting thread prefetches for it. Once no piece is
// left, a thread waits for the others at the join; prefetching the next matmul's first rows in that
// time starts it from L2 instead of a cold stream. Half of L2 on the smallest L2s nibble runs on
// (512 KB per core).
constexpr uint64_t kLookaheadBytes = 256 * 1024;
constexpr uint64_t kLookaheadStep = 4096;  // prefetched between checks of whether all are done

// The first kLookaheadBytes of each thread's first piece (DecodeLookahead), per thread.
void first_pieces(const RowJob* jobs, int64_t total, int n_threads,
                  std::vector<WeightPrefetch>& out) {
  out.assign(static_cast<size_t>(n_threads), WeightPrefetch{});
  for (int t = 0; t < n_threads; ++t) {
    const int64_t first = first_piece(total, t, n_threads);
    if (first >= first_piece(total, t + 1, n_threads)) continue;
    const ChunkRows r = chunk_at(jobs, first);
    const MatmulArgs& a = r.job->args;
    // Pieces are whole tiles of packed weights. The prefetch runs on past the piece, as the
    // owner's GEMV does.
    out[static_cast<size_t>(t)] = {a.w + a.row_offset(r.n0),
                                   std::min(a.rows_bytes(r.n0, r.job->N), kLookaheadBytes)};
  }
}

// Runs piece p; the owner (`ahead_to`: the end of its range) lets the GEMV's prefetch run on into
// its next piece when that continues the same weight.
void run_piece(const RowJob* jobs, int64_t p, int64_t ahead_to) {
  const ChunkRows r = chunk_at(jobs, p);
  MatmulArgs args = r.job->args;
  if (p + 1 < ahead_to && r.n1 < r.job->N)
    args.prefetch_end = std::min(r.job->N, r.n1 + args.tile_rows());
  r.job->rows(args, r.n0, r.n1);
}

// Decode's parallel region: every thread streams its own range, then takes pieces from the back of
// the others' until none is left, then prefetches its first rows of the matmul that followed this
// one last token (DecodeLookahead) until all are done.
void run_decode_pieces(const RowJob* jobs, int64_t total, int n_threads,
                       const std::vector<WeightPrefetch>* ahead) {
  OwnedPieces owned[kMaxDecodeThreads];
  for (int t = 0; t < n_threads; ++t) {
    const uint64_t front = static_cast<uint64_t>(first_piece(total, t, n_threads));
    const uint64_t back = static_cast<uint64_t>(first_piece(total, t + 1, n_threads));
    owned[t].range.store(back << 32 | front, std::memory_order_relaxed);
  }
  std::atomic<int> done{0};
#pragma omp parallel num_threads(n_threads)
  {
    // Fewer threads than asked (nested regions, thread limits): the missing ones' ranges are
    // taken from the back by the others.
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t p;
    while (take_piece(owned[t], true, p)) {
      run_piece(jobs, p,
                static_cast<int64_t>(owned[t].range.load(std::memory_order_relaxed) >> 32));
    }
    for (int k = 1; k < n_threads; ++k) {
      OwnedPieces& other = owned[(t + k) % n_threads];
      while (take_piece(other, false, p)) run_piece(jobs, p, 0);
    }
    done.fetch_add(1, std::memory_order_relaxed);
    if (ahead != nullptr && static_cast<size_t>(t) < ahead->size()) {
      const WeightPrefetch& w = (*ahead)[static_cast<size_t>(t)];
      for (uint64_t at = 0; at < w.size && done.load(std::memory_order_relaxed) < nt;
           at += kLookaheadStep) {
        for (uint64_t l = at; l < std::min(w.size, at + kLookaheadStep); l += 64)
          __builtin_prefetch(w.bytes + l, 0, 2);
      }
    }
  }
}

// Runs every job's row chunks in ONE parallel region: decode (M ≤ 2) as run_decode_pieces,
// everything else as run_chunks.
void run_jobs(const RowJob* jobs, int n_jobs, MatmulWorkspace& ws) {
  const int n_threads = ws.n_threads;
  int64_t total = 0;
  for (int j = 0; j < n_jobs; ++j) total += jobs[j].n_chunks;
  if (n_threads <= 1 || total < 2) {
    for (int j = 0; j < n_jobs; ++j) jobs[j].rows(jobs[j].args, 0, jobs[j].N);
    return;
  }
  if (jobs[0].args.M > 2 || n_threads > kMaxDecodeThreads)
    return run_chunks(jobs, total, n_threads);
  DecodeLookahead& la = ws.lookahead;
  if (la.previous != nullptr) first_pieces(jobs, total, n_threads, la.next[la.previous]);
  la.previous = jobs[0].args.w;
  const auto it = la.next.find(la.previous);
  run_decode_pieces(jobs, total, n_threads, it != la.next.end() ? &it->second : nullptr);
}

// Quantises X into the sized q (all M·K/32 blocks); with `panel` it also writes the block-major
// copy the panel GEMM reads.
void run_quantize_blocks(const float* X, QuantizedInput& q, int n_threads, bool panel) {
  if (panel) {
    detail::resize_panel_input(q);
    // Tiles of 16 rows × 32 blocks: the panel copy puts a block of consecutive rows side by
    // side, so a tile fills whole cache lines of it while they sit in L1 (walking one row at a
    // time stored each 32-byte block 32·M bytes from the last, a new page per store at M = 512),
    // and QuantizePanelTile works on 16 rows at once. 32 blocks start activation groups.
    constexpr int64_t kTileRows = 16, kTileBlocks = 32;
    const int64_t nb = q.K / 32;
    const int64_t row_tiles = (q.M + kTileRows - 1) / kTileRows;
    const int64_t block_tiles = (nb + kTileBlocks - 1) / kTileBlocks;
#pragma omp parallel for schedule(static) num_threads(n_threads) if (n_threads > 1 && row_tiles > 1)
    for (int64_t t = 0; t < row_tiles * block_tiles; ++t) {
      const int64_t m0 = (t / block_tiles) * kTileRows, blk0 = (t % block_tiles) * kTileBlocks;
      const int64_t blk1 = std::min(nb, blk0 + kTileBlocks);
      HWY_DYNAMIC_DISPATCH(QuantizePanelTile)(X, m0, std::min(q.M, m0 + kTileRows), blk0, blk1, &q);
    }
    return;
  }
  // Chunks of 64 blocks keep each thread's writes on its own cache lines (and start groups).
  const int64_t n_blocks = q.M * q.K / 32;
  const int64_t n_chunks = (n_blocks + 63) / 64;
  if (n_threads <= 1 || n_chunks < 4) {
    HWY_DYNAMIC_DISPATCH(QuantizeBlocks)(X, 0, n_blocks, &q);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(n_threads)
  for (int64_t c = 0; c < n_chunks; ++c) {
    HWY_DYNAMIC_DISPATCH(QuantizeBlocks)(X, 64 * c, std::min(n_blocks, 64 * (c + 1)), &q);
  }
}

void quantize_blocks_parallel(const float* X, int64_t M, int64_t K, QuantizedInput& q,
                              int n_threads, int group_blocks, bool panel = false) {
  detail::resize_quantized_input(M, K, q, group_blocks);
  run_quantize_blocks(X, q, n_threads, panel);
}

// Quantises X for weights that share act_scale and activation_group_blocks, plus the panel copy
// where the kernels read it.
void quantize_for(const WeightMatrix& W, const float* X, int64_t M, MatmulWorkspace& ws) {
  const bool panel = M >= detail::kPanelMinM && HWY_DYNAMIC_DISPATCH(HasPanelGemm)();
  if (W.act_scale > 0.0f) {
    detail::resize_static_input(M, W.cols, W.act_scale, ws.qx);
    run_quantize_blocks(X, ws.qx, ws.n_threads, panel);
  } else {
    quantize_blocks_parallel(X, M, W.cols, ws.qx, ws.n_threads,
                             activation_group_blocks(W.type, M, W.cols), panel);
  }
}

}  // namespace

namespace detail {
void quantize_panel_input(const float* X, int64_t M, int64_t K, QuantizedInput& q, int n_threads,
                          int group_blocks, float static_step) {
  if (static_step > 0.0f) {
    resize_static_input(M, K, static_step, q);
  } else {
    resize_quantized_input(M, K, q, group_blocks);
  }
  run_quantize_blocks(X, q, n_threads, true);
}
}  // namespace detail

namespace {

MatmulArgs make_args(const WeightMatrix& W, const float* X, int64_t M, float* Y, int64_t ldy,
                     const QuantizedInput* qx) {
  MatmulArgs a;
  a.w = W.data;
  a.w_row_bytes = W.row_bytes;
  if (W.layout == kLayoutPacked4) {
    a.w_tile_bytes = detail::packed_tile_bytes(W.row_bytes);
    a.w_tile_rows = 4;
  } else if (W.layout == kLayoutRows16) {
    a.w_tile_bytes = detail::rows16_strip_bytes(W.row_bytes);
    a.w_tile_rows = detail::kRows16;
  }
  a.K = W.cols;
  a.M = M;
  a.x = X;
  a.qx = qx;
  a.y = Y;
  a.ldy = ldy;
  a.nta_prefetch_max_bytes = detail::decode_nta_prefetch_max_bytes();
  return a;
}

RowJob make_job(const MatmulKernel& kernel, const WeightMatrix& W, const float* X, int64_t M, float* Y,
                int64_t ldy, const QuantizedInput* qx, int n_threads) {
  RowJob job;
  job.rows = W.layout != kLayoutGguf ? kernel.packed_rows : kernel.rows;
  // AArch64: NEON int8 kernels (plain, dot product or i8mm, as kernels/dispatch.h chooses).
  if (kernel.int8_input) {
    if (const RowsFn arm = detail::arm_int8_rows(W.type, W.layout)) job.rows = arm;
  }
  job.args = make_args(W, X, M, Y, ldy, qx);
  job.N = W.rows;
  job.chunk = chunk_rows(W.rows, n_threads, M, job.args.tile_rows());
  job.n_chunks = (W.rows + job.chunk - 1) / job.chunk;
  return job;
}

// matmul's own kernels for one weight (no oneDNN, no outlier part): quantise X as W says, then
// its row jobs.
void run_quantized(const MatmulKernel& kernel, const WeightMatrix& W, const float* X, int64_t M, float* Y,
                   int64_t ldy, MatmulWorkspace& ws) {
  if (kernel.int8_input) quantize_for(W, X, M, ws);
  const RowJob job = make_job(kernel, W, X, M, Y, ldy, &ws.qx, ws.n_threads);
  run_jobs(&job, 1, ws);
}

// Y[m, n] += Σ_j xo[m, j]·outlier_w[n, j]: the F16 outlier part (float accumulation). Output
// rows go to threads statically — the part is small (n_outliers is a handful of channels), and
// each row's F16 weights are converted once, in runs of 64, for all M inputs.
void add_outlier_product(const WeightMatrix& W, const float* xo, int64_t M, float* Y, int64_t ldy,
                         int n_threads) {
  const int64_t N = W.rows, J = W.n_outliers;
  constexpr int64_t kRun = 64;
#pragma omp parallel for schedule(static) num_threads(n_threads) if (n_threads > 1 && N * M * J >= 32768)
  for (int64_t n = 0; n < N; ++n) {
    const uint16_t* w = W.outlier_w + n * J;
    float wf[kRun];
    for (int64_t j0 = 0; j0 < J; j0 += kRun) {
      const int64_t len = std::min(kRun, J - j0);
      for (int64_t j = 0; j < len; ++j) wf[j] = fp16_to_fp32(w[j0 + j]);
      for (int64_t m = 0; m < M; ++m) {
        const float* x = xo + m * J + j0;
        float acc = 0.0f;
        for (int64_t j = 0; j < len; ++j) acc += x[j] * wf[j];
        Y[m * ldy + n] += acc;
      }
    }
  }
}

// Where matmul() sends W: the workspace's prompt matmul takes quantised weights without an
// outlier part (which it knows nothing of) in prompt-sized products; float weights keep their
// exact sgemm (bf16 would round F32 and F16 weights, which a user running a float model chose
// not to have rounded).
bool to_prompt_matmul(const WeightMatrix& W, int64_t M, const MatmulWorkspace& ws) {
  return ws.prompt && M >= ws.prompt->min_rows() && W.n_outliers == 0 &&
         checked_kernel(W).int8_input;
}

}  // namespace

bool matmul_supports(TensorType type) { return find_kernel(type) != nullptr; }

void quantize_input(const float* X, int64_t M, int64_t K, QuantizedInput& q, int group_blocks) {
  quantize_blocks_parallel(X, M, K, q, 1, group_blocks);
}

void quantize_input_static(const float* X, int64_t M, int64_t K, float step, QuantizedInput& q,
                           int n_threads) {
  detail::resize_static_input(M, K, step, q);
  run_quantize_blocks(X, q, n_threads, false);
}

int activation_group_blocks(TensorType t, int64_t M, int64_t K) {
  const TypeTraits* tr = type_traits(t);
  if (tr != nullptr && tr->block_elems == 256) return 8;
  // 8-bit weights keep per-32 scales: their error is small enough that the coarser activations
  // would dominate it (KJV Q8_0 vs F16, kjv-valid: KL divergence 0.000064 → 0.000113, top-1
  // 99.38 → 99.17 %, where Q4_0/Q4_1 moved 0.7–0.8 %).
  if (t == TensorType::Q8_0 || t == TensorType::Q8_C) return 1;
  return M >= detail::kPanelMinM && K % 256 == 0 ? 8 : 1;
}

void matmul(const WeightMatrix& W, const float* X, int64_t M, float* Y, int64_t ldy, MatmulWorkspace& ws) {
  const MatmulKernel& kernel = checked_kernel(W);
  if (M <= 0 || W.rows == 0) return;
  if (ldy < W.rows) throw std::invalid_argument("matmul: ldy smaller than N");
  if (W.n_outliers != 0) {
    detail::check_outliers(W, "matmul");
    detail::split_outliers(W, X, M, ws.x_inliers, ws.x_outliers);
    run_quantized(kernel, W, ws.x_inliers.data(), M, Y, ldy, ws);
    add_outlier_product(W, ws.x_outliers.data(), M, Y, ldy, ws.n_threads);
    return;
  }
  if (to_prompt_matmul(W, M, ws)) {
    ws.prompt->run(W, X, M, Y, ldy, ws.n_threads);
    return;
  }
  // Float weights in a prompt (F16/F32 models, the calibration pass): oneDNN's sgemm where
  // nibble has it; nibble's own float kernels are row-by-row dot products.
  if (!kernel.int8_input && M >= detail::kPanelMinM && onednn_float_gemm(W, X, M, Y, ldy, ws.n_threads)) {
    return;
  }
  run_quantized(kernel, W, X, M, Y, ldy, ws);
}

void matmul_shared_input(const WeightMatrix* const* Ws, float* const* Ys, const int64_t* ldys, int n_weights,
                         const float* X, int64_t M, MatmulWorkspace& ws) {
  if (n_weights <= 0 || M <= 0) return;
  int to_prompt = 0;
  for (int i = 0; i < n_weights; ++i) to_prompt += to_prompt_matmul(*Ws[i], M, ws) ? 1 : 0;
  if (to_prompt == n_weights) {  // X converted for the prompt matmul once for all
    ws.prompt->run_shared_input(Ws, Ys, ldys, n_weights, X, M, ws.n_threads);
    return;
  }
  // One quantised X serves all only when they agree on how X is quantised, and an outlier part
  // changes the X its weight's quantized product reads.
  for (int i = 0; i < n_weights; ++i) {
    if (Ws[i]->act_scale != Ws[0]->act_scale || Ws[i]->n_outliers != 0 ||
        activation_group_blocks(Ws[i]->type, M, Ws[i]->cols) !=
            activation_group_blocks(Ws[0]->type, M, Ws[0]->cols)) {
      for (int j = 0; j < n_weights; ++j) matmul(*Ws[j], X, M, Ys[j], ldys[j], ws);
      return;
    }
  }
  bool any_int8 = false;
  for (int i = 0; i < n_weights; ++i) {
    any_int8 |= checked_kernel(*Ws[i]).int8_input;
    if (Ws[i]->cols != Ws[0]->cols) throw std::invalid_argument("matmul_shared_input: weights differ in K");
    if (ldys[i] < Ws[i]->rows) throw std::invalid_argument("matmul_shared_input: ldy smaller than N");
  }
  // Some to the prompt matmul and some not, or float weights for oneDNN's sgemm: one matmul()
  // each. (A prompt matmul that takes none, M below its min_rows(), leaves the shared path.)
  if (to_prompt > 0 || (!any_int8 && OneDnnMatmul::available() && M >= detail::kPanelMinM)) {
    for (int i = 0; i < n_weights; ++i) matmul(*Ws[i], X, M, Ys[i], ldys[i], ws);
    return;
  }
  if (any_int8) quantize_for(*Ws[0], X, M, ws);
  // Stack storage for the usual 2–3 weights: per-token calls stay allocation-free.
  RowJob stack_jobs[8];
  std::vector<RowJob> heap_jobs;
  RowJob* jobs = stack_jobs;
  if (n_weights > 8) {
    heap_jobs.resize(static_cast<size_t>(n_weights));
    jobs = heap_jobs.data();
  }
  int n_jobs = 0;
  for (int i = 0; i < n_weights; ++i) {
    if (Ws[i]->rows == 0) continue;
    jobs[n_jobs++] = make_job(*find_kernel(Ws[i]->type), *Ws[i], X, M, Ys[i], ldys[i], &ws.qx, ws.n_threads);
  }
  run_jobs(jobs, n_jobs, ws);
}

}  // namespace nibble
#endif  // HWY_ONCE
