// Scalar reference for matmul and activation quantisation: the definition every dispatched
// kernel is tested against. Integer block products are formed exactly as the fast paths form
// them (int8 activations, signed weight integers, per-block and per-sub-block scales) and only
// the final accumulation differs (double here, float there).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/fp16.h"
#include "kernels/matmul.h"
#include "kernels/matmul_internal.h"
#include "kernels/quant_tables.h"

namespace nibble {
namespace detail {

void resize_quantized_input(int64_t M, int64_t K, QuantizedInput& q, int group_blocks) {
  if (K % 32 != 0) throw std::invalid_argument("quantize_input: K must be a multiple of 32");
  if (group_blocks != 1 && group_blocks != 8) {
    throw std::invalid_argument("quantize_input: blocks per scale must be 1 or 8");
  }
  if (K % (32 * group_blocks) != 0) {
    throw std::invalid_argument("quantize_input: K must be a multiple of 256 for one scale per 256");
  }
  q.group_blocks = group_blocks;
  q.static_step = 0.0f;
  q.M = M;
  q.K = K;
  q.q.resize(static_cast<size_t>(M * K));
  q.d.resize(static_cast<size_t>(M * K / 32));
  q.sum.resize(static_cast<size_t>(M * K / 32));
  q.sum16.resize(static_cast<size_t>(M * K / 16));
  q.dsum.resize(static_cast<size_t>(M * K / 32));
  q.dsum16.resize(static_cast<size_t>(M * K / 16));
  q.dsum_q8_1.resize(static_cast<size_t>(M * K / 32));
  q.panel_M = 0;  // the panel copy (if any) described the previous contents
}

void resize_static_input(int64_t M, int64_t K, float step, QuantizedInput& q) {
  if (!(step > 0.0f) || !std::isfinite(step)) {
    throw std::invalid_argument("quantize_input_static: the step must be a positive number");
  }
  resize_quantized_input(M, K, q);
  q.static_step = fp16_to_fp32(fp32_to_fp16(step));
}

void resize_panel_input(QuantizedInput& q) {
  const size_t n = static_cast<size_t>(q.M * q.K / 32);
  q.panel_q.resize(32 * n);
  q.panel_d.resize(n);
  q.panel_dsum.resize(n);
  q.panel_dsum_q8_1.resize(n);
  q.panel_dsum16.resize(2 * n);
  q.panel_sum_pairs.resize(static_cast<size_t>((q.K / 32 + 1) / 2 * q.M));
  q.panel_M = q.M;
}

void check_outliers(const WeightMatrix& W, const char* who) {
  const std::string prefix = std::string(who) + ": ";
  if (W.outlier_cols == nullptr || W.outlier_w == nullptr) {
    throw std::invalid_argument(prefix + "outlier part without columns or weights");
  }
  if (W.n_outliers <= 0 || W.n_outliers > W.cols) {
    throw std::invalid_argument(prefix + std::to_string(W.n_outliers) + " outlier channels for K=" +
                                std::to_string(W.cols));
  }
  for (int64_t j = 0; j < W.n_outliers; ++j) {
    const int32_t c = W.outlier_cols[j];
    if (c < 0 || c >= W.cols || (j > 0 && c <= W.outlier_cols[j - 1])) {
      throw std::invalid_argument(prefix + "outlier columns must be strictly ascending and below K");
    }
  }
}

void split_outliers(const WeightMatrix& W, const float* X, int64_t M, std::vector<float>& inliers,
                    std::vector<float>& outliers) {
  const int64_t K = W.cols, J = W.n_outliers;
  inliers.resize(static_cast<size_t>(M * K));
  outliers.resize(static_cast<size_t>(M * J));
  std::memcpy(inliers.data(), X, static_cast<size_t>(M * K) * sizeof(float));
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t j = 0; j < J; ++j) {
      const int64_t k = m * K + W.outlier_cols[j];
      outliers[static_cast<size_t>(m * J + j)] = X[k];
      inliers[static_cast<size_t>(k)] = 0.0f;
    }
  }
}

}  // namespace detail

void quantize_input_reference(const float* X, int64_t M, int64_t K, QuantizedInput& q, int group_blocks) {
  detail::resize_quantized_input(M, K, q, group_blocks);
  const int group = 32 * group_blocks;
  for (int64_t b = 0; b < M * K / 32; ++b) {
    const float* x = X + 32 * b;
    const float* g = X + 32 * (b - b % group_blocks);
    float amax = 0.0f;
    for (int j = 0; j < group; ++j) amax = std::fmax(amax, std::fabs(g[j]));
    const float d = detail::activation_scale(amax, group_blocks);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int8_t* qb = q.q.data() + 32 * b;
    int32_t half_sum[2] = {0, 0};
    for (int j = 0; j < 32; ++j) {
      qb[j] = static_cast<int8_t>(std::roundf(x[j] * id));
      half_sum[j / 16] += qb[j];
    }
    detail::set_block_factors(q, b, d, half_sum[0], half_sum[1]);
  }
}

