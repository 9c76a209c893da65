// Scalar row conversions. The quantizers follow llama.cpp's quantize_row_*_ref arithmetic step for
// step (float operations in the same order), because files written by nibble must be bit-identical
// to the ones llama.cpp's tools would write from the same floats.
#include "kernels/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/fp16.h"

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

void dequant_q4_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
    y[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
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

void quant_q8_0(const float* x, uint8_t* b) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(b, d);
  int8_t* qs = reinterpret_cast<int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
}

void quant_q4_0(const float* x, uint8_t* b) {
  // The signed extreme maps to -8 exactly, so the full 16-level range is used on its side.
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(b, d);
  uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    const float x0 = x[j] * id, x1 = x[j + 16] * id;
    const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x0 + 8.5f)));
    const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(x1 + 8.5f)));
    qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
  }
}

using BlockDequant = void (*)(const uint8_t*, float*);

// The quantized formats dequantize_row handles, block by block.
struct BlockCodec {
  TensorType type;
  BlockDequant dequant;
};
constexpr BlockCodec kBlockCodecs[] = {
    {TensorType::Q4_0, dequant_q4_0}, {TensorType::Q4_1, dequant_q4_1},
    {TensorType::Q5_0, dequant_q5_0}, {TensorType::Q5_1, dequant_q5_1},
    {TensorType::Q8_0, dequant_q8_0}, {TensorType::Q4_K, dequant_q4_k},
    {TensorType::Q5_K, dequant_q5_k}, {TensorType::Q6_K, dequant_q6_k},
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
         find_codec(type) != nullptr;
}

bool can_quantize(TensorType type) {
  return type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16 ||
         type == TensorType::Q8_0 || type == TensorType::Q4_0;
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
    case TensorType::Q8_0:
      for (int64_t i = 0; i < n / 32; ++i) quant_q8_0(src + 32 * i, dst + 34 * i);
      return;
    case TensorType::Q4_0:
      for (int64_t i = 0; i < n / 32; ++i) quant_q4_0(src + 32 * i, dst + 18 * i);
      return;
    default:
      throw std::invalid_argument("quantize_row: cannot produce " + type_name(static_cast<uint32_t>(type)));
  }
}

}  // namespace nibble
