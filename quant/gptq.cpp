// GPTQ with the reference implementation's choices (dead inputs, relative damping, lazy batches)
// and GGUF-style groups whose parameters come from the type's own quantizer.
//
// The algebra. With H' = H + λI (dead diagonal entries set to 1 first), the reference quantizes
// column j of the current weights, divides the rounding error by U_jj and subtracts err·U[j, j+1:]
// from the later columns, where U is the upper Cholesky factor of H'⁻¹ (H'⁻¹ = UᵀU). Summed over
// the whole run that says W0 − Q = Err·U. Write Ũ = U⁻¹: it is upper triangular with H' = ŨŨᵀ (the
// "upper-lower" Cholesky factor of H', i.e. the ordinary one of H' with rows and columns reversed),
// and Err = (W0 − Q)·Ũ. So the weight column k is quantized from
//     w_k = W0_k + Σ_{i<k} (W0_i − Q_i) · Ũ_ik / Ũ_kk,
// and its error term is Err_k = (w_k − q_k)·Ũ_kk. Working with Ũ instead of U gives the same
// numbers without forming any inverse: one Cholesky (n³/3 flops) instead of the reference's
// Cholesky, inverse and second Cholesky (≈ 4n³/3). The later-column updates are still
// "right-looking" lazy batches: after each batch one gemm adds (W0 − Q)[:, batch]·V[batch, later]
// (V = Ũ with columns divided by their diagonal) to every later column.
//
// The loss comes for free: tr((W0−Q) H' (W0−Q)ᵀ) = ‖(W0−Q)Ũ‖² = ‖Err‖², and the undamped loss is
// that minus λ‖W0−Q‖² and minus the dead columns' ‖W0_j−Q_j‖² (H' has 1 + λ where H has 0).
#include "quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/fp16.h"
#include "kernels/quant_tables.h"
#include "kernels/quantize.h"
#include "quant/linalg.h"

