// Dense float linear algebra for the calibrated quantizers (quant/): the products behind the
// calibration Hessians (H += XᵀX) and GPTQ's lazy-batch updates. Row-major throughout. Uses
// oneDNN's sgemm when nibble is built with oneDNN, else a packed, register-tiled Highway kernel (per-target, OpenMP); results
// agree to float rounding, not bit for bit.
#pragma once

#include <cstdint>

namespace nibble::linalg {

// C[m×n] = alpha · op(A) · op(B) + beta · C, op(A) m×k, op(B) k×n; op transposes when the flag
// is set (A is then stored k×m). lda/ldb/ldc are row strides in elements. Threads: OpenMP's.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// H[d×d] += Xᵀ·X for X of t rows × d columns (ldx apart): the Gram matrix of a layer input
// summed over tokens. The two triangles may differ by rounding; symmetrize() once at the end.
void accumulate_gram(const float* X, int64_t t, int64_t d, int64_t ldx, float* H);

// H = (H + Hᵀ) / 2 for a d×d matrix, in cache-sized tiles.
void symmetrize(float* H, int64_t d);

// In-place Cholesky factorisation A = L·Lᵀ of a symmetric positive-definite n×n matrix (rows lda
// apart; only the lower triangle is read). On success the lower triangle holds L and the strict
// upper triangle is zeroed. Returns false when a pivot is not positive (A is not numerically
// positive definite); A then holds partial results. Blocked: the O(n³) work is gemm calls.
bool cholesky_lower(float* A, int64_t n, int64_t lda);

}  // namespace nibble::linalg
