// Scalar row conversions. The quantizers for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q6_K follow llama.cpp's
// quantize_row_*_ref arithmetic step for step (float operations in the same order), because files
// written by nibble must be bit-identical to the ones llama.cpp's tools would write from the same
// floats. Q2_K, Q3_K, Q4_K, Q5_K, IQ4_NL and IQ4_XS have nibble's own error-minimising searches
// (same block layouts, so llama.cpp reads them; see the section below).
#include "kernels/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/fp16.h"
#include "kernels/quant_tables.h"
#include "kernels/unaligned.h"

namespace nibble {
namespace {

using detail::load_u16;
using detail::load_u32;
void store_f16(uint8_t* p, float f) {
  const uint16_t h = fp32_to_fp16(f);
  std::memcpy(p, &h, 2);
}

void check_blocks(TensorType type, int64_t n) {
  const TypeTraits* t = type_traits(type);
  if (t == nullptr) throw std::invalid_argument("unknown tensor type");
  if (n < 0 || n % t->block_elems != 0) {
    throw std::invalid_argument(std::string(t->name) + " row of " + std::to_string(n) +
                                " elements is not a whole number of blocks");
  }
}

// Q4_0 (G = 32) and nibble's Q4_G64 / Q4_G128: fp16 d, then G/2 bytes whose low nibbles are
// elements 0..G/2-1 and high nibbles G/2..G-1, value d·(q − 8).
template <int G>
void dequant_q4_g(const uint8_t* b, float* y) {
  const float d = fp16_at(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < G / 2; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
    y[j + G / 2] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

void dequant_q4_1(const uint8_t* b, float* y) {
  const float d = fp16_at(b), m = fp16_at(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
    y[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

// Q5_0 / Q5_1 share the 5-bit assembly; only the affine map differs.
void q5_values(const uint8_t* qh_bytes, const uint8_t* qs, int* q) {
  const uint32_t qh = load_u32(qh_bytes);
  for (int e = 0; e < 32; ++e) {
    const int low4 = e < 16 ? (qs[e] & 0x0F) : (qs[e - 16] >> 4);
    q[e] = low4 | static_cast<int>((qh >> e) & 1u) << 4;
  }
}

void dequant_q5_0(const uint8_t* b, float* y) {
  const float d = fp16_at(b);
  int q[32];
  q5_values(b + 2, b + 6, q);
  for (int e = 0; e < 32; ++e) y[e] = d * static_cast<float>(q[e] - 16);
}

void dequant_q5_1(const uint8_t* b, float* y) {
  const float d = fp16_at(b), m = fp16_at(b + 2);
  int q[32];
  q5_values(b + 4, b + 8, q);
  for (int e = 0; e < 32; ++e) y[e] = d * static_cast<float>(q[e]) + m;
}

void dequant_q8_0(const uint8_t* b, float* y) {
  const float d = fp16_at(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int e = 0; e < 32; ++e) y[e] = d * static_cast<float>(qs[e]);
}

void dequant_q4_k(const uint8_t* b, float* y) {
  const float d = fp16_at(b), dmin = fp16_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32, c = e / 64, l = e % 32;
    int sc, m;
    k4_scale_min(scales, sub, &sc, &m);
    const uint8_t byte = qs[32 * c + l];
    const int q = (e % 64) < 32 ? (byte & 0x0F) : (byte >> 4);
    y[e] = d * static_cast<float>(sc) * static_cast<float>(q) - dmin * static_cast<float>(m);
  }
}

void dequant_q5_k(const uint8_t* b, float* y) {
  const float d = fp16_at(b), dmin = fp16_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32, c = e / 64, l = e % 32;
    int sc, m;
    k4_scale_min(scales, sub, &sc, &m);
    const uint8_t byte = qs[32 * c + l];
    const int low4 = (e % 64) < 32 ? (byte & 0x0F) : (byte >> 4);
    const int q = low4 + 16 * ((qh[l] >> sub) & 1);
    y[e] = d * static_cast<float>(sc) * static_cast<float>(q) - dmin * static_cast<float>(m);
  }
}

void dequant_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = fp16_at(b + 208);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, j = (e % 128) / 32, l = e % 32;
    const uint8_t byte = ql[64 * h + 32 * (j % 2) + l];
    const int low4 = j < 2 ? (byte & 0x0F) : (byte >> 4);
    const int high2 = (qh[32 * h + l] >> (2 * j)) & 3;
    const int q = (low4 | high2 << 4) - 32;
    y[e] = d * static_cast<float>(scales[e / 16]) * static_cast<float>(q);
  }
}

// Q2_K: 16 sub-blocks of 16, each with a 4-bit scale (low nibble) and 4-bit min (high nibble).
void dequant_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = fp16_at(b + 80), dmin = fp16_at(b + 82);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, j = (e % 128) / 32, l = e % 32;
    const int q = (qs[32 * h + l] >> (2 * j)) & 3;
    const uint8_t s = scales[e / 16];
    y[e] = d * static_cast<float>(s & 0x0F) * static_cast<float>(q) - dmin * static_cast<float>(s >> 4);
  }
}

// Q3_K's sixteen signed 6-bit scales, unpacked from 12 bytes.
int q3_k_scale(const uint8_t* b, int k) {
  const int low4 = k < 8 ? (b[k] & 0x0F) : (b[k - 8] >> 4);
  const int high2 = (b[8 + k % 4] >> (2 * (k / 4))) & 3;
  return (low4 | high2 << 4) - 32;
}

void dequant_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const float d = fp16_at(b + 108);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, j = (e % 128) / 32, l = e % 32;
    const int low2 = (qs[32 * h + l] >> (2 * j)) & 3;
    const int hbit = (hmask[l] >> (4 * h + j)) & 1;
    const int q = low2 - (hbit ? 0 : 4);
    y[e] = d * static_cast<float>(q3_k_scale(b + 96, e / 16)) * static_cast<float>(q);
  }
}

