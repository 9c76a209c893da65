#include "kernels/amx_matmul.h"

#include <stdexcept>

#include "kernels/matmul.h"

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define NIBBLE_AMX 1
#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/fp16.h"
#include "kernels/matmul_internal.h"
#include "kernels/quant_tables.h"
#include "kernels/quantize.h"
#include "kernels/repack.h"
#endif

namespace nibble {

#if defined(NIBBLE_AMX)

// GCC 12's _mm512_undefined_* (inside the gather and bf16 conversion intrinsics) initialise a
// variable from itself, which -Wmaybe-uninitialized reports at every use.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace {

// The tile unit's shapes: a tile is 16 rows of 64 bytes (32 bf16 along K for the weights; 16
// tokens × one K pair for the activations); C tiles are 16 × 16 f32.
constexpr int64_t kTileRows = 16;
constexpr int64_t kTileK = 32;
constexpr int64_t kTileElems = kTileRows * kTileK;  // bf16 per weight tile (1 KB)
// Each inner loop keeps a 2 × 2 block of C tiles (32 weight rows × 32 tokens) in tmm0–3 and
// loads 2 weight tiles (tmm4, tmm5) and 2 activation tiles (tmm6, tmm7) per 32 of K: every
// loaded tile feeds two products.
constexpr int64_t kBlockRows = 2 * kTileRows;
// Weight rows a thread dequantises at a time (bf16, 128·K bytes: 704 KB at K = 5632, within a
// Xeon core's 2 MB L2), then multiplies with every activation row.
constexpr int64_t kPanelRows = 64;
// Below this many activation rows the dequantisation (once per weight and call) costs more than
// the tile unit saves over the int8 GEMM (bench_matmul, Xeon with AMX: see docs/design.md).
constexpr int64_t kAmxMinRows = 32;

constexpr int kArchReqXcompPerm = 0x1023;  // arch_prctl: ask for an extended state component
constexpr int kXfeatureXtiledata = 18;     // the AMX tile data state

#define NIBBLE_AMX_TARGET \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")))

// LDTILECFG's 64-byte operand (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Per-thread tile state: configured on entry, released on exit (also when the body throws), so
// the core leaves the AMX power state and context switches stop saving 8 KB of tiles.
class TileScope {
 public:
  NIBBLE_AMX_TARGET TileScope() {
    TileConfig cfg;
    for (int t = 0; t < 8; ++t) {
      cfg.rows[t] = kTileRows;
      cfg.colsb[t] = 64;
    }
    // Not _tile_loadconfig: GCC 12's declares the asm to read only 8 bytes of the 64, and the
    // stores of rows and colsb were dropped as dead.
    __asm__ volatile("ldtilecfg %0" : : "m"(cfg));
  }
  NIBBLE_AMX_TARGET ~TileScope() { _tile_release(); }
  TileScope(const TileScope&) = delete;
  TileScope& operator=(const TileScope&) = delete;
};

uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

// Grow-only 64-byte aligned scratch (tile loads of misaligned rows split every row across two
// cache lines and run at half speed).
struct Scratch {
  WeightStorage mem;
  uint64_t bytes = 0;
  uint8_t* get(uint64_t want) {
    if (want > bytes) {
      mem = allocate_weight_storage(want);
      bytes = want;
    }
    return mem.get();
  }
};

// X (M × K floats) as the B operand: tokens padded with zeros to a multiple of 32; for 16-token
// group g and K pair p the 16 dwords at (g·K/2 + p)·16 hold, for token r of the group,
// bf16(x[2p]) in the low half and bf16(x[2p+1]) in the high half (VCVTNEPS2BF16: round to
// nearest even as fp32_to_bf16, but denormals become zero).
NIBBLE_AMX_TARGET void pack_activations(const float* X, int64_t M, int64_t K, uint32_t* xb,
                                        int n_threads) {
  const int64_t groups = static_cast<int64_t>(round_up(M, kBlockRows)) / kTileRows;
  const int64_t pairs = K / 2;
#pragma omp parallel for num_threads(n_threads) \
    schedule(static) if (n_threads > 1 && M * K >= 65536)
  for (int64_t g = 0; g < groups; ++g) {
    uint32_t* out = xb + g * pairs * kTileRows;
    const int64_t valid = std::clamp<int64_t>(M - g * kTileRows, 0, kTileRows);
    if (valid == 0) {
      std::memset(out, 0, static_cast<size_t>(pairs * kTileRows * 4));
      continue;
    }
    const __mmask16 live = static_cast<__mmask16>((1u << valid) - 1);
    const __m512i rows =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(static_cast<int>(K)));
    const float* base = X + g * kTileRows * K;
    for (int64_t p = 0; p < pairs; ++p) {
      const __m512 even =
          _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, rows, base + 2 * p, 4);
      const __m512 odd =
          _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, rows, base + 2 * p + 1, 4);
      const __m512i e = _mm512_cvtepu16_epi32(reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(even)));
      const __m512i o = _mm512_cvtepu16_epi32(reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(odd)));
      _mm512_store_si512(out + p * kTileRows, _mm512_or_si512(e, _mm512_slli_epi32(o, 16)));
    }
  }
}

