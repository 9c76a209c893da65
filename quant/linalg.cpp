#include "quant/linalg.h"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(NIBBLE_HAVE_DNNL)
#include <oneapi/dnnl/dnnl.h>
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/linalg-inl.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "quant/linalg-inl.h"

#if HWY_ONCE
namespace nibble::linalg {

HWY_EXPORT(GemmPortable);

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
#if defined(NIBBLE_HAVE_DNNL)
  if (dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, A, lda, B, ldb, beta, C,
                 ldc) == dnnl_success) {
    return;
  }
#endif
  HWY_DYNAMIC_DISPATCH(GemmPortable)(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
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

namespace {

// Unblocked Cholesky of a small b×b block in double (the panels' diagonal blocks: few flops, and
// double keeps the pivots of a badly conditioned Hessian honest). a is b×b row-major, lower
// triangle used; on success l holds L and linv holds L⁻¹ (both lower, row-major b×b).
bool factor_diagonal_block(const double* a, int64_t b, double* l, double* linv) {
  std::fill(l, l + b * b, 0.0);
  std::fill(linv, linv + b * b, 0.0);
  for (int64_t j = 0; j < b; ++j) {
    double s = a[j * b + j];
    for (int64_t m = 0; m < j; ++m) s -= l[j * b + m] * l[j * b + m];
    if (!(s > 0.0) || !std::isfinite(s)) return false;
    const double ljj = std::sqrt(s);
    l[j * b + j] = ljj;
    for (int64_t i = j + 1; i < b; ++i) {
      double t = a[i * b + j];
      for (int64_t m = 0; m < j; ++m) t -= l[i * b + m] * l[j * b + m];
      l[i * b + j] = t / ljj;
    }
  }
  for (int64_t j = 0; j < b; ++j) {
    linv[j * b + j] = 1.0 / l[j * b + j];
    for (int64_t i = j + 1; i < b; ++i) {
      double t = 0.0;
      for (int64_t m = j; m < i; ++m) t += l[i * b + m] * linv[m * b + j];
      linv[i * b + j] = -t / l[i * b + i];
    }
  }
  return true;
}

}  // namespace

bool cholesky_lower(float* A, int64_t n, int64_t lda) {
  // Left-looking by panels of kPanel columns: one gemm brings a panel up to date with every
  // column before it, its diagonal block is factored in double, and the rows below are solved
  // against that block through its explicit inverse (another gemm, instead of a scalar trsm).
  constexpr int64_t kPanel = 128;
  std::vector<double> a, l, linv;
  std::vector<float> linv_f, below;
  for (int64_t j0 = 0; j0 < n; j0 += kPanel) {
    const int64_t b = std::min(kPanel, n - j0);
    float* diag = A + j0 * lda + j0;
    if (j0 > 0) {
      gemm(false, true, n - j0, b, j0, -1.0f, A + j0 * lda, lda, A + j0 * lda, lda, 1.0f, diag, lda);
    }
    a.assign(static_cast<size_t>(b * b), 0.0);
    l.resize(a.size());
    linv.resize(a.size());
    for (int64_t i = 0; i < b; ++i) {
      for (int64_t j = 0; j <= i; ++j) a[i * b + j] = diag[i * lda + j];
    }
    if (!factor_diagonal_block(a.data(), b, l.data(), linv.data())) return false;
    linv_f.assign(linv.begin(), linv.end());
    for (int64_t i = 0; i < b; ++i) {
      for (int64_t j = 0; j < b; ++j) diag[i * lda + j] = static_cast<float>(l[i * b + j]);
    }
    const int64_t m = n - j0 - b;
    if (m > 0) {
      float* panel = A + (j0 + b) * lda + j0;
      below.resize(static_cast<size_t>(m * b));
      for (int64_t i = 0; i < m; ++i) std::copy(panel + i * lda, panel + i * lda + b, below.data() + i * b);
      // L21 = A21 · L11⁻ᵀ
      gemm(false, true, m, b, b, 1.0f, below.data(), b, linv_f.data(), b, 0.0f, panel, lda);
    }
  }
  for (int64_t i = 0; i < n; ++i) std::fill(A + i * lda + i + 1, A + i * lda + n, 0.0f);
  return true;
}

}  // namespace nibble::linalg
#endif  // HWY_ONCE
