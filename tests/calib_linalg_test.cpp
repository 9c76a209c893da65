// quant/linalg.h against plain double loops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
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

// Shapes with every kind of edge for the portable kernel's packing (partial register tiles, more
// than one depth slab and column slab), on every Highway target this CPU runs. With oneDNN this
// checks its sgemm instead, once per target name.
TEST(Linalg, GemmEdgesOnEveryTarget) {
  const int64_t m = 23, n = 1100, k = 530;
  const std::vector<float> A = random_matrix(m, k, 5), B = random_matrix(k, n, 6), C0 = random_matrix(m, n, 7);
  std::vector<double> want(static_cast<size_t>(m * n));
  for (const std::string& isa : available_isas()) {
    if (isa.rfind("NEON_", 0) == 0) continue;  // ARM's int8 extensions, not Highway targets
    set_isa(isa);
    for (int tb = 0; tb < 2; ++tb) {
      std::vector<float> Bt(B.size());
      for (int64_t p = 0; p < k; ++p) {
        for (int64_t j = 0; j < n; ++j) Bt[j * k + p] = B[p * n + j];
      }
      for (float beta : {0.0f, 1.0f}) {
        std::vector<float> C = C0;
        linalg::gemm(false, tb, m, n, k, 1.5f, A.data(), k, tb ? Bt.data() : B.data(), tb ? k : n, beta, C.data(), n);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            double s = 0;
            for (int64_t p = 0; p < k; ++p) s += static_cast<double>(A[i * k + p]) * B[p * n + j];
            const double w = 1.5 * s + beta * C0[i * n + j];
            ASSERT_NEAR(C[i * n + j], w, 2e-3) << isa << " tb " << tb << " beta " << beta << " at " << i << "," << j;
          }
        }
      }
    }
  }
  set_isa("auto");
}

TEST(Linalg, CholeskyFactorsAndRejectsIndefinite) {
  const int64_t n = 300, t = 400;  // more than two panels, the last one partial
  const std::vector<float> X = random_matrix(t, n, 8);
  std::vector<float> H(static_cast<size_t>(n * n), 0.0f);
  linalg::accumulate_gram(X.data(), t, n, n, H.data());
  std::vector<float> L = H;
  ASSERT_TRUE(linalg::cholesky_lower(L.data(), n, n));
  double max_rel = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      if (j > i) {
        ASSERT_EQ(L[i * n + j], 0.0f);
        continue;
      }
      double s = 0;
      for (int64_t p = 0; p <= j; ++p) s += static_cast<double>(L[i * n + p]) * L[j * n + p];
      max_rel = std::max(max_rel, std::fabs(s - H[i * n + j]) / H[i * n + i]);
    }
  }
  EXPECT_LT(max_rel, 1e-5);
  std::vector<float> bad = H;
  bad[250 * n + 250] = -1.0f;
  EXPECT_FALSE(linalg::cholesky_lower(bad.data(), n, n));
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
