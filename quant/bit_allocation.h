// Mixed-precision bit allocation: quantize-model measures, for each tensor and each candidate
// type, the cost of quantizing only that tensor to that type (ΔKL on calibration text) and the
// bytes it takes; allocate_bits picks one candidate per tensor minimising the summed cost
// within a byte budget (a multiple-choice knapsack).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/tensor_type.h"

namespace nibble {

struct AllocCandidate {
  TensorType type;
  uint64_t bytes;
  double cost;
};

struct AllocResult {
  std::vector<int> choice;  // choice[t] indexes per_tensor[t]
  uint64_t bytes;           // total bytes of the choice, <= the budget
  double cost;              // summed cost of the choice
  // False only if the exact search hit its state cap (never seen below ~10^3 tensors) and
  // fell back to its best-first survivors plus a greedy repair; the choice is then feasible
  // and locally optimal but not proven optimal.
  bool optimal = true;
};

// The minimum-cost choice with total bytes <= budget_bytes, exact up to 1e-12 of the summed
// cost scale; deterministic. No single change of one tensor to another candidate that still
// fits lowers the cost. An empty per_tensor gives an empty choice.
// Throws std::invalid_argument when a tensor has no candidates, a cost is not finite, or even
// the smallest candidate of every tensor exceeds the budget (the message gives that minimum).
AllocResult allocate_bits(const std::vector<std::vector<AllocCandidate>>& per_tensor,
                          uint64_t budget_bytes);

}  // namespace nibble