void dequant_iq4_nl(const uint8_t* b, float* y) {
  const float d = fp16_at(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(kIQ4NLValues[qs[j] & 0x0F]);
    y[j + 16] = d * static_cast<float>(kIQ4NLValues[qs[j] >> 4]);
  }
}

void dequant_iq4_xs(const uint8_t* b, float* y) {
  const float d = fp16_at(b);
  const uint16_t scales_h = load_u16(b + 2);
  const uint8_t* scales_l = b + 4;
  const uint8_t* qs = b + 8;
  for (int ib = 0; ib < 8; ++ib) {
    const int ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F) | ((scales_h >> (2 * ib)) & 3) << 4;
    const float dl = d * static_cast<float>(ls - 32);
    for (int j = 0; j < 16; ++j) {
      const uint8_t byte = qs[16 * ib + j];
      y[32 * ib + j] = dl * static_cast<float>(kIQ4NLValues[byte & 0x0F]);
      y[32 * ib + j + 16] = dl * static_cast<float>(kIQ4NLValues[byte >> 4]);
    }
  }
}

void quant_q8_0(const float* x, uint8_t* b) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(b, d);
  int8_t* qs = reinterpret_cast<int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
}

// Q4_0 (G = 32, bit-exact with llama.cpp's reference) and Q4_G64 / Q4_G128: the signed extreme
// maps to −8 exactly, so the full 16-level range is used on its side.
template <int G>
void quant_q4_g(const float* x, uint8_t* b) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < G; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(b, d);
  uint8_t* qs = b + 2;
  for (int j = 0; j < G / 2; ++j) {
    const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
    const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + G / 2] * id + 8.5f)));
    qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
  }
}

// Q8_C: one scale per row (amax/127), values rounded to nearest like Q8_0.
void quant_q8_c_row(const float* x, int64_t n, uint8_t* row) {
  float amax = 0.0f;
  for (int64_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  std::memcpy(row, &d, 4);
  int8_t* qs = reinterpret_cast<int8_t*>(row + 4);
  for (int64_t j = 0; j < n; ++j) qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
}

void dequant_q8_c_row(const uint8_t* row, int64_t n, float* y) {
  float d;
  std::memcpy(&d, row, 4);
  const int8_t* qs = reinterpret_cast<const int8_t*>(row + 4);
  for (int64_t j = 0; j < n; ++j) y[j] = d * static_cast<float>(qs[j]);
}

// Q4_1: 15 steps between the block's min and max; m is the min itself, so x ≥ m.
void quant_q4_1(const float* x, uint8_t* b) {
  float min = std::numeric_limits<float>::max(), max = -std::numeric_limits<float>::max();
  for (int j = 0; j < 32; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(b, d);
  store_f16(b + 2, min);
  uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    const float x0 = (x[j] - min) * id, x1 = (x[j + 16] - min) * id;
    const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x0 + 0.5f)));
    const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(x1 + 0.5f)));
    qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
  }
}

// Q5_0 / Q5_1 store the fifth bit of element j as bit j of qh.
void pack_q5(const int* q, uint8_t* qh_bytes, uint8_t* qs) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | (q[j + 16] & 0x0F) << 4);
    qh |= static_cast<uint32_t>((q[j] & 0x10) >> 4) << j;
    qh |= static_cast<uint32_t>((q[j + 16] & 0x10) >> 4) << (j + 16);
  }
  std::memcpy(qh_bytes, &qh, 4);
}

// Q5_0: like Q4_0 with 32 levels, the signed extreme mapping to −16.
void quant_q5_0(const float* x, uint8_t* b) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -16.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(b, d);
  int q[32];
  for (int j = 0; j < 32; ++j) {
    // uint8_t then MIN in llama.cpp: the int8 cast wraps exactly like this.
    q[j] = static_cast<uint8_t>(std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f))));
  }
  pack_q5(q, b + 2, b + 6);
}

