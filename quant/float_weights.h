// Full-precision working copies of a model's tensors, which the calibrated methods rewrite
// before quantization (AWQ and SmoothQuant fold scales into norms and linear layers), and a
// view of the model with those copies in place (to run it, or to measure what a change does).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loaders/model_file.h"

namespace nibble {

// rows × cols floats, row-major: a row is one output channel (GGUF's dims[1] × dims[0]); a
// 1-D tensor (a norm) is one row.
struct FloatTensor {
  int64_t rows = 0, cols = 0;
  std::vector<float> v;
  float* row(int64_t r) { return v.data() + r * cols; }
  const float* row(int64_t r) const { return v.data() + r * cols; }
};

using FloatTensors = std::map<std::string, FloatTensor>;

// Tensor `name` of src dequantized to floats (packed layouts unpacked). Throws FileError for a
// missing tensor or a type that cannot be dequantized.
FloatTensor load_float_tensor(const ModelFile& src, const std::string& name);

// The working copy of `name` in w, loaded from src on first use.
FloatTensor& float_tensor(FloatTensors& w, const ModelFile& src, const std::string& name);

// src with each tensor of `replaced` substituted by its F32 copy (the others still point into
// src, which must outlive the result). Runs with load_model like any file.
ModelFile with_float_tensors(const ModelFile& src, const FloatTensors& replaced);
// Inserts `t` as F32 tensor `name` (dims [cols, rows]) right after tensor `after` of m.
// Throws std::invalid_argument when `after` is not there or `name` already is.
void add_float_tensor_after(ModelFile& m, const std::string& after, const std::string& name, FloatTensor t);

// The same, releasing each float copy as it is converted (peak memory: one tensor more).
ModelFile with_float_tensors(const ModelFile& src, FloatTensors&& replaced);

}  // namespace nibble
