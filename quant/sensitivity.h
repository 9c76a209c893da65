// Bit allocation by measured sensitivity (quantize-model --target-bpw / --target-size): each
// tensor's cost of each candidate type is the mean KL divergence, on calibration sequences, of
// the model with only that tensor quantized (round-to-nearest) against the unquantized model;
// quant/bit_allocation.h then picks one type per tensor minimising the summed cost under the
// byte budget. Summing per-tensor costs assumes their effects add, as the usual
// sensitivity-based mixed-precision methods (HAWQ and successors) do; the allocator is exact
// for that model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/tensor_type.h"
#include "loaders/model_file.h"
#include "quant/bit_allocation.h"
#include "quant/calibration.h"

namespace nibble {

struct SensitivityOptions {
  std::vector<TensorType> candidates;  // each tried where the tensor's rows are whole blocks
  int64_t n_sequences = 8;             // the first ones of the calibration data
  int n_threads = 0;
};

struct TensorSensitivity {
  std::string name;
  std::vector<AllocCandidate> candidates;  // bytes in the output and ΔKL (cost)
};

// The candidates nibble files choose from: Q3_K (3.4 bits/weight) to Q8_0 (8.5).
std::vector<TensorType> default_allocation_candidates();

// Measures every 2-D tensor of `model` (the full-precision source; the embedding table too,
// which is quantized like the others) against cal's sequences. Throws std::invalid_argument
// when a tensor fits no candidate.
std::vector<TensorSensitivity> measure_sensitivity(const ModelFile& model, const CalibrationData& cal,
                                                   const SensitivityOptions& options);

}  // namespace nibble