// Q5_1: 31 steps between min and max; no clamp (the max lands on 31 + rounding < 32).
void quant_q5_1(const float* x, uint8_t* b) {
  float min = std::numeric_limits<float>::max(), max = -std::numeric_limits<float>::max();
  for (int j = 0; j < 32; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / 31.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(b, d);
  store_f16(b + 2, min);
  int q[32];
  for (int j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>((x[j] - min) * id + 0.5f);
  pack_q5(q, b + 4, b + 8);
}

// llama.cpp's nearest_int: adding 1.5·2^23 leaves round-to-nearest-even of fval in the low
// mantissa bits (valid for |fval| < 2^22).
int nearest_int(float fval) {
  const float val = fval + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &val, 4);
  return (i & 0x007FFFFF) - 0x00400000;
}

// make_qx_quants with rmse_type 1 and no importance weights (the Q6_K reference): scale for n
// values into integers −nmax..nmax−1, trying 19 scales around nmax/max and keeping the one with
// the best weighted (w = x²) least-squares fit. L receives l + nmax. Float operations in
// llama.cpp's order so the chosen scale is bit-identical.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0.0f, amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {  // GROUP_MAX_EPS: all zero
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  auto clamp_l = [nmax](int l) { return std::max(-nmax, std::min(nmax - 1, l)); };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_l(nearest_int(iscale * x[i]));
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_l(nearest_int(iscale * x[i]));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * static_cast<float>(l);
      suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + clamp_l(nearest_int(iscale * x[i])));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q6_K (quantize_row_q6_K_ref): a float scale per 16-element sub-block from make_qx_quants, then
// those scales quantised to int8 against the largest-magnitude one (which maps to −128 → clamped
// 127 side), then every value re-quantised with its final fp16·int8 scale.
void quant_q6_k(const float* x, uint8_t* b) {
  int8_t L[256];
  float scales[16];
  float max_scale = 0.0f, max_abs_scale = 0.0f;
  for (int ib = 0; ib < 16; ++ib) {
    scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
    const float abs_scale = std::fabs(scales[ib]);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scales[ib];
    }
  }
  std::memset(b, 0, 210);
  if (max_abs_scale < 1e-15f) return;  // all-zero super-block: everything 0, d = +0
  const float iscale = -128.0f / max_scale;
  store_f16(b + 208, 1.0f / iscale);
  int8_t* sc = reinterpret_cast<int8_t*>(b + 192);
  for (int ib = 0; ib < 16; ++ib) sc[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  const float d_super = fp16_at(b + 208);
  for (int j = 0; j < 16; ++j) {
    const float d = d_super * static_cast<float>(sc[j]);
    if (d == 0.0f) continue;  // keeps make_qx_quants' levels, as the reference does
    for (int i = 0; i < 16; ++i) {
      const int l = std::max(-32, std::min(31, nearest_int(x[16 * j + i] / d)));
      L[16 * j + i] = static_cast<int8_t>(l + 32);
    }
  }
  uint8_t* ql = b;
  uint8_t* qh = b + 128;
  for (int h = 0; h < 2; ++h) {
    const int8_t* Lh = L + 128 * h;
    for (int l = 0; l < 32; ++l) {
      ql[64 * h + l] = static_cast<uint8_t>((Lh[l] & 0x0F) | (Lh[l + 64] & 0x0F) << 4);
      ql[64 * h + l + 32] = static_cast<uint8_t>((Lh[l + 32] & 0x0F) | (Lh[l + 96] & 0x0F) << 4);
      qh[32 * h + l] = static_cast<uint8_t>((Lh[l] >> 4) | (Lh[l + 32] >> 4) << 2 | (Lh[l + 64] >> 4) << 4 |
                                            (Lh[l + 96] >> 4) << 6);
    }
  }
}

// ---- nibble's own quantizers for Q2_K, Q3_K, Q4_K, Q5_K, IQ4_NL and IQ4_XS ----
// Files in these types are not meant to be bit-identical to llama.cpp's: the search is ours and
// only the block layouts must match. Two levels in every format: a float scale
// (and min) per sub-block found by a search that minimises the weighted squared error, then those
// scales quantised to the format's small integers against an fp16 super-block scale, then every
// value re-rounded with the scales the file really holds and the super-block scale(s) refitted by
// least squares. Each quantizer can also report the values it meant to store (`y`), computed with
// the dequantiser's float expressions so tests can compare them bit for bit.

// Error weights: σ + |x| (σ the super-block's RMS). Large weights dominate dot products, so
// fitting them more closely lowers the output error more than the same gain spread over the many
// small ones; the σ term keeps small values from being ignored. (Pure squared error and σ² + x²
// give within ±2 % of the same plain RMS error on Gaussian rows.)
void error_weights(const float* x, int n, float* w) {
  float s2 = 0.0f;
  for (int i = 0; i < n; ++i) s2 += x[i] * x[i];
  const float sigma = std::sqrt(s2 / static_cast<float>(n));
  for (int i = 0; i < n; ++i) w[i] = sigma + std::fabs(x[i]);
}