void quantize_input_static_reference(const float* X, int64_t M, int64_t K, float step,
                                     QuantizedInput& q) {
  detail::resize_static_input(M, K, step, q);
  const float d = q.static_step;
  const float id = 1.0f / d;
  for (int64_t b = 0; b < M * K / 32; ++b) {
    const float* x = X + 32 * b;
    int8_t* qb = q.q.data() + 32 * b;
    int32_t half_sum[2] = {0, 0};
    for (int j = 0; j < 32; ++j) {
      const float v = std::clamp(std::roundf(x[j] * id), -127.0f, 127.0f);
      qb[j] = static_cast<int8_t>(v);
      half_sum[j / 16] += qb[j];
    }
    detail::set_block_factors(q, b, d, half_sum[0], half_sum[1]);
  }
}

namespace {

// One 32-block of weights against int8 activations a, as two 16-element halves: weight element
// e of half h is half_scale[h]·w_e + half_bias[h], with integer w_e (signed q−8, q−32, … for
// offset formats; the unsigned q for formats with a min). The block's contribution is
// d_a·Σ_h (half_scale[h]·half[h] + half_bias[h]·Σ_{e∈h} a_e), half[h] = Σ_{e∈h} w_e·a_e.
struct BlockProduct {
  int32_t half[2];
  double half_scale[2];
  double half_bias[2];
  bool q8_1_min = false;  // the bias multiplies QuantizedInput::dsum_q8_1 (Q4_1, Q5_1)
};

BlockProduct block_q8_0(const uint8_t* row, int64_t b, const int8_t* a) {
  const uint8_t* blk = row + 34 * b;
  const int8_t* qs = reinterpret_cast<const int8_t*>(blk + 2);
  BlockProduct p{{0, 0}, {0, 0}, {0, 0}};
  for (int e = 0; e < 32; ++e) p.half[e / 16] += qs[e] * a[e];
  p.half_scale[0] = p.half_scale[1] = fp16_at(blk);
  return p;
}

// Q4_0 (G = 32) and Q4_G64 / Q4_G128: 32-block b is part k of its group; low nibbles hold the
// group's first half, high nibbles its second.
template <int G>
BlockProduct block_q4_g(const uint8_t* row, int64_t b, const int8_t* a) {
  constexpr int kBlocks = G / 32;
  const uint8_t* grp = row + (2 + G / 2) * (b / kBlocks);
  const int k = static_cast<int>(b % kBlocks);
  BlockProduct p{{0, 0}, {0, 0}, {0, 0}};
  for (int i = 0; i < 32; ++i) {
    const int e = 32 * k + i;
    const uint8_t byte = grp[2 + e % (G / 2)];
    const int q = e < G / 2 ? (byte & 0x0F) : (byte >> 4);
    p.half[i / 16] += (q - 8) * a[i];
  }
  p.half_scale[0] = p.half_scale[1] = fp16_at(grp);
  return p;
}

// Q8_C: the row's f32 scale, then int8 values.
BlockProduct block_q8_c(const uint8_t* row, int64_t b, const int8_t* a) {
  float d;
  std::memcpy(&d, row, 4);
  const int8_t* qs = reinterpret_cast<const int8_t*>(row + 4 + 32 * b);
  BlockProduct p{{0, 0}, {0, 0}, {0, 0}};
  for (int e = 0; e < 32; ++e) p.half[e / 16] += qs[e] * a[e];
  p.half_scale[0] = p.half_scale[1] = d;
  return p;
}

BlockProduct block_q6_k(const uint8_t* row, int64_t b, const int8_t* a) {
  const uint8_t* sb = row + 210 * (b / 8);
  const uint8_t* ql = sb;
  const uint8_t* qh = sb + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(sb + 192);
  const double d = fp16_at(sb + 208);
  BlockProduct p{{0, 0}, {0, 0}, {0, 0}};
  for (int i = 0; i < 32; ++i) {
    const int e = static_cast<int>(b % 8) * 32 + i;  // element inside the super-block
    const int h = e / 128, j = (e % 128) / 32, l = e % 32;
    const uint8_t byte = ql[64 * h + 32 * (j % 2) + l];
    const int low4 = j < 2 ? (byte & 0x0F) : (byte >> 4);
    const int high2 = (qh[32 * h + l] >> (2 * j)) & 3;
    p.half[i / 16] += ((low4 | high2 << 4) - 32) * a[i];
  }
  const int sub = static_cast<int>(b % 8) * 2;
  p.half_scale[0] = d * scales[sub];
  p.half_scale[1] = d * scales[sub + 1];
  return p;
}

BlockProduct block_q4_1(const uint8_t* row, int64_t b, const int8_t* a) {
  const uint8_t* blk = row + 20 * b;
  const uint8_t* qs = blk + 4;
  BlockProduct p{{0, 0}, {0, 0}, {0, 0}};
  for (int e = 0; e < 32; ++e) {
    const int q = e < 16 ? (qs[e] & 0x0F) : (qs[e - 16] >> 4);
    p.half[e / 16] += q * a[e];
  }
  p.half_scale[0] = p.half_scale[1] = fp16_at(blk);
  p.half_bias[0] = p.half_bias[1] = fp16_at(blk + 2);
  p.q8_1_min = true;
  return p;
}

// The 5-bit value of element e of a Q5_0/Q5_1 block (qh as 4 little-endian bytes).
int q5_value(const uint8_t* qh, const uint8_t* qs, int e) {
  const int low4 = e < 16 ? (qs[e] & 0x0F) : (qs[e - 16] >> 4);
  return low4 | ((qh[e / 8] >> (e % 8)) & 1) << 4;
}

BlockProduct block_q5_0(const uint8_t* row, int64_t b, const int8_t* a) {
  const uint8_t* blk = row + 22 * b;
  BlockProduct p{{0, 0}, {0, 0}, {0, 0}};
  for (int e = 0; e < 32; ++e) p.half[e / 16] += (q5_value(blk + 2, blk + 6, e) - 16) * a[e];
  p.half_scale[0] = p.half_scale[1] = fp16_at(blk);
  return p;
}

BlockProduct block_q5_1(const uint8_t* row, int64_t b, const int8_t* a) {
  const uint8_t* blk = row + 24 * b;
  BlockProduct p{{0, 0}, {0, 0}, {0, 0}};
  for (int e = 0; e < 32; ++e) p.half[e / 16] += q5_value(blk + 4, blk + 8, e) * a[e];
  p.half_scale[0] = p.half_scale[1] = fp16_at(blk);
  p.half_bias[0] = p.half_bias[1] = fp16_at(blk + 2);
  p.q8_1_min = true;
  return p;
}

BlockProduct block_iq4_nl(const uint8_t* row, int64_t b, const int8_t* a) {
  const uint8_t* blk = row + 18 * b;
  const uint8_t* qs = blk + 2;
  BlockProduct p{{0, 0}, {0, 0}, {0, 0}};
  for (int e = 0; e < 32; ++e) {
    const int q = e < 16 ? (qs[e] & 0x0F) : (qs[e - 16] >> 4);
    p.half[e / 16] += kIQ4NLValues[q] * a[e];
  }
  p.half_scale[0] = p.half_scale[1] = fp16_at(blk);
  return p;
}

// K-quant helpers: element e (0..255) of super-block sb, for the 32-block jb = b mod 8.
int k_element(int64_t b, int i) { return static_cast<int>(b % 8) * 32 + i; }

BlockProduct block_q4_k(const uint8_t* row, int64_t b, const int8_t* a) {
  const uint8_t* sb = row + 144 * (b / 8);
  BlockProduct p{{0, 0}, {0, 0}, {0, 0}};
  for (int i = 0; i < 32; ++i) {
    const int e = k_element(b, i);
    const uint8_t byte = sb[16 + 32 * (e / 64) + e % 32];
    const int q = (e % 64) < 32 ? (byte & 0x0F) : (byte >> 4);
    p.half[i / 16] += q * a[i];
  }
  int sc, mn;
  k4_scale_min(sb + 4, static_cast<int>(b % 8), &sc, &mn);
  p.half_scale[0] = p.half_scale[1] = static_cast<double>(fp16_at(sb)) * sc;
  p.half_bias[0] = p.half_bias[1] = -static_cast<double>(fp16_at(sb + 2)) * mn;
  return p;
}

BlockProduct block_q5_k(const uint8_t* row, int64_t b, const int8_t* a) {
  const uint8_t* sb = row + 176 * (b / 8);
  BlockProduct p{{0, 0}, {0, 0}, {0, 0}};
  for (int i = 0; i < 32; ++i) {
    const int e = k_element(b, i);
    const uint8_t byte = sb[48 + 32 * (e / 64) + e % 32];
    const int low4 = (e % 64) < 32 ? (byte & 0x0F) : (byte >> 4);
    const int q = low4 + 16 * ((sb[16 + e % 32] >> (e / 32)) & 1);
    p.half[i / 16] += q * a[i];
  }
  int sc, mn;
  k4_scale_min(sb + 4, static_cast<int>(b % 8), &sc, &mn);
  p.half_scale[0] = p.half_scale[1] = static_cast<double>(fp16_at(sb)) * sc;
  p.half_bias[0] = p.half_bias[1] = -static_cast<double>(fp16_at(sb + 2)) * mn;
  return p;
}

BlockProduct block_q2_k(const uint8_t* row, int64_t b, const int8_t* a) {
  const uint8_t* sb = row + 84 * (b / 8);
  BlockProduct p{{0, 0}, {0, 0}, {0, 0}};
  for (int i = 0; i < 32; ++i) {
    const int e = k_element(b, i);
    const int h = e / 128, j = (e % 128) / 32, l = e % 32;
    p.half[i / 16] += ((sb[16 + 32 * h + l] >> (2 * j)) & 3) * a[i];
  }
  const double d = fp16_at(sb + 80), dmin = fp16_at(sb + 82);
  for (int h = 0; h < 2; ++h) {
    const uint8_t s = sb[2 * (b % 8) + h];
    p.half_scale[h] = d * (s & 0x0F);
    p.half_bias[h] = -dmin * (s >> 4);
  }
  return p;
}

BlockProduct block_q3_k(const uint8_t* row, int64_t b, const int8_t* a) {
  const uint8_t* sb = row + 110 * (b / 8);
  BlockProduct p{{0, 0}, {0, 0}, {0, 0}};
  for (int i = 0; i < 32; ++i) {
    const int e = k_element(b, i);
    const int h = e / 128, j = (e % 128) / 32, l = e % 32;
    const int low2 = (sb[32 + 32 * h + l] >> (2 * j)) & 3;
    const int hbit = (sb[l] >> (4 * h + j)) & 1;
    p.half[i / 16] += (low2 - (hbit ? 0 : 4)) * a[i];
  }
  const double d = fp16_at(sb + 108);
  const uint8_t* sc = sb + 96;
  for (int h = 0; h < 2; ++h) {
    const int k = 2 * static_cast<int>(b % 8) + h;
    const int low4 = k < 8 ? (sc[k] & 0x0F) : (sc[k - 8] >> 4);
    const int high2 = (sc[8 + k % 4] >> (2 * (k / 4))) & 3;
    p.half_scale[h] = d * ((low4 | high2 << 4) - 32);
  }
  return p;
}

BlockProduct block_iq4_xs(const uint8_t* row, int64_t b, const int8_t* a) {
  const uint8_t* sb = row + 136 * (b / 8);
  const int ib = static_cast<int>(b % 8);
  const uint8_t* qs = sb + 8 + 16 * ib;
  BlockProduct p{{0, 0}, {0, 0}, {0, 0}};
  for (int e = 0; e < 32; ++e) {
    const int q = e < 16 ? (qs[e] & 0x0F) : (qs[e - 16] >> 4);
    p.half[e / 16] += kIQ4NLValues[q] * a[e];
  }
  uint16_t scales_h;
  std::memcpy(&scales_h, sb + 2, 2);
  const int ls = ((sb[4 + ib / 2] >> (4 * (ib % 2))) & 0x0F) | ((scales_h >> (2 * ib)) & 3) << 4;
  p.half_scale[0] = p.half_scale[1] = static_cast<double>(fp16_at(sb)) * (ls - 32);
  return p;
}

using BlockFn = BlockProduct (*)(const uint8_t*, int64_t, const int8_t*);

struct RefKernel {
  TensorType type;
  BlockFn block;  // nullptr: float weights, float activations
};
constexpr RefKernel kRefKernels[] = {
    {TensorType::F32, nullptr},      {TensorType::F16, nullptr},
    {TensorType::BF16, nullptr},     {TensorType::Q8_0, block_q8_0},
    {TensorType::Q4_0, block_q4_g<32>},  {TensorType::Q6_K, block_q6_k},
    {TensorType::Q4_1, block_q4_1},  {TensorType::Q5_0, block_q5_0},
    {TensorType::Q5_1, block_q5_1},  {TensorType::Q2_K, block_q2_k},
    {TensorType::Q3_K, block_q3_k},  {TensorType::Q4_K, block_q4_k},
    {TensorType::Q5_K, block_q5_k},  {TensorType::IQ4_NL, block_iq4_nl},
    {TensorType::IQ4_XS, block_iq4_xs},
    {TensorType::Q4_G64, block_q4_g<64>}, {TensorType::Q4_G128, block_q4_g<128>},
    {TensorType::Q8_C, block_q8_c},
};

float float_weight(TensorType type, const uint8_t* row, int64_t k) {
  uint16_t h;
  switch (type) {
    case TensorType::F32: {
      float f;
      std::memcpy(&f, row + 4 * k, 4);
      return f;
    }
    case TensorType::F16:
      return fp16_at(row + 2 * k);
    default:
      std::memcpy(&h, row + 2 * k, 2);
      return bf16_to_fp32(h);
  }
}

}  // namespace