namespace nibble {
namespace {

// ---- Where each type keeps a weight's level, and the grid its group's parameters define ----

// Bits [shift, shift + width) of byte `byte` of a group.
struct BitField {
  int64_t byte = 0;
  int shift = 0, width = 0;
};
// A level's stored bits: lo, then hi (when hi.width > 0) above them.
struct LevelPos {
  BitField lo, hi;
};

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

// Q4_0, Q4_1, Q4_G64, Q4_G128, IQ4_NL: G/2 bytes from Base, element e < G/2 in the low nibble of
// byte e, the others in the high nibble of byte e − G/2.
template <int Base, int G>
LevelPos pos_nibbles(int64_t e) {
  return {{Base + e % (G / 2), e < G / 2 ? 0 : 4, 4}, {}};
}
// Q5_0 / Q5_1: Q4-style nibbles at QS, the fifth bit of element e as bit e of the u32 at QH.
template <int QH, int QS>
LevelPos pos_q5(int64_t e) {
  return {{QS + e % 16, e < 16 ? 0 : 4, 4}, {QH + e / 8, static_cast<int>(e % 8), 1}};
}
// Q8_0 / Q8_C: one int8 per element from Base.
template <int Base>
LevelPos pos_bytes(int64_t e) {
  return {{Base + e, 0, 8}, {}};
}
// Q4_K / Q5_K: 64-element chunks c of 32 bytes, low nibbles the chunk's first 32 elements.
LevelPos pos_q4_k(int64_t e) { return {{16 + 32 * (e / 64) + e % 32, (e % 64) < 32 ? 0 : 4, 4}, {}}; }
LevelPos pos_q5_k(int64_t e) {
  return {{48 + 32 * (e / 64) + e % 32, (e % 64) < 32 ? 0 : 4, 4}, {16 + e % 32, static_cast<int>(e / 32), 1}};
}
// Q6_K / Q2_K / Q3_K: halves h of 128, quarters j of 32, lane l.
LevelPos pos_q6_k(int64_t e) {
  const int64_t h = e / 128, j = (e % 128) / 32, l = e % 32;
  return {{64 * h + 32 * (j % 2) + l, j < 2 ? 0 : 4, 4}, {128 + 32 * h + l, static_cast<int>(2 * j), 2}};
}
LevelPos pos_q2_k(int64_t e) {
  const int64_t h = e / 128, j = (e % 128) / 32, l = e % 32;
  return {{16 + 32 * h + l, static_cast<int>(2 * j), 2}, {}};
}
LevelPos pos_q3_k(int64_t e) {
  const int64_t h = e / 128, j = (e % 128) / 32, l = e % 32;
  return {{32 + 32 * h + l, static_cast<int>(2 * j), 2}, {l, static_cast<int>(4 * h + j), 1}};
}
LevelPos pos_iq4_xs(int64_t e) {
  const int64_t ib = e / 32, j = e % 32;
  return {{8 + 16 * ib + j % 16, j < 16 ? 0 : 4, 4}, {}};
}

// Sub-block s of a group: value(L) = step·L − off, in the dequantizer's float operation order
// (kernels/quantize.cpp) so that the values GPTQ works with are the ones a reader gets back.
using GridFn = void (*)(const uint8_t* g, int64_t s, float* step, float* off);

void grid_d(const uint8_t* g, int64_t, float* step, float* off) {  // d·L
  *step = f16_at(g);
  *off = 0.0f;
}
void grid_dm(const uint8_t* g, int64_t, float* step, float* off) {  // d·L + m
  *step = f16_at(g);
  *off = -f16_at(g + 2);  // x − (−m) is exactly x + m
}
void grid_q8_c(const uint8_t* g, int64_t, float* step, float* off) {
  std::memcpy(step, g, 4);
  *off = 0.0f;
}
void grid_k(const uint8_t* g, int64_t s, float* step, float* off) {  // Q4_K / Q5_K
  // The 12-byte 6-bit scale/min packing (k_scale_min in kernels/quantize.cpp).
  const uint8_t* p = g + 4;
  int sc, m;
  if (s < 4) {
    sc = p[s] & 63;
    m = p[s + 4] & 63;
  } else {
    sc = (p[s + 4] & 0x0F) | (p[s - 4] >> 6) << 4;
    m = (p[s + 4] >> 4) | (p[s] >> 6) << 4;
  }
  *step = f16_at(g) * static_cast<float>(sc);
  *off = f16_at(g + 2) * static_cast<float>(m);
}
void grid_q6_k(const uint8_t* g, int64_t s, float* step, float* off) {
  *step = f16_at(g + 208) * static_cast<float>(static_cast<int8_t>(g[192 + s]));
  *off = 0.0f;
}
void grid_q2_k(const uint8_t* g, int64_t s, float* step, float* off) {
  *step = f16_at(g + 80) * static_cast<float>(g[s] & 0x0F);
  *off = f16_at(g + 82) * static_cast<float>(g[s] >> 4);
}
void grid_q3_k(const uint8_t* g, int64_t s, float* step, float* off) {
  const uint8_t* p = g + 96;
  const int low4 = s < 8 ? (p[s] & 0x0F) : (p[s - 8] >> 4);
  const int high2 = (p[8 + s % 4] >> (2 * (s / 4))) & 3;
  *step = f16_at(g + 108) * static_cast<float>((low4 | high2 << 4) - 32);
  *off = 0.0f;
}
void grid_iq4_xs(const uint8_t* g, int64_t s, float* step, float* off) {
  uint16_t scales_h;
  std::memcpy(&scales_h, g + 2, 2);
  const int ls = ((g[4 + s / 2] >> (4 * (s % 2))) & 0x0F) | ((scales_h >> (2 * s)) & 3) << 4;
  *step = f16_at(g) * static_cast<float>(ls - 32);
  *off = 0.0f;
}

struct Format {
  TensorType type;
  int64_t group;  // elements whose parameters one quantizer call sets (the block); 0: whole row
  int64_t sub;    // elements sharing one (step, off); 0: the whole row
  int lo, hi;     // level range; value = step·L − off, or step·kIQ4NLValues[L] for iq4
  int bias;       // stored bits = L + bias
  bool signed8;   // stored as the int8 L itself
  bool iq4;
  LevelPos (*pos)(int64_t e);  // element e of a group
  GridFn grid;
};

constexpr Format kFormats[] = {
    {TensorType::Q4_0, 32, 32, -8, 7, 8, false, false, pos_nibbles<2, 32>, grid_d},
    {TensorType::Q4_1, 32, 32, 0, 15, 0, false, false, pos_nibbles<4, 32>, grid_dm},
    {TensorType::Q5_0, 32, 32, -16, 15, 16, false, false, pos_q5<2, 6>, grid_d},
    {TensorType::Q5_1, 32, 32, 0, 31, 0, false, false, pos_q5<4, 8>, grid_dm},
    {TensorType::Q8_0, 32, 32, -127, 127, 0, true, false, pos_bytes<2>, grid_d},
    {TensorType::Q4_G64, 64, 64, -8, 7, 8, false, false, pos_nibbles<2, 64>, grid_d},
    {TensorType::Q4_G128, 128, 128, -8, 7, 8, false, false, pos_nibbles<2, 128>, grid_d},
    {TensorType::Q8_C, 0, 0, -127, 127, 0, true, false, pos_bytes<4>, grid_q8_c},
    {TensorType::Q2_K, 256, 16, 0, 3, 0, false, false, pos_q2_k, grid_q2_k},
    {TensorType::Q3_K, 256, 16, -4, 3, 4, false, false, pos_q3_k, grid_q3_k},
    {TensorType::Q4_K, 256, 32, 0, 15, 0, false, false, pos_q4_k, grid_k},
    {TensorType::Q5_K, 256, 32, 0, 31, 0, false, false, pos_q5_k, grid_k},
    {TensorType::Q6_K, 256, 16, -32, 31, 32, false, false, pos_q6_k, grid_q6_k},
    {TensorType::IQ4_NL, 32, 32, 0, 15, 0, false, true, pos_nibbles<2, 32>, grid_d},
    {TensorType::IQ4_XS, 256, 32, 0, 15, 0, false, true, pos_iq4_xs, grid_iq4_xs},
};

const Format* find_format(TensorType type) {
  for (const Format& f : kFormats) {
    if (f.type == type) return &f;
  }
  return nullptr;
}

uint32_t get_bits(const uint8_t* g, const BitField& b) {
  return (static_cast<uint32_t>(g[b.byte]) >> b.shift) & ((1u << b.width) - 1u);
}
void set_bits(uint8_t* g, const BitField& b, uint32_t v) {
  const uint32_t mask = ((1u << b.width) - 1u) << b.shift;
  g[b.byte] = static_cast<uint8_t>((g[b.byte] & ~mask) | ((v << b.shift) & mask));
}
int read_level(const Format& f, const uint8_t* g, const LevelPos& p) {
  uint32_t u = get_bits(g, p.lo);
  if (p.hi.width > 0) u |= get_bits(g, p.hi) << p.lo.width;
  return f.signed8 ? static_cast<int>(static_cast<int8_t>(static_cast<uint8_t>(u))) : static_cast<int>(u) - f.bias;
}
void write_level(const Format& f, uint8_t* g, const LevelPos& p, int level) {
  const uint32_t u = f.signed8 ? static_cast<uint8_t>(static_cast<int8_t>(level)) : static_cast<uint32_t>(level + f.bias);
  set_bits(g, p.lo, u);
  if (p.hi.width > 0) set_bits(g, p.hi, u >> p.lo.width);
}

float level_value(const Format& f, int level, float step, float off) {
  const float l = f.iq4 ? static_cast<float>(kIQ4NLValues[level]) : static_cast<float>(level);
  return step * l - off;
}

// The level whose value is nearest w on the fixed grid; `fallback` when every level has the same
// value (a zero step: an all-zero group or a sub-block scale of 0).
int nearest_level(const Format& f, float w, float step, float off, int fallback) {
  if (step == 0.0f || !std::isfinite(step)) return fallback;
  int guess;
  if (f.iq4) {
    const float t = w / step;
    const int8_t* v = kIQ4NLValues;
    guess = static_cast<int>(std::lower_bound(v, v + 16, t, [](int8_t a, float x) { return static_cast<float>(a) < x; }) - v);
  } else {
    const double t = (static_cast<double>(w) + off) / step;
    guess = static_cast<int>(std::lround(std::clamp(t, f.lo - 1.0, f.hi + 1.0)));
  }
  // The guess is within one level of the answer; compare actual float values so ties and
  // rounding in step·L − off cannot pick a farther level.
  int best = std::clamp(guess, f.lo, f.hi);
  float best_err = std::fabs(w - level_value(f, best, step, off));
  for (const int cand : {guess - 1, guess + 1}) {
    if (cand < f.lo || cand > f.hi || cand == best) continue;
    const float e = std::fabs(w - level_value(f, cand, step, off));
    if (e < best_err) {
      best = cand;
      best_err = e;
    }
  }
  return best;
}

// tr(E·H·Eᵀ) for E rows × cols and symmetric H, in column blocks: each off-diagonal block pair
// once (doubled), so about rows·cols² flops instead of twice that.
double trace_quadratic(const float* E, int64_t rows, int64_t cols, const float* H) {
  constexpr int64_t kCols = 256;
  std::vector<float> M(static_cast<size_t>(rows * std::min(kCols, cols)));
  const int64_t ldm = std::min(kCols, cols);
  double sum = 0.0;
  for (int64_t b0 = 0; b0 < cols; b0 += kCols) {
    const int64_t nb = std::min(kCols, cols - b0);
    linalg::gemm(false, false, rows, nb, nb, 1.0f, E + b0, cols, H + b0 * cols + b0, cols, 0.0f, M.data(), ldm);
    if (b0 > 0) linalg::gemm(false, false, rows, nb, b0, 2.0f, E, cols, H + b0, cols, 1.0f, M.data(), ldm);
#pragma omp parallel for reduction(+ : sum) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0.0;
      for (int64_t j = 0; j < nb; ++j) s += static_cast<double>(M[r * ldm + j]) * E[r * cols + b0 + j];
      sum += s;
    }
  }
  return sum;
}

}  // namespace