// round-to-nearest into lo..hi; the float is clamped first, so a tiny trial scale cannot push
// nearest_int out of its exact range.
int round_clamped(float v, int lo, int hi) {
  v = std::max(static_cast<float>(lo) - 1.0f, std::min(static_cast<float>(hi) + 1.0f, v));
  return std::max(lo, std::min(hi, nearest_int(v)));
}

// Levels 0..nmax for x ≈ a·q + b with a ≥ 0 and b ≤ 0 (the formats store the offset as a
// subtracted non-negative min). Candidate steps (max − min)/(nmax·f) for f from 0.85 to 1.6 (the
// larger f clip the extremes, which often pays in a Gaussian block), each refined by
// alternating rounding and a weighted least-squares refit of (a, b); the best fit wins.
struct AffineFit {
  float a = 0.0f, b = 0.0f;
};
AffineFit fit_affine(const float* x, const float* w, int n, int nmax) {
  float xmin = x[0], xmax = x[0];
  for (int i = 1; i < n; ++i) {
    xmin = std::min(xmin, x[i]);
    xmax = std::max(xmax, x[i]);
  }
  xmin = std::min(xmin, 0.0f);
  if (xmax - xmin < 1e-30f) return {0.0f, xmin};  // constant block: the offset alone is exact
  auto round_q = [&](float a, float b, int i) { return round_clamped((x[i] - b) / a, 0, nmax); };
  auto error = [&](float a, float b) {
    float e = 0.0f;
    for (int i = 0; i < n; ++i) {
      const float d = a * static_cast<float>(round_q(a, b, i)) + b - x[i];
      e += w[i] * d * d;
    }
    return e;
  };
  AffineFit best{(xmax - xmin) / static_cast<float>(nmax), xmin};
  float best_err = error(best.a, best.b);
  for (int is = -3; is <= 12; ++is) {
    float a = (xmax - xmin) / (static_cast<float>(nmax) * (1.0f + 0.05f * static_cast<float>(is))), b = xmin;
    for (int iter = 0; iter < 3; ++iter) {
      float sw = 0, sq = 0, sqq = 0, sx = 0, sqx = 0;
      for (int i = 0; i < n; ++i) {
        const auto q = static_cast<float>(round_q(a, b, i));
        sw += w[i];
        sq += w[i] * q;
        sqq += w[i] * q * q;
        sx += w[i] * x[i];
        sqx += w[i] * q * x[i];
      }
      const float det = sw * sqq - sq * sq;
      if (!(det > 0.0f)) break;
      float na = (sw * sqx - sq * sx) / det, nb = (sqq * sx - sq * sqx) / det;
      if (nb > 0.0f) {  // the min cannot be negative: refit the scale alone through 0
        nb = 0.0f;
        na = sqx / sqq;
      }
      if (!(na > 0.0f)) break;
      a = na;
      b = nb;
      const float e = error(a, b);
      if (e < best_err) {
        best_err = e;
        best = {a, b};
      }
    }
  }
  return best;
}

// Levels −nmax..nmax−1 for x ≈ s·q (s may be negative: the extreme value goes to −nmax, the side
// with the extra level). Same candidate-and-refit search as fit_affine.
float fit_symmetric(const float* x, const float* w, int n, int nmax) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < 1e-30f) return 0.0f;
  auto round_q = [&](float s, int i) { return round_clamped(x[i] / s, -nmax, nmax - 1); };
  auto error = [&](float s) {
    float e = 0.0f;
    for (int i = 0; i < n; ++i) {
      const float d = s * static_cast<float>(round_q(s, i)) - x[i];
      e += w[i] * d * d;
    }
    return e;
  };
  float best = max / -static_cast<float>(nmax);
  float best_err = error(best);
  for (int is = -3; is <= 12; ++is) {
    float s = max / -(static_cast<float>(nmax) * (1.0f + 0.05f * static_cast<float>(is)));
    for (int iter = 0; iter < 3; ++iter) {
      float sqq = 0, sqx = 0;
      for (int i = 0; i < n; ++i) {
        const auto q = static_cast<float>(round_q(s, i));
        sqq += w[i] * q * q;
        sqx += w[i] * q * x[i];
      }
      if (!(sqq > 0.0f) || sqx == 0.0f) break;
      s = sqx / sqq;
      const float e = error(s);
      if (e < best_err) {
        best_err = e;
        best = s;
      }
    }
  }
  return best;
}

// Nearest entry of the IQ4_NL table (sorted ascending) to v, by the midpoints.
int nearest_iq4(float v) {
  static constexpr float kMid[15] = {-115.5f, -93.5f, -74.0f, -57.0f, -42.0f, -28.5f, -16.0f, -4.5f,
                                     7.0f,    19.0f,  31.5f,  45.5f,  61.0f,  79.0f,  101.0f};
  return static_cast<int>(std::upper_bound(kMid, kMid + 15, v) - kMid);
}