void matmul_reference(const WeightMatrix& W, const float* X, int64_t M, float* Y, int64_t ldy) {
  if (W.n_outliers != 0) {
    // The quantized part on X without the outlier channels, then their F16 part on top.
    detail::check_outliers(W, "matmul_reference");
    std::vector<float> inliers, outliers;
    detail::split_outliers(W, X, M, inliers, outliers);
    WeightMatrix Q = W;
    Q.outlier_cols = nullptr;
    Q.outlier_w = nullptr;
    Q.n_outliers = 0;
    matmul_reference(Q, inliers.data(), M, Y, ldy);
    const int64_t J = W.n_outliers;
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < W.rows; ++n) {
        double acc = 0.0;
        for (int64_t j = 0; j < J; ++j) {
          acc += static_cast<double>(outliers[m * J + j]) * fp16_to_fp32(W.outlier_w[n * J + j]);
        }
        Y[m * ldy + n] = static_cast<float>(Y[m * ldy + n] + acc);
      }
    }
    return;
  }
  if (W.layout != kLayoutGguf) {  // back to GGUF rows, so the reference never reads packing
    const bool packed4 = W.layout == kLayoutPacked4 && detail::packed_group_blocks(W.type) != 0;
    const bool rows16 = W.layout == kLayoutRows16 && detail::rows16_layout_fits(W.type, W.cols);
    if ((!packed4 && !rows16) || W.cols % 32 != 0) {
      throw std::invalid_argument("matmul_reference: bad packed weight");
    }
    matmul_reference(detail::unpack_weight(W).view, X, M, Y, ldy);
    return;
  }
  const RefKernel* kernel = nullptr;
  for (const RefKernel& k : kRefKernels) {
    if (k.type == W.type) kernel = &k;
  }
  const TypeTraits* traits = type_traits(W.type);
  if (kernel == nullptr || traits == nullptr) {
    throw std::invalid_argument("matmul_reference: no kernel for " +
                                type_name(static_cast<uint32_t>(W.type)));
  }
  const int64_t K = W.cols, N = W.rows;
  if (K % traits->block_elems != 0) {
    throw std::invalid_argument("matmul_reference: K=" + std::to_string(K) +
                                " is not a multiple of the " + traits->name + " block");
  }
  if (kernel->block == nullptr) {
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < N; ++n) {
        const uint8_t* row = W.data + n * W.row_bytes;
        double acc = 0.0;
        for (int64_t k = 0; k < K; ++k) {
          acc += static_cast<double>(X[m * K + k]) * float_weight(W.type, row, k);
        }
        Y[m * ldy + n] = static_cast<float>(acc);
      }
    }
    return;
  }
  QuantizedInput qx;
  if (W.act_scale > 0.0f) {
    quantize_input_static_reference(X, M, K, W.act_scale, qx);
  } else {
    quantize_input_reference(X, M, K, qx, activation_group_blocks(W.type, M, K));
  }
  const int64_t nb = K / 32;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      const uint8_t* row = W.data + n * W.row_bytes;
      double acc = 0.0;
      for (int64_t b = 0; b < nb; ++b) {
        const BlockProduct p = kernel->block(row, b, qx.q.data() + (m * nb + b) * 32);
        const int32_t* asum = qx.sum16.data() + 2 * (m * nb + b);
        const double d = qx.d[m * nb + b];
        acc += d * (p.half_scale[0] * p.half[0] + p.half_scale[1] * p.half[1]);
        acc += p.q8_1_min ? p.half_bias[0] * qx.dsum_q8_1[m * nb + b]
                          : d * (p.half_bias[0] * asum[0] + p.half_bias[1] * asum[1]);
      }
      Y[m * ldy + n] = static_cast<float>(acc);
    }
  }
}

}  // namespace nibble