bool gptq_supports(TensorType type) { return find_format(type) != nullptr; }

GptqReport gptq_quantize(TensorType type, const float* W, int64_t rows, int64_t cols, const float* H,
                         const GptqOptions& opt, uint8_t* out) {
  const Format* fmt = find_format(type);
  if (fmt == nullptr) throw std::invalid_argument("gptq: cannot write " + type_name(static_cast<uint32_t>(type)));
  const Format& f = *fmt;
  const TypeTraits* traits = type_traits(type);
  if (rows < 0 || cols <= 0) {
    throw std::invalid_argument("gptq: bad shape " + std::to_string(rows) + " x " + std::to_string(cols));
  }
  const int64_t G = f.group > 0 ? f.group : cols;
  if (cols % traits->block_elems != 0 || cols % G != 0) {
    throw std::invalid_argument("gptq: " + std::string(traits->name) + " rows of " + std::to_string(cols) +
                                " elements are not whole groups of " + std::to_string(traits->block_elems));
  }
  if (!(opt.damp >= 0.0f) || !std::isfinite(opt.damp)) throw std::invalid_argument("gptq: damp must be ≥ 0");
  if (opt.block <= 0) throw std::invalid_argument("gptq: block must be positive");
  GptqReport rep;
  if (rows == 0) return rep;
  if (W == nullptr || H == nullptr || out == nullptr) throw std::invalid_argument("gptq: null pointer");

  // Non-finite inputs would spread through every later column; refuse them up front.
  bool finite = true;
#pragma omp parallel for reduction(&& : finite) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) finite = finite && std::isfinite(W[r * cols + c]);
  }
  if (!finite) throw std::invalid_argument("gptq: W has a non-finite value");