// x ≈ s·K[q] for the IQ4_NL table K: candidates map the extreme value near either end of the
// table (−127 or 113, since K is not symmetric), each refined by rounding/refitting.
float fit_iq4(const float* x, const float* w, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < 1e-30f) return 0.0f;
  auto error = [&](float s) {
    float e = 0.0f;
    for (int i = 0; i < n; ++i) {
      const float d = s * static_cast<float>(kIQ4NLValues[nearest_iq4(x[i] / s)]) - x[i];
      e += w[i] * d * d;
    }
    return e;
  };
  float best = max / -127.0f;
  float best_err = error(best);
  for (const float end : {-127.0f, 113.0f}) {
    for (int is = -2; is <= 8; ++is) {
      float s = max / (end * (1.0f + 0.04f * static_cast<float>(is)));
      for (int iter = 0; iter < 2; ++iter) {
        float skk = 0, skx = 0;
        for (int i = 0; i < n; ++i) {
          const auto k = static_cast<float>(kIQ4NLValues[nearest_iq4(x[i] / s)]);
          skk += w[i] * k * k;
          skx += w[i] * k * x[i];
        }
        if (!(skk > 0.0f) || skx == 0.0f) break;
        s = skx / skk;
        const float e = error(s);
        if (e < best_err) {
          best_err = e;
          best = s;
        }
      }
    }
  }
  return best;
}

// Rounds v to fp16 and back: the precision the file keeps.
float f16_round(float v) { return fp16_to_fp32(fp32_to_fp16(v)); }

// Integer fields of the affine K-quants (Q2_K, Q4_K, Q5_K): value = d·sc[s]·q − dmin·mn[s].
struct AffineSuperBlock {
  float d = 0.0f, dmin = 0.0f;
  int sc[16] = {}, mn[16] = {};
  int q[256] = {};
};

// nsub sub-blocks of `len` values at levels 0..nmax; sub-block scales and mins in 0..smax.
void quantize_affine_super(const float* x, int nsub, int len, int nmax, int smax, AffineSuperBlock& o) {
  const int n = nsub * len;
  float w[256];
  error_weights(x, n, w);
  float a[16], m[16], amax = 0.0f, mmax = 0.0f;
  for (int s = 0; s < nsub; ++s) {
    const AffineFit f = fit_affine(x + s * len, w + s * len, len, nmax);
    a[s] = f.a;
    m[s] = -f.b;
    amax = std::max(amax, a[s]);
    mmax = std::max(mmax, m[s]);
  }
  o.d = f16_round(amax / static_cast<float>(smax));
  o.dmin = f16_round(mmax / static_cast<float>(smax));
  for (int s = 0; s < nsub; ++s) {
    o.sc[s] = o.d > 0.0f ? round_clamped(a[s] / o.d, 0, smax) : 0;
    o.mn[s] = o.dmin > 0.0f ? round_clamped(m[s] / o.dmin, 0, smax) : 0;
  }
  // Levels for given super-block scales, and the weighted error they leave.
  auto requant = [&](float d, float dmin, int* q) {
    float e = 0.0f;
    for (int s = 0; s < nsub; ++s) {
      const float step = d * static_cast<float>(o.sc[s]), off = dmin * static_cast<float>(o.mn[s]);
      for (int i = s * len; i < (s + 1) * len; ++i) {
        q[i] = step > 0.0f ? round_clamped((x[i] + off) / step, 0, nmax) : 0;
        const float r = step * static_cast<float>(q[i]) - off - x[i];
        e += w[i] * r * r;
      }
    }
    return e;
  };
  float err = requant(o.d, o.dmin, o.q);
  // The integer scales are fixed now; d and dmin can still move to fit them better:
  // x ≈ d·u − dmin·v with u = sc·q and v = mn is linear in (d, dmin).
  for (int iter = 0; iter < 2; ++iter) {
    float suu = 0, suv = 0, svv = 0, sux = 0, svx = 0;
    for (int s = 0; s < nsub; ++s) {
      for (int i = s * len; i < (s + 1) * len; ++i) {
        const auto u = static_cast<float>(o.sc[s] * o.q[i]), v = static_cast<float>(o.mn[s]);
        suu += w[i] * u * u;
        suv += w[i] * u * v;
        svv += w[i] * v * v;
        sux += w[i] * u * x[i];
        svx += w[i] * v * x[i];
      }
    }
    float d, dmin;
    const float det = suu * svv - suv * suv;
    if (svv > 0.0f && det > 0.0f) {
      d = (sux * svv - suv * svx) / det;
      dmin = (suv * sux - suu * svx) / det;
    } else if (suu > 0.0f) {
      d = sux / suu;
      dmin = o.dmin;
    } else {
      break;
    }
    d = f16_round(d);
    dmin = f16_round(dmin);
    if (!(d > 0.0f) || dmin < 0.0f) break;
    int q[256];
    const float e = requant(d, dmin, q);
    if (!(e < err)) break;
    err = e;
    o.d = d;
    o.dmin = dmin;
    std::copy(q, q + n, o.q);
  }
}