// ---- Row decoders: row n of W as bf16, 32 elements (one tile row, 64 bytes) per K step,
// step s at out + s·kTileElems. Each rounds the value the type's reference dequantisation
// gives (kernels/quantize.cpp) once, to bf16; where that multiplies and adds (the K-quants'
// mins) a fused multiply-add rounds once instead of twice, far below bf16's rounding.

// 32 integers (two vectors of 16) as scale·q + offset in bf16.
NIBBLE_AMX_TARGET inline void store_affine(__m512i q_lo, __m512i q_hi, __m512 scale, __m512 offset,
                                           uint16_t* out) {
  const __m512 lo = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q_lo), scale, offset);
  const __m512 hi = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q_hi), scale, offset);
  _mm512_store_si512(out, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
}

NIBBLE_AMX_TARGET inline __m512i low_nibbles(const uint8_t* p) {
  return _mm512_cvtepu8_epi32(
      _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), _mm_set1_epi8(0x0F)));
}

NIBBLE_AMX_TARGET inline __m512i high_nibbles(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0F)));
}

NIBBLE_AMX_TARGET inline __m512i int8s(const uint8_t* p) {
  return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Q4_0's 32 elements from 16 bytes: element e < 16 in the low nibble of byte e, the rest in the
// high nibbles; value d·(q − 8).
NIBBLE_AMX_TARGET inline void q4_0_block(const uint8_t* nibbles, float d, uint16_t* out) {
  store_affine(low_nibbles(nibbles), high_nibbles(nibbles), _mm512_set1_ps(d),
               _mm512_set1_ps(-8.0f * d), out);
}

NIBBLE_AMX_TARGET inline void q8_0_block(const uint8_t* q, float d, uint16_t* out) {
  store_affine(int8s(q), int8s(q + 16), _mm512_set1_ps(d), _mm512_setzero_ps(), out);
}

// Q4_K sub-block from the super-block's header (d, dmin, 12 bytes of 6-bit scales and mins):
// value d·sc·q − dmin·m.
struct AffineStep {
  __m512 scale, offset;
};
NIBBLE_AMX_TARGET inline AffineStep q4_k_step(const uint8_t* head, int sub) {
  int sc, m;
  k4_scale_min(head + 4, sub, &sc, &m);
  return {_mm512_set1_ps(fp16_at(head) * static_cast<float>(sc)),
          _mm512_set1_ps(-(fp16_at(head + 2) * static_cast<float>(m)))};
}

// Returns false where the type and layout have no decoder here (the caller takes the generic
// path).
NIBBLE_AMX_TARGET bool decode_row_fast(const WeightMatrix& W, int64_t n, uint16_t* out) {
  const int64_t K = W.cols, nb = K / 32;
  if (W.layout == kLayoutRows16) return false;
  const bool packed = W.layout == kLayoutPacked4;
  const uint8_t* row = W.data + n * W.row_bytes;
  const uint8_t* tile =
      packed ? W.data + (n / 4) * detail::packed_tile_bytes(W.row_bytes) : nullptr;
  const int64_t r = n % 4;
  switch (W.type) {
    case TensorType::Q4_0:
      if (!packed) {  // 18-byte blocks: d, 16 bytes of nibbles
        for (int64_t b = 0; b < nb; ++b)
          q4_0_block(row + 18 * b + 2, fp16_at(row + 18 * b), out + b * kTileElems);
      } else {  // groups of 4 blocks: 64 quant bytes per row, then the 4 rows' scales (repack.h)
        for (int64_t g = 0; g < nb / 4; ++g) {
          const uint8_t* q = tile + (g * 4 + r) * 64;
          const uint8_t* d = tile + nb * 4 * 16 + (g * 4 + r) * 8;
          for (int j = 0; j < 4; ++j)
            q4_0_block(q + 16 * j, fp16_at(d + 2 * j), out + (4 * g + j) * kTileElems);
        }
      }
      return true;
    case TensorType::Q8_0:
      if (!packed) {  // 34-byte blocks: d, 32 int8
        for (int64_t b = 0; b < nb; ++b)
          q8_0_block(row + 34 * b + 2, fp16_at(row + 34 * b), out + b * kTileElems);
      } else {  // groups of 2 blocks
        for (int64_t g = 0; g < nb / 2; ++g) {
          const uint8_t* q = tile + (g * 4 + r) * 64;
          const uint8_t* d = tile + nb * 4 * 32 + (g * 4 + r) * 4;
          for (int j = 0; j < 2; ++j)
            q8_0_block(q + 32 * j, fp16_at(d + 2 * j), out + (2 * g + j) * kTileElems);
        }
      }
      return true;
    case TensorType::Q4_K:
      for (int64_t sb = 0; sb < nb / 8; ++sb) {
        if (!packed) {  // 144 bytes: header, then 4 × 32 bytes: sub-block 2c in the low nibbles
          const uint8_t* head = row + 144 * sb;
          for (int c = 0; c < 4; ++c) {
            const uint8_t* qs = head + 16 + 32 * c;
            const AffineStep lo = q4_k_step(head, 2 * c), hi = q4_k_step(head, 2 * c + 1);
            uint16_t* o = out + (8 * sb + 2 * c) * kTileElems;
            store_affine(low_nibbles(qs), low_nibbles(qs + 16), lo.scale, lo.offset, o);
            store_affine(high_nibbles(qs), high_nibbles(qs + 16), hi.scale, hi.offset,
                         o + kTileElems);
          }
        } else {  // 576 bytes per super-block and tile: 4 headers, then per sub-block 4 × 16 bytes
          const uint8_t* run = tile + detail::kK4RunBytes * sb;
          const uint8_t* head = run + 16 * r;
          for (int k = 0; k < 8; ++k) {
            const AffineStep step = q4_k_step(head, k);
            const uint8_t* qs = run + 64 + 64 * k + 16 * r;
            store_affine(low_nibbles(qs), high_nibbles(qs), step.scale, step.offset,
                         out + (8 * sb + k) * kTileElems);
          }
        }
      }
      return true;
    case TensorType::Q6_K:
      if (packed) return false;
      // 210 bytes: ql[128], qh[64], 16 int8 scales, d. Half h, quarter j, element l < 32: low 4
      // bits from ql[64h + 32(j mod 2) + l] (low nibble for j < 2), high 2 bits from
      // qh[32h + l] >> 2j; value d·scale[8h + 2j + l/16]·(q − 32).
      for (int64_t sb = 0; sb < nb / 8; ++sb) {
        const uint8_t* b = row + 210 * sb;
        const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
        const float d = fp16_at(b + 208);
        for (int h = 0; h < 2; ++h) {
          for (int j = 0; j < 4; ++j) {
            __m512 v[2];
            for (int t = 0; t < 2; ++t) {
              const __m128i ql = _mm_loadu_si128(
                  reinterpret_cast<const __m128i*>(b + 64 * h + 32 * (j % 2) + 16 * t));
              const __m128i qh =
                  _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 128 + 32 * h + 16 * t));
              const __m128i low4 =
                  _mm_and_si128(j < 2 ? ql : _mm_srli_epi16(ql, 4), _mm_set1_epi8(0x0F));
              const __m128i high2 =
                  _mm_and_si128(_mm_srl_epi16(qh, _mm_cvtsi32_si128(2 * j)), _mm_set1_epi8(3));
              const __m512i q = _mm512_sub_epi32(
                  _mm512_cvtepu8_epi32(_mm_or_si128(low4, _mm_slli_epi16(high2, 4))),
                  _mm512_set1_epi32(32));
              const float scale = d * static_cast<float>(scales[8 * h + 2 * j + t]);
              v[t] = _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(scale));
            }
            _mm512_store_si512(out + (8 * sb + 4 * h + j) * kTileElems,
                               reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(v[1], v[0])));
          }
        }
      }
      return true;
    default:
      return false;
  }
}

