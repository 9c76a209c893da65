// quant/gptq.h: RTN equivalence when nothing correlates, loss against recomputation from the
// written bytes, a hand-checked two-column case, act_order's static groups, bad arguments.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

#include "kernels/quantize.h"
#include "kernels/tensor_type.h"
#include "quant/gptq.h"
#include "quant/linalg.h"

namespace nibble {
namespace {

const TensorType kAllTypes[] = {TensorType::Q4_0, TensorType::Q4_1,   TensorType::Q5_0,    TensorType::Q5_1,
                                TensorType::Q8_0, TensorType::Q4_G64, TensorType::Q4_G128, TensorType::Q8_C,
                                TensorType::Q2_K, TensorType::Q3_K,   TensorType::Q4_K,    TensorType::Q5_K,
                                TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS};

std::string name(TensorType t) { return type_name(static_cast<uint32_t>(t)); }

std::vector<float> normal(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

std::vector<uint8_t> rtn_bytes(TensorType t, const std::vector<float>& W, int64_t rows, int64_t cols) {
  const auto rb = static_cast<int64_t>(row_bytes(static_cast<uint32_t>(t), cols));
  std::vector<uint8_t> out(static_cast<size_t>(rows * rb));
  for (int64_t r = 0; r < rows; ++r) quantize_row(t, W.data() + r * cols, cols, out.data() + r * rb);
  return out;
}

std::vector<float> dequant(TensorType t, const std::vector<uint8_t>& q, int64_t rows, int64_t cols) {
  const auto rb = static_cast<int64_t>(row_bytes(static_cast<uint32_t>(t), cols));
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) dequantize_row(t, q.data() + r * rb, cols, v.data() + r * cols);
  return v;
}

// tr((W−Q) H (W−Q)ᵀ) in double.
double loss(const std::vector<float>& W, const std::vector<float>& Q, const std::vector<float>& H, int64_t rows,
            int64_t cols) {
  double total = 0.0;
  std::vector<double> e(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) e[c] = static_cast<double>(W[r * cols + c]) - Q[r * cols + c];
    for (int64_t i = 0; i < cols; ++i) {
      double s = 0.0;
      for (int64_t j = 0; j < cols; ++j) s += static_cast<double>(H[i * cols + j]) * e[j];
      total += e[i] * s;
    }
  }
  return total;
}

// Correlated calibration inputs: X = Z·A (tokens × cols), H = XᵀX.
std::vector<float> correlated_hessian(int64_t cols, int64_t tokens, uint32_t seed) {
  const std::vector<float> Z = normal(static_cast<size_t>(tokens * cols), seed);
  std::vector<float> A = normal(static_cast<size_t>(cols * cols), seed + 1, 0.3f);
  for (int64_t i = 0; i < cols; ++i) A[i * cols + i] += 1.0f;
  std::vector<float> X(static_cast<size_t>(tokens * cols));
  linalg::gemm(false, false, tokens, cols, cols, 1.0f, Z.data(), cols, A.data(), cols, 0.0f, X.data(), cols);
  std::vector<float> H(static_cast<size_t>(cols * cols), 0.0f);
  linalg::accumulate_gram(X.data(), tokens, cols, cols, H.data());
  return H;
}

// Byte ranges of a group holding its parameters (everything but the levels).
std::vector<std::pair<int, int>> param_bytes(TensorType t) {
  switch (t) {
    case TensorType::Q4_1:
    case TensorType::Q5_1:
    case TensorType::Q8_C:
      return {{0, 4}};
    case TensorType::Q2_K:
      return {{0, 16}, {80, 84}};
    case TensorType::Q3_K:
      return {{96, 110}};
    case TensorType::Q4_K:
    case TensorType::Q5_K:
      return {{0, 16}};
    case TensorType::Q6_K:
      return {{192, 210}};
    case TensorType::IQ4_XS:
      return {{0, 8}};
    default:
      return {{0, 2}};  // fp16 d first
  }
}

bool is_low_bit(TensorType t) {
  return t == TensorType::Q4_0 || t == TensorType::Q4_1 || t == TensorType::Q4_G64 || t == TensorType::Q4_G128 ||
         t == TensorType::Q4_K || t == TensorType::IQ4_NL || t == TensorType::IQ4_XS || t == TensorType::Q2_K ||
         t == TensorType::Q3_K;
}

TEST(Gptq, SupportsTheRequiredTypes) {
  for (TensorType t : kAllTypes) EXPECT_TRUE(gptq_supports(t)) << name(t);
  EXPECT_FALSE(gptq_supports(TensorType::F16));
  EXPECT_FALSE(gptq_supports(TensorType::Q8_1));
}

// Uncorrelated inputs: no error moves anywhere, so GPTQ is RTN bit for bit.
TEST(Gptq, DiagonalHessianGivesRtnBytes) {
  const int64_t rows = 6, cols = 512;
  const std::vector<float> W = normal(static_cast<size_t>(rows * cols), 11);
  std::vector<float> H(static_cast<size_t>(cols * cols), 0.0f);
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> ud(0.1f, 5.0f);
  for (int64_t i = 0; i < cols; ++i) H[i * cols + i] = ud(rng);
  for (TensorType t : kAllTypes) {
    const std::vector<uint8_t> want = rtn_bytes(t, W, rows, cols);
    for (bool act : {false, true}) {
      GptqOptions opt;
      opt.act_order = act;
      std::vector<uint8_t> got(want.size(), 0xA5);
      const GptqReport rep = gptq_quantize(t, W.data(), rows, cols, H.data(), opt, got.data());
      EXPECT_EQ(got, want) << name(t) << " act_order " << act;
      EXPECT_NEAR(rep.gptq_loss, rep.rtn_loss, 1e-5 * rep.rtn_loss) << name(t);
    }
  }
}

// Correlated inputs: GPTQ beats RTN, and both reported losses are the ones the bytes give.
TEST(Gptq, BeatsRtnOnCorrelatedInputsAndReportsTrueLoss) {
  const int64_t rows = 12, cols = 512, tokens = 1024;
  const std::vector<float> H = correlated_hessian(cols, tokens, 21);
  const std::vector<float> W = normal(static_cast<size_t>(rows * cols), 22, 0.05f);
  for (TensorType t : kAllTypes) {
    for (bool act : {false, true}) {
      GptqOptions opt;
      opt.act_order = act;
      const auto rb = static_cast<int64_t>(row_bytes(static_cast<uint32_t>(t), cols));
      std::vector<uint8_t> got(static_cast<size_t>(rows * rb));
      const GptqReport rep = gptq_quantize(t, W.data(), rows, cols, H.data(), opt, got.data());
      const double rtn = loss(W, dequant(t, rtn_bytes(t, W, rows, cols), rows, cols), H, rows, cols);
      const double gptq = loss(W, dequant(t, got, rows, cols), H, rows, cols);
      EXPECT_NEAR(rep.rtn_loss, rtn, 1e-4 * rtn) << name(t) << " act_order " << act;
      EXPECT_NEAR(rep.gptq_loss, gptq, 1e-3 * gptq) << name(t) << " act_order " << act;
      EXPECT_LE(gptq, rtn) << name(t) << " act_order " << act;
      if (is_low_bit(t)) {
        EXPECT_LT(gptq, 0.9 * rtn) << name(t) << " act_order " << act;
      }
      std::printf("%-8s act_order=%d  gptq/rtn = %.3f\n", name(t).c_str(), act, gptq / rtn);
    }
  }
}

// One row, 32 inputs: inputs 0 and 1 always equal (X rows (2, 2, 0, …) and e_2 … e_31), so
// H[0:2, 0:2] = [[4, 4], [4, 4]] and the rest is the identity. Q8_C with the row scale set by
// W[2] = 1.27. Input 0 sits 0.4 steps above 0 and rounds down; GPTQ pushes that error onto input 1
// (scaled by H'01/H'11 = 4/(4+λ)), which then rounds to 2 steps instead of 1, and the two errors
// nearly cancel in the output.
TEST(Gptq, TwoIdenticalInputsCompensateExactly) {
  const int64_t cols = 32;
  std::vector<float> W(cols, 0.0f);
  W[2] = 1.27f;
  std::vector<float> X;  // tokens × cols
  auto add_token = [&](std::vector<float> x) { X.insert(X.end(), x.begin(), x.end()); };
  std::vector<float> x(cols, 0.0f);
  x[0] = x[1] = 2.0f;
  add_token(x);
  for (int64_t k = 2; k < cols; ++k) {
    std::vector<float> e(cols, 0.0f);
    e[k] = 1.0f;
    add_token(e);
  }
  const int64_t tokens = static_cast<int64_t>(X.size()) / cols;
  std::vector<float> H(cols * cols, 0.0f);
  linalg::accumulate_gram(X.data(), tokens, cols, cols, H.data());
  ASSERT_EQ(H[0], 4.0f);
  ASSERT_EQ(H[1], 4.0f);

  // The stored scale, as the quantizer sets it.
  float d;
  {
    std::vector<uint8_t> rtn(row_bytes(static_cast<uint32_t>(TensorType::Q8_C), cols));
    quantize_row(TensorType::Q8_C, W.data(), cols, rtn.data());
    std::memcpy(&d, rtn.data(), 4);
  }
  W[0] = 0.4f * d;
  W[1] = 1.3f * d;

  GptqOptions opt;
  std::vector<uint8_t> out(row_bytes(static_cast<uint32_t>(TensorType::Q8_C), cols));
  const GptqReport rep = gptq_quantize(TensorType::Q8_C, W.data(), 1, cols, H.data(), opt, out.data());
  std::vector<float> Q(cols);
  dequantize_row(TensorType::Q8_C, out.data(), cols, Q.data());

  // By hand: λ = 0.01 · mean(diag H) = 0.01 · (4 + 4 + 30) / 32.
  const double lambda = 0.01 * 38.0 / 32.0;
  EXPECT_EQ(Q[0], 0.0f);
  const double w1 = W[1] + (W[0] - 0.0) * 4.0 / (4.0 + lambda);  // ≈ 1.7 steps
  EXPECT_EQ(Q[1], 2.0f * d) << w1 / d;
  const double d0 = W[0] - Q[0], d1 = W[1] - Q[1];
  double rest = 0.0;
  for (int64_t k = 2; k < cols; ++k) rest += (static_cast<double>(W[k]) - Q[k]) * (static_cast<double>(W[k]) - Q[k]);
  const double want = 4.0 * (d0 + d1) * (d0 + d1) + rest;
  EXPECT_NEAR(rep.gptq_loss, want, 1e-9 + 1e-5 * want);
  EXPECT_NEAR(d0 + d1, -0.3 * d, 1e-6 * d);  // 0.4 + 1.3 − 2 steps
  // RTN: 0 and 1 step, errors 0.4 and 0.3 steps that add up.
  EXPECT_NEAR(rep.rtn_loss, 4.0 * (0.7 * d) * (0.7 * d) + rest, 1e-5 * rep.rtn_loss);

  // The layer's output error on the calibration tokens is the trace form.
  double out_err = 0.0;
  for (int64_t t = 0; t < tokens; ++t) {
    double y = 0.0;
    for (int64_t c = 0; c < cols; ++c) y += (static_cast<double>(W[c]) - Q[c]) * X[t * cols + c];
    out_err += y * y;
  }
  EXPECT_NEAR(out_err, want, 1e-12 + 1e-6 * want);
}

// The textbook algorithm in double, for Q8_C (one scale per row, fixed by the first quantizer
// call): Hinv = upper Cholesky factor of (H + λI)⁻¹, then column by column q = nearest level,
// err = (w − q)/Hinv_jj, w[k] −= err·Hinv_jk. gptq.cpp never forms the inverse (see its header
// comment); the two must choose the same levels up to rounding ties.
TEST(Gptq, MatchesTextbookGptqInDouble) {
  const int64_t rows = 8, cols = 128, tokens = 256;
  const std::vector<float> H = correlated_hessian(cols, tokens, 91);
  const std::vector<float> W = normal(static_cast<size_t>(rows * cols), 92, 0.05f);
  for (bool act : {false, true}) {
    std::vector<int64_t> perm(static_cast<size_t>(cols));
    for (int64_t i = 0; i < cols; ++i) perm[i] = i;
    if (act) {
      std::stable_sort(perm.begin(), perm.end(),
                       [&](int64_t a, int64_t b) { return H[a * cols + a] > H[b * cols + b]; });
    }
    double mean = 0;
    for (int64_t i = 0; i < cols; ++i) mean += H[i * cols + i];
    const double lambda = 0.01 * mean / static_cast<double>(cols);
    // Permuted damped H, its Cholesky L, (LLᵀ)⁻¹, and that inverse's upper Cholesky factor U.
    std::vector<double> A(static_cast<size_t>(cols * cols)), L(A.size(), 0.0), Inv(A.size(), 0.0), U(A.size(), 0.0);
    for (int64_t i = 0; i < cols; ++i) {
      for (int64_t j = 0; j < cols; ++j) A[i * cols + j] = H[perm[i] * cols + perm[j]] + (i == j ? lambda : 0.0);
    }
    auto chol = [&](const std::vector<double>& M, std::vector<double>& out) {
      std::fill(out.begin(), out.end(), 0.0);
      for (int64_t j = 0; j < cols; ++j) {
        double s = M[j * cols + j];
        for (int64_t p = 0; p < j; ++p) s -= out[j * cols + p] * out[j * cols + p];
        out[j * cols + j] = std::sqrt(s);
        for (int64_t i = j + 1; i < cols; ++i) {
          double t = M[i * cols + j];
          for (int64_t p = 0; p < j; ++p) t -= out[i * cols + p] * out[j * cols + p];
          out[i * cols + j] = t / out[j * cols + j];
        }
      }
    };
    chol(A, L);
    for (int64_t c = 0; c < cols; ++c) {  // solve L·Lᵀ·x = e_c
      std::vector<double> y(static_cast<size_t>(cols));
      for (int64_t i = 0; i < cols; ++i) {
        double t = i == c ? 1.0 : 0.0;
        for (int64_t p = 0; p < i; ++p) t -= L[i * cols + p] * y[p];
        y[i] = t / L[i * cols + i];
      }
      for (int64_t i = cols - 1; i >= 0; --i) {
        double t = y[i];
        for (int64_t p = i + 1; p < cols; ++p) t -= L[p * cols + i] * Inv[p * cols + c];
        Inv[i * cols + c] = t / L[i * cols + i];
      }
    }
    chol(Inv, L);  // lower factor of the inverse; U is its transpose
    for (int64_t i = 0; i < cols; ++i) {
      for (int64_t j = 0; j < cols; ++j) U[i * cols + j] = L[j * cols + i];
    }

    GptqOptions opt;
    opt.act_order = act;
    const auto rb = static_cast<int64_t>(row_bytes(static_cast<uint32_t>(TensorType::Q8_C), cols));
    std::vector<uint8_t> got(static_cast<size_t>(rows * rb));
    const GptqReport rep = gptq_quantize(TensorType::Q8_C, W.data(), rows, cols, H.data(), opt, got.data());
    const std::vector<float> Q = dequant(TensorType::Q8_C, got, rows, cols);
    int64_t same = 0;
    std::vector<float> Qref(W.size());
    for (int64_t r = 0; r < rows; ++r) {
      float d;
      std::memcpy(&d, got.data() + r * rb, 4);  // the row scale quantize_row chose (checked below)
      std::vector<double> w(static_cast<size_t>(cols));
      for (int64_t j = 0; j < cols; ++j) w[j] = W[r * cols + perm[j]];
      for (int64_t j = 0; j < cols; ++j) {
        const double l = std::clamp(std::nearbyint(w[j] / d), -127.0, 127.0);
        const double q = static_cast<double>(d * static_cast<float>(l));
        Qref[r * cols + perm[j]] = static_cast<float>(q);
        const double err = (w[j] - q) / U[j * cols + j];
        for (int64_t k = j + 1; k < cols; ++k) w[k] -= err * U[j * cols + k];
      }
      for (int64_t c = 0; c < cols; ++c) same += Q[r * cols + c] == Qref[r * cols + c];
    }
    const std::vector<uint8_t> rtn = rtn_bytes(TensorType::Q8_C, W, rows, cols);
    for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(0, std::memcmp(got.data() + r * rb, rtn.data() + r * rb, 4));
    EXPECT_GE(static_cast<double>(same), 0.99 * static_cast<double>(rows * cols)) << "act_order " << act;
    const double ref_loss = loss(W, Qref, H, rows, cols);
    EXPECT_NEAR(rep.gptq_loss, ref_loss, 0.01 * ref_loss) << "act_order " << act;
  }
}

// act_order: static groups keep every group's parameters exactly RTN's; only levels move.
TEST(Gptq, ActOrderKeepsRtnGroupParameters) {
  const int64_t rows = 5, cols = 512, tokens = 768;
  std::vector<float> H = correlated_hessian(cols, tokens, 31);
  // Uneven input scales so the order really changes.
  std::vector<float> s(cols);
  std::mt19937 rng(32);
  std::uniform_real_distribution<float> ud(0.2f, 3.0f);
  for (float& v : s) v = ud(rng);
  for (int64_t i = 0; i < cols; ++i) {
    for (int64_t j = 0; j < cols; ++j) H[i * cols + j] *= s[i] * s[j];
  }
  const std::vector<float> W = normal(static_cast<size_t>(rows * cols), 33, 0.05f);
  for (TensorType t : kAllTypes) {
    GptqOptions opt;
    opt.act_order = true;
    const TypeTraits* tr = type_traits(t);
    const auto rb = static_cast<int64_t>(row_bytes(static_cast<uint32_t>(t), cols));
    std::vector<uint8_t> got(static_cast<size_t>(rows * rb));
    const GptqReport rep = gptq_quantize(t, W.data(), rows, cols, H.data(), opt, got.data());
    const std::vector<uint8_t> rtn = rtn_bytes(t, W, rows, cols);
    EXPECT_NE(got, rtn) << name(t);
    for (int64_t r = 0; r < rows; ++r) {
      if (t == TensorType::Q8_C) {
        EXPECT_EQ(0, std::memcmp(got.data() + r * rb, rtn.data() + r * rb, 4)) << name(t);
        continue;
      }
      for (int64_t b = 0; b < cols / tr->block_elems; ++b) {
        const int64_t o = r * rb + b * tr->block_bytes;
        for (auto [lo, hi] : param_bytes(t)) {
          for (int i = lo; i < hi; ++i) ASSERT_EQ(got[o + i], rtn[o + i]) << name(t) << " row " << r << " block " << b;
        }
      }
    }
    const double rtn_loss = loss(W, dequant(t, rtn, rows, cols), H, rows, cols);
    const double gptq_loss = loss(W, dequant(t, got, rows, cols), H, rows, cols);
    EXPECT_LE(gptq_loss, rtn_loss) << name(t);
    EXPECT_NEAR(rep.gptq_loss, gptq_loss, 1e-3 * gptq_loss) << name(t);
  }
}

// The lazy-batch width only regroups the same sums: any width (rounded to the groups) gives the
// same quantization up to float rounding, including widths below the group size. (Rounding can
// still flip a level now and then, and with it a K-quant group's searched scales.)
TEST(Gptq, BatchWidthDoesNotChangeTheResult) {
  const int64_t rows = 6, cols = 512, tokens = 768;
  const std::vector<float> H = correlated_hessian(cols, tokens, 81);
  const std::vector<float> W = normal(static_cast<size_t>(rows * cols), 82, 0.05f);
  for (TensorType t : {TensorType::Q4_0, TensorType::Q4_K, TensorType::Q6_K, TensorType::Q8_C}) {
    const auto rb = static_cast<int64_t>(row_bytes(static_cast<uint32_t>(t), cols));
    std::vector<uint8_t> ref(static_cast<size_t>(rows * rb)), got(ref.size());
    GptqOptions opt;
    const GptqReport want = gptq_quantize(t, W.data(), rows, cols, H.data(), opt, ref.data());
    for (int64_t block : {1, 17, 100, 512, 4096}) {
      opt.block = block;
      const GptqReport rep = gptq_quantize(t, W.data(), rows, cols, H.data(), opt, got.data());
      const double gptq = loss(W, dequant(t, got, rows, cols), H, rows, cols);
      EXPECT_NEAR(rep.gptq_loss, gptq, 1e-3 * gptq) << name(t) << " block " << block;
      EXPECT_NEAR(rep.gptq_loss, want.gptq_loss, 0.01 * want.gptq_loss) << name(t) << " block " << block;
      size_t same = 0;
      for (size_t i = 0; i < got.size(); ++i) same += got[i] == ref[i];
      EXPECT_GT(static_cast<double>(same), 0.95 * static_cast<double>(got.size())) << name(t) << " block " << block;
    }
  }
}

// Inputs never seen in calibration: their weights are free, and the loss ignores them.
TEST(Gptq, DeadInputsAreFree) {
  const int64_t rows = 4, cols = 256, tokens = 512;
  std::vector<float> H = correlated_hessian(cols, tokens, 41);
  for (int64_t k : {3, 77, 200}) {
    for (int64_t j = 0; j < cols; ++j) H[k * cols + j] = H[j * cols + k] = 0.0f;
  }
  const std::vector<float> W = normal(static_cast<size_t>(rows * cols), 42, 0.05f);
  for (TensorType t : {TensorType::Q4_0, TensorType::Q4_K, TensorType::Q8_C}) {
    for (bool act : {false, true}) {
      GptqOptions opt;
      opt.act_order = act;
      const auto rb = static_cast<int64_t>(row_bytes(static_cast<uint32_t>(t), cols));
      std::vector<uint8_t> got(static_cast<size_t>(rows * rb));
      const GptqReport rep = gptq_quantize(t, W.data(), rows, cols, H.data(), opt, got.data());
      EXPECT_EQ(rep.dead, 3);
      const double gptq = loss(W, dequant(t, got, rows, cols), H, rows, cols);
      EXPECT_NEAR(rep.gptq_loss, gptq, 1e-3 * gptq) << name(t);
      EXPECT_LT(gptq, rep.rtn_loss) << name(t);
    }
  }
}

TEST(Gptq, IndefiniteHessianGetsMoreDampingOrFails) {
  const int64_t cols = 32;
  std::vector<float> W = normal(cols, 51);
  std::vector<float> H(cols * cols, 1.0f);  // rank one: singular without damping
  GptqOptions opt;
  opt.damp = 0.0f;
  std::vector<uint8_t> out(row_bytes(static_cast<uint32_t>(TensorType::Q8_0), cols));
  const GptqReport rep = gptq_quantize(TensorType::Q8_0, W.data(), 1, cols, H.data(), opt, out.data());
  EXPECT_GT(rep.damp, 0.0);
  for (int64_t i = 0; i < cols; ++i) H[i * cols + i] = 1.0f;
  H[1] = H[cols] = 50.0f;  // |H01| far above the diagonal: the retries (up to λ = 10) cannot repair it
  EXPECT_THROW(gptq_quantize(TensorType::Q8_0, W.data(), 1, cols, H.data(), opt, out.data()), std::runtime_error);
}

TEST(Gptq, BadArgumentsThrow) {
  const int64_t cols = 256;
  std::vector<float> W = normal(cols, 61), H(cols * cols, 0.0f);
  for (int64_t i = 0; i < cols; ++i) H[i * cols + i] = 1.0f;
  std::vector<uint8_t> out(4096);
  GptqOptions opt;
  EXPECT_THROW(gptq_quantize(TensorType::F16, W.data(), 1, cols, H.data(), opt, out.data()), std::invalid_argument);
  EXPECT_THROW(gptq_quantize(TensorType::Q8_1, W.data(), 1, cols, H.data(), opt, out.data()), std::invalid_argument);
  EXPECT_THROW(gptq_quantize(TensorType::Q4_K, W.data(), 1, 96, H.data(), opt, out.data()), std::invalid_argument);
  EXPECT_THROW(gptq_quantize(TensorType::Q4_0, W.data(), 1, 40, H.data(), opt, out.data()), std::invalid_argument);
  EXPECT_THROW(gptq_quantize(TensorType::Q8_C, W.data(), 1, 48, H.data(), opt, out.data()), std::invalid_argument);
  W[5] = std::nanf("");
  EXPECT_THROW(gptq_quantize(TensorType::Q4_0, W.data(), 1, cols, H.data(), opt, out.data()), std::invalid_argument);
  W[5] = 0.0f;
  H[7] = INFINITY;
  EXPECT_THROW(gptq_quantize(TensorType::Q4_0, W.data(), 1, cols, H.data(), opt, out.data()), std::invalid_argument);
  H[7] = 0.0f;
  H[3 * cols + 3] = -1.0f;
  EXPECT_THROW(gptq_quantize(TensorType::Q4_0, W.data(), 1, cols, H.data(), opt, out.data()), std::invalid_argument);
  H[3 * cols + 3] = 1.0f;
  EXPECT_NO_THROW(gptq_quantize(TensorType::Q4_0, W.data(), 1, cols, H.data(), opt, out.data()));
  opt.block = 0;
  EXPECT_THROW(gptq_quantize(TensorType::Q4_0, W.data(), 1, cols, H.data(), opt, out.data()), std::invalid_argument);
  opt = GptqOptions{};
  opt.damp = -1.0f;
  EXPECT_THROW(gptq_quantize(TensorType::Q4_0, W.data(), 1, cols, H.data(), opt, out.data()), std::invalid_argument);
}

// The 1.1B shape's q and down projections (run by hand: --gtest_also_run_disabled_tests).
TEST(Gptq, DISABLED_Timing) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{2048, 2048}, {2048, 5632}}) {
    const int64_t k = 1024;
    const std::vector<float> X = normal(static_cast<size_t>(k * cols), 71);
    std::vector<float> H(static_cast<size_t>(cols * cols), 0.0f);
    for (int64_t i = 0; i < cols; ++i) H[i * cols + i] = 0.1f * static_cast<float>(k);
    linalg::accumulate_gram(X.data(), k, cols, cols, H.data());
    const std::vector<float> W = normal(static_cast<size_t>(rows * cols), 72, 0.02f);
    for (TensorType t : {TensorType::Q4_0, TensorType::Q4_K, TensorType::Q8_C}) {
      std::vector<uint8_t> out(static_cast<size_t>(rows) * row_bytes(static_cast<uint32_t>(t), cols));
      for (bool rtn : {false, true}) {
        GptqOptions opt;
        opt.compute_rtn_loss = rtn;
        const auto t0 = std::chrono::steady_clock::now();
        const GptqReport rep = gptq_quantize(t, W.data(), rows, cols, H.data(), opt, out.data());
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("%lld x %lld %-6s rtn_loss %-3s %.2f s  (gptq/rtn %.3f)\n", static_cast<long long>(rows),
                    static_cast<long long>(cols), name(t).c_str(), rtn ? "on" : "off", s,
                    rtn ? rep.gptq_loss / rep.rtn_loss : 0.0);
      }
    }
  }
}

}  // namespace
}  // namespace nibble