// The affine K-quants' values, with the dequantisers' expression (d·sc·q − dmin·m).
void affine_values(const AffineSuperBlock& o, int len, float* y) {
  if (y == nullptr) return;
  for (int e = 0; e < 256; ++e) {
    const int s = e / len;
    y[e] = o.d * static_cast<float>(o.sc[s]) * static_cast<float>(o.q[e]) - o.dmin * static_cast<float>(o.mn[s]);
  }
}

void quant_q2_k(const float* x, uint8_t* b, float* y) {
  AffineSuperBlock o;
  quantize_affine_super(x, 16, 16, 3, 15, o);
  std::memset(b, 0, 84);
  for (int s = 0; s < 16; ++s) b[s] = static_cast<uint8_t>(o.sc[s] | o.mn[s] << 4);
  uint8_t* qs = b + 16;
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, j = (e % 128) / 32, l = e % 32;
    qs[32 * h + l] |= static_cast<uint8_t>(o.q[e] << (2 * j));
  }
  store_f16(b + 80, o.d);
  store_f16(b + 82, o.dmin);
  affine_values(o, 16, y);
}

// The 12-byte 6-bit scale/min packing of Q4_K and Q5_K (inverse of k4_scale_min).
void pack_k_scales(const int* sc, const int* mn, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>(sc[j] | (sc[j + 4] >> 4) << 6);
    s[j + 4] = static_cast<uint8_t>(mn[j] | (mn[j + 4] >> 4) << 6);
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0x0F) | (mn[j + 4] & 0x0F) << 4);
  }
}

void quant_q4_k(const float* x, uint8_t* b, float* y) {
  AffineSuperBlock o;
  quantize_affine_super(x, 8, 32, 15, 63, o);
  store_f16(b, o.d);
  store_f16(b + 2, o.dmin);
  pack_k_scales(o.sc, o.mn, b + 4);
  uint8_t* qs = b + 16;
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) qs[32 * c + l] = static_cast<uint8_t>(o.q[64 * c + l] | o.q[64 * c + 32 + l] << 4);
  }
  affine_values(o, 32, y);
}

void quant_q5_k(const float* x, uint8_t* b, float* y) {
  AffineSuperBlock o;
  quantize_affine_super(x, 8, 32, 31, 63, o);
  store_f16(b, o.d);
  store_f16(b + 2, o.dmin);
  pack_k_scales(o.sc, o.mn, b + 4);
  uint8_t* qh = b + 16;
  uint8_t* qs = b + 48;
  std::memset(qh, 0, 32);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int q0 = o.q[64 * c + l], q1 = o.q[64 * c + 32 + l];
      qs[32 * c + l] = static_cast<uint8_t>((q0 & 0x0F) | (q1 & 0x0F) << 4);
      qh[l] |= static_cast<uint8_t>((q0 >> 4) << (2 * c) | (q1 >> 4) << (2 * c + 1));
    }
  }
  affine_values(o, 32, y);
}

// Q3_K: sixteen sub-blocks of 16 at levels −4..3, signed 6-bit sub-block scales (−32..31).
void quant_q3_k(const float* x, uint8_t* b, float* y) {
  float w[256], s[16];
  error_weights(x, 256, w);
  float smax = 0.0f, sabs = 0.0f;
  for (int k = 0; k < 16; ++k) {
    s[k] = fit_symmetric(x + 16 * k, w + 16 * k, 16, 4);
    if (std::fabs(s[k]) > sabs) {
      sabs = std::fabs(s[k]);
      smax = s[k];
    }
  }
  // The largest sub-block scale maps to −32, the side of the signed range with the extra step.
  float d = f16_round(smax / -32.0f);
  int S[16] = {}, q[256] = {};
  for (int k = 0; k < 16; ++k) S[k] = d != 0.0f ? round_clamped(s[k] / d, -32, 31) : 0;
  auto requant = [&](float dd, int* qq) {
    float e = 0.0f;
    for (int i = 0; i < 256; ++i) {
      const float step = dd * static_cast<float>(S[i / 16]);
      qq[i] = step != 0.0f ? round_clamped(x[i] / step, -4, 3) : 0;
      const float r = step * static_cast<float>(qq[i]) - x[i];
      e += w[i] * r * r;
    }
    return e;
  };
  float err = requant(d, q);
  for (int iter = 0; iter < 2; ++iter) {  // refit d to the integer scales and levels
    float suu = 0, sux = 0;
    for (int i = 0; i < 256; ++i) {
      const auto u = static_cast<float>(S[i / 16] * q[i]);
      suu += w[i] * u * u;
      sux += w[i] * u * x[i];
    }
    if (!(suu > 0.0f)) break;
    const float nd = f16_round(sux / suu);
    int nq[256];
    const float e = requant(nd, nq);
    if (!(e < err)) break;
    err = e;
    d = nd;
    std::copy(nq, nq + 256, q);
  }
  std::memset(b, 0, 110);
  uint8_t* hmask = b;
  uint8_t* qs = b + 32;
  uint8_t* sc = b + 96;
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, j = (e % 128) / 32, l = e % 32;
    const int u = q[e] + 4;  // 0..7: low two bits in qs, the third (set for q ≥ 0) in hmask
    qs[32 * h + l] |= static_cast<uint8_t>((u & 3) << (2 * j));
    hmask[l] |= static_cast<uint8_t>((u >> 2) << (4 * h + j));
  }
  for (int k = 0; k < 16; ++k) {
    const int u = S[k] + 32;
    if (k < 8) {
      sc[k] |= static_cast<uint8_t>(u & 0x0F);
    } else {
      sc[k - 8] |= static_cast<uint8_t>((u & 0x0F) << 4);
    }
    sc[8 + k % 4] |= static_cast<uint8_t>((u >> 4) << (2 * (k / 4)));
  }
  store_f16(b + 108, d);
  if (y != nullptr) {
    for (int e = 0; e < 256; ++e) y[e] = d * static_cast<float>(S[e / 16]) * static_cast<float>(q[e]);
  }
}

