// quant/linalg.h against plain double loops.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "quant/linalg.h"

namespace nibble {
namespace {

std::vector<float> random_matrix(int64_t r, int64_t c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> m(static_cast<size_t>(r * c));
  for (float& v : m) v = nd(rng);
  return m;
}

TEST(Linalg, GemmMatchesDoubleLoopsForEveryTransposition) {
  const int64_t m = 37, n = 29, k = 300;
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      const std::vector<float> A = random_matrix(m, k, 1), B = random_matrix(k, n, 2);
      std::vector<float> C = random_matrix(m, n, 3), want(C.size());
      const float alpha = 0.5f, beta = -2.0f;
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double s = 0;
          for (int64_t p = 0; p < k; ++p) {
            const double a = ta ? A[p * m + i] : A[i * k + p];
            const double b = tb ? B[j * k + p] : B[p * n + j];
            s += a * b;
          }
          want[i * n + j] = static_cast<float>(alpha * s + beta * C[i * n + j]);
        }
      }
      linalg::gemm(ta, tb, m, n, k, alpha, A.data(), ta ? m : k, B.data(), tb ? k : n, beta,
                   C.data(), n);
      for (size_t i = 0; i < C.size(); ++i) EXPECT_NEAR(C[i], want[i], 1e-3) << ta << tb << i;
    }
  }
}

TEST(Linalg, GramAccumulatesAndSymmetrizes) {
  const int64_t t = 70, d = 45;
  const std::vector<float> X = random_matrix(t, d, 4);
  std::vector<float> H(d * d, 1.0f);
  linalg::accumulate_gram(X.data(), t / 2, d, d, H.data());
  linalg::accumulate_gram(X.data() + (t / 2) * d, t - t / 2, d, d, H.data());
  linalg::symmetrize(H.data(), d);
  for (int64_t i = 0; i < d; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      double s = 1.0;
      for (int64_t r = 0; r < t; ++r) s += static_cast<double>(X[r * d + i]) * X[r * d + j];
      EXPECT_NEAR(H[i * d + j], s, 1e-3);
      EXPECT_EQ(H[i * d + j], H[j * d + i]);
    }
  }
}

}  // namespace
}  // namespace nibble
