// Prompt matmuls on Intel's AMX tile unit (Sapphire Rapids and later), nibble's own kernel:
// TDPBF16PS multiplies a 16×32 bf16 tile of weights with a 32×16 bf16 tile of activations into
// 16×16 f32 sums, 1024 multiply-adds per instruction — on a Xeon core ~4× what AVX-512 VNNI's
// int8 dot products reach (bench_matmul's int8 peak row).
//
// The weights stay quantised: each thread dequantises a panel of 64 rows to bf16 (in tile order:
// 16 rows × 32 elements, 1 KB, per tile) into its own scratch, then runs every activation row
// past it, so a weight is decoded once per call and the conversion costs N·K, not M·N·K. The
// activations are converted to bf16 once per call (once for q/k/v and for gate/up) and laid out
// as the tile unit's B operand: per 16 tokens, per pair of K elements, a 64-byte row holding the
// pair for each token. Sums are f32 over all of K, so, as with oneDNN's bf16 path, results are
// within bf16 rounding of the inputs (8 significant bits, about what nibble's int8 activation
// blocks keep; docs/design.md).
#pragma once

#include <cstdint>
#include <memory>

#include "kernels/prompt_matmul.h"

namespace nibble {

class AmxMatmul final : public PromptMatmul {
 public:
  // True when the CPU has AMX-TILE, AMX-BF16 and AVX-512 BF16 and Linux lets this process use
  // the tile registers (it asks once: arch_prctl ARCH_REQ_XCOMP_PERM). Always false off x86-64.
  static bool available();

  AmxMatmul();  // throws std::runtime_error when !available()
  ~AmxMatmul() override;
  AmxMatmul(const AmxMatmul&) = delete;
  AmxMatmul& operator=(const AmxMatmul&) = delete;

  using PromptMatmul::run;
  const char* name() const override { return "amx"; }
  int64_t min_rows() const override;

  // Any quantised type dequantize_row handles with K a multiple of 32 (every block size is),
  // GGUF or packed layout; weights with an outlier part throw std::invalid_argument.
  void run_shared_input(const WeightMatrix* const* Ws, float* const* Ys, const int64_t* ldys,
                        int n_weights, const float* X, int64_t M, int n_threads) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nibble