void quant_iq4_nl(const float* x, uint8_t* b, float* y) {
  float w[32];
  error_weights(x, 32, w);
  const float d = f16_round(fit_iq4(x, w, 32));
  store_f16(b, d);
  int q[32] = {};
  for (int i = 0; i < 32; ++i) q[i] = d != 0.0f ? nearest_iq4(x[i] / d) : 8;  // 8: the entry nearest 0
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(q[j] | q[j + 16] << 4);
  if (y != nullptr) {
    for (int i = 0; i < 32; ++i) y[i] = d * static_cast<float>(kIQ4NLValues[q[i]]);
  }
}

// IQ4_XS: IQ4_NL's table in eight sub-blocks of 32, each with a signed 6-bit scale (ls − 32).
void quant_iq4_xs(const float* x, uint8_t* b, float* y) {
  float w[256], s[8];
  error_weights(x, 256, w);
  float smax = 0.0f, sabs = 0.0f;
  for (int k = 0; k < 8; ++k) {
    s[k] = fit_iq4(x + 32 * k, w + 32 * k, 32);
    if (std::fabs(s[k]) > sabs) {
      sabs = std::fabs(s[k]);
      smax = s[k];
    }
  }
  float d = f16_round(smax / -32.0f);
  int L[8] = {}, q[256] = {};
  for (int k = 0; k < 8; ++k) L[k] = d != 0.0f ? round_clamped(s[k] / d, -32, 31) : 0;
  auto requant = [&](float dd, int* qq) {
    float e = 0.0f;
    for (int i = 0; i < 256; ++i) {
      const float step = dd * static_cast<float>(L[i / 32]);
      qq[i] = step != 0.0f ? nearest_iq4(x[i] / step) : 8;
      const float r = step * static_cast<float>(kIQ4NLValues[qq[i]]) - x[i];
      e += w[i] * r * r;
    }
    return e;
  };
  float err = requant(d, q);
  for (int iter = 0; iter < 2; ++iter) {
    float suu = 0, sux = 0;
    for (int i = 0; i < 256; ++i) {
      const auto u = static_cast<float>(L[i / 32] * kIQ4NLValues[q[i]]);
      suu += w[i] * u * u;
      sux += w[i] * u * x[i];
    }
    if (!(suu > 0.0f)) break;
    const float nd = f16_round(sux / suu);
    int nq[256];
    const float e = requant(nd, nq);
    if (!(e < err)) break;
    err = e;
    d = nd;
    std::copy(nq, nq + 256, q);
  }
  store_f16(b, d);
  uint16_t scales_h = 0;
  uint8_t* scales_l = b + 4;
  std::memset(scales_l, 0, 4);
  for (int k = 0; k < 8; ++k) {
    const int ls = L[k] + 32;
    scales_l[k / 2] |= static_cast<uint8_t>((ls & 0x0F) << (4 * (k % 2)));
    scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * k));
  }
  std::memcpy(b + 2, &scales_h, 2);
  uint8_t* qs = b + 8;
  for (int k = 0; k < 8; ++k) {
    for (int j = 0; j < 16; ++j) qs[16 * k + j] = static_cast<uint8_t>(q[32 * k + j] | q[32 * k + j + 16] << 4);
  }
  if (y != nullptr) {
    for (int k = 0; k < 8; ++k) {
      const float dl = d * static_cast<float>(L[k]);
      for (int j = 0; j < 32; ++j) y[32 * k + j] = dl * static_cast<float>(kIQ4NLValues[q[32 * k + j]]);
    }
  }
}