// Rows [n0, n0 + kPanelRows) of W as bf16 weight tiles: row group q (16 rows) and K step s at
// panel + (q·K/32 + s)·512, row i of the group at + 32·i. Rows at or past N are zeros. One per
// thread: its scratch (for the types without a decoder above) grows to the largest row seen.
class PanelDecoder {
 public:
  NIBBLE_AMX_TARGET void decode(const WeightMatrix& W, int64_t n0, uint16_t* panel) {
    const int64_t steps = W.cols / kTileK;
    for (int64_t i = 0; i < kPanelRows; ++i) {
      const int64_t n = n0 + i;
      uint16_t* dst = panel + (i / kTileRows) * steps * kTileElems + (i % kTileRows) * kTileK;
      if (n >= W.rows) {
        for (int64_t s = 0; s < steps; ++s) std::memset(dst + s * kTileElems, 0, kTileK * 2);
      } else if (!decode_row_fast(W, n, dst)) {
        decode_row_generic(W, n, dst);
      }
    }
  }

 private:
  // Any type: the row as GGUF blocks (unpacked from a packed layout), dequantize_row, bf16.
  NIBBLE_AMX_TARGET void decode_row_generic(const WeightMatrix& W, int64_t n, uint16_t* dst) {
    const int64_t K = W.cols, steps = K / kTileK;
    if (row_.size() < static_cast<size_t>(K)) row_.resize(static_cast<size_t>(K));
    const uint8_t* src = W.data + n * W.row_bytes;
    if (W.layout != kLayoutGguf) {
      if (gguf_.size() < W.row_bytes) gguf_.resize(W.row_bytes);
      detail::unpack_rows(W, n, 1, gguf_.data(), W.row_bytes);
      src = gguf_.data();
    }
    dequantize_row(W.type, src, K, row_.data());
    for (int64_t s = 0; s < steps; ++s) {
      const float* x = row_.data() + s * kTileK;
      const __m512bh bf = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + 16), _mm512_loadu_ps(x));
      _mm512_store_si512(dst + s * kTileElems, reinterpret_cast<__m512i>(bf));
    }
  }

  std::vector<float> row_;
  std::vector<uint8_t> gguf_;
};

