// Prefill matmuls through oneDNN's bf16 matmul primitive: on CPUs with AMX, oneDNN runs them
// on the AMX tile unit; elsewhere on AVX-512 BF16 or plain AVX-512/AVX2. Chosen by name only
// (nibble_context_set_gemm "onednn", on any x86 CPU, so the path is tested everywhere): "auto"
// takes nibble's own AMX kernel (kernels/amx_matmul.h), which beat this one on pp512 (1.1B
// shape, Xeon, 2 threads: 735–785 against 558–562 t/s) without keeping a copy.
//
// Each weight is dequantised once, on first use, to bf16 in oneDNN's own blocked layout and
// kept (2 bytes per weight: the price of the path, on top of the quantised weights that decode
// keeps using). Activations are converted to bf16 per call; results are f32. bf16 keeps 8
// significant bits, about what nibble's int8 activation blocks keep, so quality is that of
// the integer path (docs/design.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kernels/prompt_matmul.h"

namespace nibble {

struct WeightMatrix;

class OneDnnMatmul final : public PromptMatmul {
 public:
  // True when nibble was built with oneDNN (x86 builds with Debian's libdnnl-dev).
  static bool available();

  OneDnnMatmul();  // throws std::runtime_error when !available()
  ~OneDnnMatmul() override;
  OneDnnMatmul(const OneDnnMatmul&) = delete;
  OneDnnMatmul& operator=(const OneDnnMatmul&) = delete;

  using PromptMatmul::run;
  const char* name() const override { return "onednn"; }
  int64_t min_rows() const override;

  // Any weight type dequantize_row handles, any layout matmul accepts. X is converted to bf16
  // once per call (for all weights of run_shared_input).
  void run_shared_input(const WeightMatrix* const* Ws, float* const* Ys, const int64_t* ldys,
                        int n_weights, const float* X, int64_t M, int n_threads) override;

  // The instruction set oneDNN dispatches to on this CPU (e.g. "avx512_core_amx").
  static std::string isa();

  // True when oneDNN runs its bf16 matmul on AMX tiles here (the CPU has AMX and the kernel lets
  // the process use it).
  static bool runs_on_amx();

 private:
  // Y = X·Wᵀ from the bf16 X that run_shared_input left in Impl::src.
  void execute(const WeightMatrix& W, int64_t M, float* Y, int64_t ldy, int n_threads);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Float weights (F32, F16, BF16) in a prompt-sized matmul: Y = X·Wᵀ through oneDNN's sgemm,
// W's rows widened to F32 a panel at a time (exact: every F16/BF16 value is an F32). Returns
// false, doing nothing, when nibble was built without oneDNN or the type is not a float type.
bool onednn_float_gemm(const WeightMatrix& W, const float* X, int64_t M, float* Y, int64_t ldy,
                       int n_threads);

}  // namespace nibble
