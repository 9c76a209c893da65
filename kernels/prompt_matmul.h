// A prompt matmul beside nibble's int8 GEMM: when MatmulWorkspace::prompt is set, matmul() hands
// it the quantised weights of prompt-sized products (M ≥ min_rows()), and nibble's kernels keep
// decode, float weights and weights with an outlier part. Two exist: nibble's AMX tile kernel
// (kernels/amx_matmul.h) and oneDNN's bf16 primitive (kernels/onednn_matmul.h).
#pragma once

#include <cstdint>

namespace nibble {

struct WeightMatrix;

class PromptMatmul {
 public:
  virtual ~PromptMatmul() = default;

  // What Session::gemm() reports: "amx", "onednn".
  virtual const char* name() const = 0;

  // Fewest activation rows it is given: below, nibble's own kernels are faster.
  virtual int64_t min_rows() const = 0;

  // Ys[i][m·ldys[i] + n] = Σ_k X[m·K + k]·Ws[i][n, k] for weights that read the same X (equal
  // K; q/k/v, gate/up), X prepared once, with n_threads OpenMP threads: the quantised weight
  // types matmul() runs, in any layout it accepts.
  virtual void run_shared_input(const WeightMatrix* const* Ws, float* const* Ys,
                                const int64_t* ldys, int n_weights, const float* X, int64_t M,
                                int n_threads) = 0;

  // One weight: Y = X·Wᵀ.
  void run(const WeightMatrix& W, const float* X, int64_t M, float* Y, int64_t ldy, int n_threads) {
    const WeightMatrix* w = &W;
    run_shared_input(&w, &Y, &ldy, 1, X, M, n_threads);
  }
};

}  // namespace nibble