// Y rows [m0, m0 + 32) × columns [n0, n0 + 32) (clipped to M and N) from a weight row block
// (2 groups of 16 rows, K/32 tiles each) and the activations' 2 token groups.
NIBBLE_AMX_TARGET void tile_block(const uint16_t* w, const uint32_t* x, int64_t K, int64_t m0,
                                  int64_t M, int64_t n0, int64_t N, float* Y, int64_t ldy) {
  const int64_t steps = K / kTileK;
  const uint16_t* w0 = w;
  const uint16_t* w1 = w + steps * kTileElems;
  const uint32_t* x0 = x;
  const uint32_t* x1 = x + (K / 2) * kTileRows;
  // GCC's tile-load asm names no memory operand: the barrier keeps the stores that wrote the
  // panel and the activations before the loads that read them.
  __asm__ volatile("" : : : "memory");
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t s = 0; s < steps; ++s) {
    // The next step's four tiles into L1 while this step's products run: tile loads from L2
    // stall the products behind them (pp512-sized GEMM on a Xeon, 2 threads: 1.95 → 2.06
    // TOP/s; 2 steps ahead gained nothing more).
    for (int64_t line = 0; line < kTileRows && s + 1 < steps; ++line) {
      _mm_prefetch(reinterpret_cast<const char*>(w0 + (s + 1) * kTileElems + line * kTileK),
                   _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w1 + (s + 1) * kTileElems + line * kTileK),
                   _MM_HINT_T0);
      _mm_prefetch(
          reinterpret_cast<const char*>(x0 + (s + 1) * kTileRows * kTileRows + line * kTileRows),
          _MM_HINT_T0);
      _mm_prefetch(
          reinterpret_cast<const char*>(x1 + (s + 1) * kTileRows * kTileRows + line * kTileRows),
          _MM_HINT_T0);
    }
    // Loads interleaved with the products that need them: a tile register is not renamed, so
    // the next load into it waits for the products reading it.
    _tile_loadd(4, w0 + s * kTileElems, 64);
    _tile_loadd(6, x0 + s * kTileRows * kTileRows, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(7, x1 + s * kTileRows * kTileRows, 64);
    _tile_dpbf16ps(1, 4, 7);
    _tile_loadd(5, w1 + s * kTileElems, 64);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  // C tile (a, b) = weight rows n0 + 16a + i × tokens m0 + 16b + j at [i][j]: each token's 16
  // sums are a column, gathered into one row of Y.
  alignas(64) float c[4][kTileRows][kTileRows];
  _tile_stored(0, c[0], 64);
  _tile_stored(1, c[1], 64);
  _tile_stored(2, c[2], 64);
  _tile_stored(3, c[3], 64);
  const __m512i column =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(kTileRows));
  for (int a = 0; a < 2; ++a) {
    const int64_t n = n0 + a * kTileRows;
    if (n >= N) break;
    const __mmask16 live =
        static_cast<__mmask16>(N - n >= kTileRows ? 0xffff : (1u << (N - n)) - 1);
    for (int b = 0; b < 2; ++b) {
      for (int64_t j = 0; j < kTileRows; ++j) {
        const int64_t m = m0 + b * kTileRows + j;
        if (m >= M) break;
        _mm512_mask_storeu_ps(Y + m * ldy + n, live,
                              _mm512_i32gather_ps(column, &c[a * 2 + b][0][j], 4));
      }
    }
  }
}

