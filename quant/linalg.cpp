#include "quant/linalg.h"

#include <algorithm>
#include <vector>

#if defined(NIBBLE_HAVE_DNNL)
#include <oneapi/dnnl/dnnl.h>
#endif

namespace nibble::linalg {
namespace {

// The portable path: blocks of C rows per thread, k in slabs so a slab of B stays in cache.
void gemm_blocked(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  constexpr int64_t kSlab = 256;
#pragma omp parallel
  {
    std::vector<float> brow(static_cast<size_t>(n));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < m; ++i) {
      float* c = C + i * ldc;
      if (beta == 0.0f) {
        std::fill(c, c + n, 0.0f);
      } else if (beta != 1.0f) {
        for (int64_t j = 0; j < n; ++j) c[j] *= beta;
      }
      for (int64_t p0 = 0; p0 < k; p0 += kSlab) {
        const int64_t p1 = std::min(k, p0 + kSlab);
        for (int64_t p = p0; p < p1; ++p) {
          const float a = alpha * (ta ? A[p * lda + i] : A[i * lda + p]);
          if (a == 0.0f) continue;
          const float* b = B + p * ldb;
          if (tb) {
            for (int64_t j = 0; j < n; ++j) brow[j] = B[j * ldb + p];
            b = brow.data();
          }
          for (int64_t j = 0; j < n; ++j) c[j] += a * b[j];
        }
      }
    }
  }
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
#if defined(NIBBLE_HAVE_DNNL)
  if (dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, A, lda, B, ldb, beta, C,
                 ldc) == dnnl_success) {
    return;
  }
#endif
  gemm_blocked(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

void accumulate_gram(const float* X, int64_t t, int64_t d, int64_t ldx, float* H) {
  if (t <= 0 || d <= 0) return;
  gemm(true, false, d, d, t, 1.0f, X, ldx, X, ldx, 1.0f, H, d);
}

void symmetrize(float* H, int64_t d) {
  constexpr int64_t kTile = 64;
  const int64_t nt = (d + kTile - 1) / kTile;
#pragma omp parallel for schedule(dynamic)
  for (int64_t bi = 0; bi < nt; ++bi) {
    for (int64_t bj = bi; bj < nt; ++bj) {
      for (int64_t i = bi * kTile; i < std::min(d, (bi + 1) * kTile); ++i) {
        for (int64_t j = std::max(i + 1, bj * kTile); j < std::min(d, (bj + 1) * kTile); ++j) {
          const float m = 0.5f * (H[i * d + j] + H[j * d + i]);
          H[i * d + j] = m;
          H[j * d + i] = m;
        }
      }
    }
  }
}

}  // namespace nibble::linalg