#pragma omp parallel for reduction(&& : finite) schedule(static)
  for (int64_t r = 0; r < cols; ++r) {
    for (int64_t c = 0; c < cols; ++c) finite = finite && std::isfinite(H[r * cols + c]);
  }
  if (!finite) throw std::invalid_argument("gptq: H has a non-finite value");

  const int64_t S = f.sub > 0 ? f.sub : cols;
  const int64_t nsub = cols / S;
  const int64_t gbytes = f.group > 0 ? static_cast<int64_t>(traits->block_bytes) * (G / traits->block_elems) : 0;
  const auto rb = static_cast<int64_t>(row_bytes(static_cast<uint32_t>(type), static_cast<uint64_t>(cols)));
  const auto n = static_cast<size_t>(cols);

  // Dead inputs (never active in calibration) get H_jj = 1 and zero weights, as in the reference:
  // their weights do not affect the loss, and the 1 keeps H' invertible.
  std::vector<uint8_t> dead(n);
  std::vector<double> diag(n);
  double mean_diag = 0.0;
  for (int64_t c = 0; c < cols; ++c) {
    const float h = H[c * cols + c];
    if (!(h >= 0.0f) || !std::isfinite(h)) {
      throw std::invalid_argument("gptq: H[" + std::to_string(c) + "][" + std::to_string(c) +
                                  "] is negative or not finite; H must be XᵀX");
    }
    dead[c] = h == 0.0f;
    diag[c] = dead[c] ? 1.0 : h;
    mean_diag += diag[c];
    rep.dead += dead[c];
  }
  mean_diag /= static_cast<double>(cols);
  auto w0 = [&](int64_t r, int64_t c) { return dead[c] ? 0.0f : W[r * cols + c]; };

  // Processing order: perm[j] is the original column handled j-th.
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), int64_t{0});
  if (opt.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return diag[a] > diag[b]; });
  }

  // R = J·P·H'·Pᵀ·J (J reverses the order), whose lower Cholesky factor reversed is Ũ.
  std::vector<float> R(n * n);
  double damp = opt.damp, lambda = 0.0;
  for (int attempt = 0;; ++attempt) {
    lambda = damp * mean_diag;
#pragma omp parallel for schedule(dynamic, 64)  // triangular: rows grow
    for (int64_t a = 0; a < cols; ++a) {
      const int64_t pa = perm[cols - 1 - a];
      for (int64_t b = 0; b <= a; ++b) {
        const int64_t pb = perm[cols - 1 - b];
        R[a * cols + b] = pa == pb ? static_cast<float>(diag[pa] + lambda) : H[pa * cols + pb];
      }
    }
    if (linalg::cholesky_lower(R.data(), cols, cols)) break;
    if (attempt == 4) {
      throw std::runtime_error("gptq: the Hessian is not positive definite even with damping " +
                               std::to_string(damp) + " × mean(diag H)");
    }
    damp = damp > 0.0 ? damp * 10.0 : 0.01;
  }
  rep.damp = damp;
  // Reversing the whole row-major array maps (i, j) to (n−1−i, n−1−j): R becomes Ũ. Then V = Ũ
  // with each column divided by its diagonal entry (kept in ud for the loss).
  std::reverse(R.begin(), R.end());
  std::vector<float> ud(n);
  for (int64_t j = 0; j < cols; ++j) ud[j] = R[j * cols + j];
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t a = 0; a < cols; ++a) {
    for (int64_t b = a + 1; b < cols; ++b) R[a * cols + b] /= ud[b];
  }
  const float* V = R.data();

  std::vector<LevelPos> pos(static_cast<size_t>(G));
  for (int64_t e = 0; e < G; ++e) pos[e] = f.pos(e);
  std::vector<float> step(static_cast<size_t>(rows * nsub)), off(step.size());
  auto group_bytes = [&](int64_t r, int64_t c) { return out + r * rb + (c / G) * gbytes; };
  auto load_grid = [&](int64_t r, int64_t g) {
    const uint8_t* gp = out + r * rb + g * gbytes;
    for (int64_t s = 0; s < G / S; ++s) {
      const int64_t i = r * nsub + g * (G / S) + s;
      f.grid(gp, s, &step[i], &off[i]);
    }
  };

  std::vector<float> Wp(static_cast<size_t>(rows) * n), W0p;  // filled below
  // Levels in processing order: the quantizer's own level when a group's parameters are set,
  // replaced by GPTQ's choice; written into the blocks at the end (in act_order's order, reading
  // and writing them in place would miss the cache on every column).
  std::vector<int8_t> lv(static_cast<size_t>(rows) * n);
  // act_order uses static groups: every group's parameters from the original weights up front,
  // so the stored layout does not depend on the processing order.
  std::vector<float> snap;  // without act_order: the weights the current group's quantizer saw
  // Without dead inputs the static groups are exactly RTN's bytes: take rtn_loss from them (into
  // Wp, not filled yet) instead of running the quantizer over W a second time.
  const bool rtn_from_static = opt.act_order && opt.compute_rtn_loss && rep.dead == 0;
  if (opt.act_order) {
#pragma omp parallel
    {
      std::vector<float> row(n);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) row[c] = w0(r, c);
        quantize_row(type, row.data(), cols, out + r * rb);
        for (int64_t g = 0; g < cols / G; ++g) load_grid(r, g);
        for (int64_t j = 0; j < cols; ++j) {
          const int64_t c = perm[j];
          lv[r * cols + j] = static_cast<int8_t>(read_level(f, group_bytes(r, c), pos[c % G]));
        }
        if (rtn_from_static) {
          dequantize_row(type, out + r * rb, cols, row.data());
          for (int64_t c = 0; c < cols; ++c) Wp[r * cols + c] = W[r * cols + c] - row[c];
        }
      }
    }
    if (rtn_from_static) rep.rtn_loss = trace_quadratic(Wp.data(), rows, cols, H);
  } else {
    snap.resize(static_cast<size_t>(rows * G));
  }

  // Working weights in processing order, and with act_order a second copy that stays the
  // original weights (W0 in the algebra above) in that order: gathering them from W column by
  // column would miss the cache on every read.
  if (opt.act_order) W0p.resize(Wp.size());
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < cols; ++j) Wp[r * cols + j] = w0(r, perm[j]);
    if (opt.act_order) std::copy(Wp.begin() + r * cols, Wp.begin() + (r + 1) * cols, W0p.begin() + r * cols);
  }
  // W0 of row r, processing position j.
  auto w0j = [&](int64_t r, int64_t j) { return opt.act_order ? W0p[r * cols + j] : w0(r, j); };

  // Batch width: a group must never straddle a batch end unless it starts at a batch start
  // (then the later columns already have every earlier batch's update when it is quantized).
  int64_t B = std::min(opt.block, cols);
  if (G < cols) {
    if (G <= B) {
      B -= B % G;
    } else {
      while (G % B != 0) --B;
    }
  }
  std::vector<float> D(static_cast<size_t>(rows * B));  // W0 − Q of the batch's columns

  double err2 = 0.0, correction = 0.0;
  for (int64_t i1 = 0; i1 < cols; i1 += B) {
    const int64_t i2 = std::min(cols, i1 + B);
#pragma omp parallel for reduction(+ : err2, correction) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      float* wr = Wp.data() + r * cols;
      float* dr = D.data() + r * B;
      for (int64_t j = i1; j < i2; ++j) {
        const int64_t c = perm[j];
        if (!opt.act_order && c % G == 0) {
          // A group starts: its parameters from the type's quantizer on the current weights.
          uint8_t* gp = group_bytes(r, c);
          quantize_row(type, wr + c, G, gp);
          load_grid(r, c / G);
          std::copy(wr + c, wr + c + G, snap.begin() + r * G);
          for (int64_t e = 0; e < G; ++e) lv[r * cols + c + e] = static_cast<int8_t>(read_level(f, gp, pos[e]));
        }
        const float w = wr[j];
        const float seen = opt.act_order ? w0j(r, j) : snap[r * G + c % G];
        const int64_t si = r * nsub + c / S;
        const int rtn = lv[r * cols + j];
        // A weight no error reached keeps the quantizer's own level (it may differ from the
        // nearest grid point in the last bit, e.g. Q4_0 rounds with the unrounded f32 scale).
        const int level = w == seen ? rtn : nearest_level(f, w, step[si], off[si], rtn);
        lv[r * cols + j] = static_cast<int8_t>(level);
        const float q = level_value(f, level, step[si], off[si]);
        const float dw = w0j(r, j) - q;
        const double e = static_cast<double>(w - q) * ud[j];
        err2 += e * e;
        correction += (lambda + (dead[c] ? 1.0 : 0.0)) * static_cast<double>(dw) * dw;
        dr[j - i1] = dw;
        const float* v = V + j * cols;
        for (int64_t k = j + 1; k < i2; ++k) wr[k] += dw * v[k];
      }
    }
    if (i2 < cols) {
      linalg::gemm(false, false, rows, cols - i2, i2 - i1, 1.0f, D.data(), B, V + i1 * cols + i2, cols, 1.0f,
                   Wp.data() + i2, cols);
    }
  }
  rep.gptq_loss = std::max(0.0, err2 - correction);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t c = perm[j];
      write_level(f, group_bytes(r, c), pos[c % G], lv[r * cols + j]);
    }
  }

  if (opt.compute_rtn_loss && !rtn_from_static) {
    // E = W − RTN(W), in Wp (no longer needed).
#pragma omp parallel
    {
      std::vector<uint8_t> bytes(static_cast<size_t>(rb));
      std::vector<float> vals(n);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        quantize_row(type, W + r * cols, cols, bytes.data());
        dequantize_row(type, bytes.data(), cols, vals.data());
        for (int64_t c = 0; c < cols; ++c) Wp[r * cols + c] = W[r * cols + c] - vals[c];
      }
    }
    rep.rtn_loss = trace_quadratic(Wp.data(), rows, cols, H);
  }
  return rep;
}

}  // namespace nibble