bool cpu_has_amx_bf16() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool avx512f = b & (1u << 16), avx512bw = b & (1u << 30), avx512vl = b & (1u << 31);
  const bool amx_bf16 = d & (1u << 22), amx_tile = d & (1u << 24);
  if (!(avx512f && avx512bw && avx512vl && amx_bf16 && amx_tile)) return false;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  return a & (1u << 5);  // AVX512_BF16
}

}  // namespace

struct AmxMatmul::Impl {
  Scratch activations;
  std::vector<Scratch> panels;  // one per thread
};

bool AmxMatmul::available() {
  // Linux hands out the 8 KB tile state only on request; without it the first tile
  // instruction raises SIGILL. Asked once per process.
  static const bool usable =
      cpu_has_amx_bf16() && syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  return usable;
}

AmxMatmul::AmxMatmul() : impl_(std::make_unique<Impl>()) {
  if (!available())
    throw std::runtime_error("AMX matmul: this CPU (or kernel) offers no AMX-BF16 tiles");
}

AmxMatmul::~AmxMatmul() = default;

int64_t AmxMatmul::min_rows() const { return kAmxMinRows; }

void AmxMatmul::run_shared_input(const WeightMatrix* const* Ws, float* const* Ys,
                                 const int64_t* ldys, int n_weights, const float* X, int64_t M,
                                 int n_threads) {
  if (M <= 0 || n_weights <= 0) return;
  const int64_t K = Ws[0]->cols;
  if (K <= 0 || K % kTileK != 0)
    throw std::invalid_argument("AMX matmul: K must be a multiple of 32");
  // Every weight's panels, in one parallel region.
  struct Job {
    int weight;
    int64_t n0;
  };
  std::vector<Job> jobs;
  for (int i = 0; i < n_weights; ++i) {
    const WeightMatrix& W = *Ws[i];
    if (W.cols != K) throw std::invalid_argument("AMX matmul: weights differ in K");
    if (ldys[i] < W.rows) throw std::invalid_argument("AMX matmul: ldy smaller than N");
    if (W.n_outliers != 0)
      throw std::invalid_argument("AMX matmul: weights with outliers are not supported");
    const TypeTraits* traits = type_traits(W.type);
    if (!can_dequantize(W.type) || traits == nullptr || K % traits->block_elems != 0)
      throw std::invalid_argument("AMX matmul: no decoder for this weight type and K");
    for (int64_t n0 = 0; n0 < W.rows; n0 += kPanelRows) jobs.push_back({i, n0});
  }
  const int64_t Mp = static_cast<int64_t>(round_up(M, kBlockRows));
  auto* xb = reinterpret_cast<uint32_t*>(impl_->activations.get(static_cast<uint64_t>(Mp * K * 2)));
  pack_activations(X, M, K, xb, n_threads);

  const int threads = std::max(1, std::min<int>(n_threads, static_cast<int>(jobs.size())));
  if (impl_->panels.size() < static_cast<size_t>(threads))
    impl_->panels.resize(static_cast<size_t>(threads));
  const uint64_t panel_bytes = static_cast<uint64_t>(kPanelRows * K * 2);
  for (int t = 0; t < threads; ++t) impl_->panels[static_cast<size_t>(t)].get(panel_bytes);
  const int64_t n_jobs = static_cast<int64_t>(jobs.size());
#pragma omp parallel num_threads(threads)
  {
    const TileScope tiles;
    auto* panel = reinterpret_cast<uint16_t*>(
        impl_->panels[static_cast<size_t>(omp_get_thread_num())].mem.get());
    PanelDecoder decoder;
#pragma omp for schedule(dynamic, 1)
    for (int64_t j = 0; j < n_jobs; ++j) {
      const Job job = jobs[static_cast<size_t>(j)];
      const WeightMatrix& W = *Ws[job.weight];
      decoder.decode(W, job.n0, panel);
      for (int64_t m0 = 0; m0 < M; m0 += kBlockRows) {
        for (int64_t r = 0; r < kPanelRows && job.n0 + r < W.rows; r += kBlockRows) {
          tile_block(panel + (r / kTileRows) * (K / kTileK) * kTileElems,
                     xb + (m0 / kTileRows) * (K / 2) * kTileRows, K, m0, M, job.n0 + r, W.rows,
                     Ys[job.weight], ldys[job.weight]);
        }
      }
    }
  }
}

#else  // no AMX on this architecture or toolchain

struct AmxMatmul::Impl {};

bool AmxMatmul::available() { return false; }

AmxMatmul::AmxMatmul() { throw std::runtime_error("AMX matmul: not built for this architecture"); }

AmxMatmul::~AmxMatmul() = default;

int64_t AmxMatmul::min_rows() const { return 0; }

void AmxMatmul::run_shared_input(const WeightMatrix* const*, float* const*, const int64_t*, int,
                                 const float*, int64_t, int) {
  throw std::runtime_error("AMX matmul: not built for this architecture");
}

#endif

}  // namespace nibble
