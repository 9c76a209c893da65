// Scalar row conversions. The quantizers follow llama.cpp's quantize_row_*_ref arithmetic step for
// step (float operations in the same order), because files written by nibble must be bit-identical
// to the ones llama.cpp's tools would write from the same floats.
#include "kernels/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/fp16.h"
#include "kernels/quant_tables.h"

namespace nibble {
namespace {

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
float load_f16(const uint8_t* p) { return fp16_to_fp32(load_u16(p)); }
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
  const float d = load_f16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < G / 2; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
    y[j + G / 2] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

void dequant_q4_1(const uint8_t* b, float* y) {
  const float d = load_f16(b), m = load_f16(b + 2);
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
  const float d = load_f16(b);
  int q[32];
  q5_values(b + 2, b + 6, q);
  for (int e = 0; e < 32; ++e) y[e] = d * static_cast<float>(q[e] - 16);
}

void dequant_q5_1(const uint8_t* b, float* y) {
  const float d = load_f16(b), m = load_f16(b + 2);
  int q[32];
  q5_values(b + 4, b + 8, q);
  for (int e = 0; e < 32; ++e) y[e] = d * static_cast<float>(q[e]) + m;
}

void dequant_q8_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int e = 0; e < 32; ++e) y[e] = d * static_cast<float>(qs[e]);
}

// The 12-byte 6-bit scale/min packing shared by Q4_K and Q5_K.
void k_scale_min(const uint8_t* s, int sub, int* sc, int* m) {
  if (sub < 4) {
    *sc = s[sub] & 63;
    *m = s[sub + 4] & 63;
  } else {
    *sc = (s[sub + 4] & 0x0F) | (s[sub - 4] >> 6) << 4;
    *m = (s[sub + 4] >> 4) | (s[sub] >> 6) << 4;
  }
}

void dequant_q4_k(const uint8_t* b, float* y) {
  const float d = load_f16(b), dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32, c = e / 64, l = e % 32;
    int sc, m;
    k_scale_min(scales, sub, &sc, &m);
    const uint8_t byte = qs[32 * c + l];
    const int q = (e % 64) < 32 ? (byte & 0x0F) : (byte >> 4);
    y[e] = d * static_cast<float>(sc) * static_cast<float>(q) - dmin * static_cast<float>(m);
  }
}

void dequant_q5_k(const uint8_t* b, float* y) {
  const float d = load_f16(b), dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32, c = e / 64, l = e % 32;
    int sc, m;
    k_scale_min(scales, sub, &sc, &m);
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
  const float d = load_f16(b + 208);
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
  const float d = load_f16(b + 80), dmin = load_f16(b + 82);
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
  const float d = load_f16(b + 108);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, j = (e % 128) / 32, l = e % 32;
    const int low2 = (qs[32 * h + l] >> (2 * j)) & 3;
    const int hbit = (hmask[l] >> (4 * h + j)) & 1;
    const int q = low2 - (hbit ? 0 : 4);
    y[e] = d * static_cast<float>(q3_k_scale(b + 96, e / 16)) * static_cast<float>(q);
  }
}

void dequant_iq4_nl(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(kIQ4NLValues[qs[j] & 0x0F]);
    y[j + 16] = d * static_cast<float>(kIQ4NLValues[qs[j] >> 4]);
  }
}

void dequant_iq4_xs(const uint8_t* b, float* y) {
  const float d = load_f16(b);
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
  const float d_super = load_f16(b + 208);
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

using BlockDequant = void (*)(const uint8_t*, float*);
using BlockQuant = void (*)(const float*, uint8_t*);

// The quantized formats dequantize_row handles, block by block.
// quant is nullptr where nibble has no reference quantizer for the type.
struct BlockCodec {
  TensorType type;
  BlockDequant dequant;
  BlockQuant quant;
};
constexpr BlockCodec kBlockCodecs[] = {
    {TensorType::Q4_0, dequant_q4_g<32>, quant_q4_g<32>},     {TensorType::Q4_1, dequant_q4_1, quant_q4_1},
    {TensorType::Q5_0, dequant_q5_0, quant_q5_0},     {TensorType::Q5_1, dequant_q5_1, quant_q5_1},
    {TensorType::Q8_0, dequant_q8_0, quant_q8_0},     {TensorType::Q2_K, dequant_q2_k, nullptr},
    {TensorType::Q3_K, dequant_q3_k, nullptr},        {TensorType::Q4_K, dequant_q4_k, nullptr},
    {TensorType::Q5_K, dequant_q5_k, nullptr},        {TensorType::Q6_K, dequant_q6_k, quant_q6_k},
    {TensorType::IQ4_NL, dequant_iq4_nl, nullptr},    {TensorType::IQ4_XS, dequant_iq4_xs, nullptr},
    {TensorType::Q4_G64, dequant_q4_g<64>, quant_q4_g<64>}, {TensorType::Q4_G128, dequant_q4_g<128>, quant_q4_g<128>},
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
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(load_u16(src + 2 * i));
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

}  // namespace nibble