template <void (*Q)(const float*, uint8_t*, float*)>
void quant_no_values(const float* x, uint8_t* b) {
  Q(x, b, nullptr);
}

using BlockDequant = void (*)(const uint8_t*, float*);
using BlockQuant = void (*)(const float*, uint8_t*);
using BlockQuantValues = void (*)(const float*, uint8_t*, float*);

// The quantized formats dequantize_row handles, block by block.
// quant is nullptr where nibble has no reference quantizer for the type; quant_values is set for
// the types with nibble's own searching quantizers (it also reports the values meant).
struct BlockCodec {
  TensorType type;
  BlockDequant dequant;
  BlockQuant quant;
  BlockQuantValues quant_values = nullptr;
};
constexpr BlockCodec kBlockCodecs[] = {
    {TensorType::Q4_0, dequant_q4_g<32>, quant_q4_g<32>},
    {TensorType::Q4_1, dequant_q4_1, quant_q4_1},
    {TensorType::Q5_0, dequant_q5_0, quant_q5_0},
    {TensorType::Q5_1, dequant_q5_1, quant_q5_1},
    {TensorType::Q8_0, dequant_q8_0, quant_q8_0},
    {TensorType::Q2_K, dequant_q2_k, quant_no_values<quant_q2_k>, quant_q2_k},
    {TensorType::Q3_K, dequant_q3_k, quant_no_values<quant_q3_k>, quant_q3_k},
    {TensorType::Q4_K, dequant_q4_k, quant_no_values<quant_q4_k>, quant_q4_k},
    {TensorType::Q5_K, dequant_q5_k, quant_no_values<quant_q5_k>, quant_q5_k},
    {TensorType::Q6_K, dequant_q6_k, quant_q6_k},
    {TensorType::IQ4_NL, dequant_iq4_nl, quant_no_values<quant_iq4_nl>, quant_iq4_nl},
    {TensorType::IQ4_XS, dequant_iq4_xs, quant_no_values<quant_iq4_xs>, quant_iq4_xs},
    {TensorType::Q4_G64, dequant_q4_g<64>, quant_q4_g<64>},
    {TensorType::Q4_G128, dequant_q4_g<128>, quant_q4_g<128>},
};

const BlockCodec* find_codec(TensorType type) {
  for (const BlockCodec& c : kBlockCodecs) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

}  // namespace

bool can_dequantize(TensorType type) {
  return type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16 ||
         type == TensorType::Q8_C || find_codec(type) != nullptr;
}

bool can_quantize(TensorType type) {
  if (type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16 || type == TensorType::Q8_C) {
    return true;
  }
  const BlockCodec* codec = find_codec(type);
  return codec != nullptr && codec->quant != nullptr;
}

void dequantize_row(TensorType type, const uint8_t* src, int64_t n, float* dst) {
  check_blocks(type, n);
  switch (type) {
    case TensorType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_at(src + 2 * i);
      return;
    case TensorType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(load_u16(src + 2 * i));
      return;
    case TensorType::Q8_C:  // the row, not a block, carries the scale
      dequant_q8_c_row(src, n, dst);
      return;
    default:
      break;
  }
  const BlockCodec* codec = find_codec(type);
  if (codec == nullptr) throw std::invalid_argument("dequantize_row: no kernel for " + type_name(static_cast<uint32_t>(type)));
  const TypeTraits* t = type_traits(type);
  for (int64_t i = 0; i < n / t->block_elems; ++i) {
    codec->dequant(src + i * t->block_bytes, dst + i * t->block_elems);
  }
}

void quantize_row(TensorType type, const float* src, int64_t n, uint8_t* dst) {
  check_blocks(type, n);
  switch (type) {
    case TensorType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_fp16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case TensorType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_bf16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case TensorType::Q8_C:
      quant_q8_c_row(src, n, dst);
      return;
    default:
      break;
  }
  const BlockCodec* codec = find_codec(type);
  if (codec == nullptr || codec->quant == nullptr) {
    throw std::invalid_argument("quantize_row: cannot produce " + type_name(static_cast<uint32_t>(type)));
  }
  const TypeTraits* t = type_traits(type);
  for (int64_t i = 0; i < n / t->block_elems; ++i) {
    codec->quant(src + i * t->block_elems, dst + i * t->block_bytes);
  }
}

void quantize_row_values(TensorType type, const float* src, int64_t n, uint8_t* dst, float* values) {
  check_blocks(type, n);
  const BlockCodec* codec = find_codec(type);
  if (codec == nullptr || codec->quant_values == nullptr) {
    throw std::invalid_argument("quantize_row_values: no searching quantizer for " +
                                type_name(static_cast<uint32_t>(type)));
  }
  const TypeTraits* t = type_traits(type);
  for (int64_t i = 0; i < n / t->block_elems; ++i) {
    codec->quant_values(src + i * t->block_elems, dst + i * t->block_bytes, values + i * t->block_elems);
  }
}

}  // namespace nibble
