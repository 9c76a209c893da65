// Activation-aware weight quantization (AWQ, Lin et al. 2023), on the calibration statistics.
//
// Inputs whose channels carry large activations matter more: scaling input channel j of a
// linear layer by s_j > 1 (and dividing whatever produces that channel by s_j) leaves the
// full-precision function unchanged but gives the channel's weights a finer share of the
// quantization grid. Per scale group (the layers that read one input, with the tensor that
// produces it), s = mean|x|^α, α searched on a grid to minimise the group's output error on
// the calibration activations — measured exactly through H = XᵀX as tr(E H Eᵀ) for the weight
// error E, so no activations are stored. The groups of a LLaMA-style block:
//   attn_norm → q, k, v      ffn_norm → gate, up      up → down (up's rows divided)
//   v → attn_output (v's rows divided; only without grouped-query attention, as in AWQ's
//   reference, since with GQA one v row feeds several attn_output columns)
// Then AWQ's clipping search: per row and quantization block, the clip ratio of the block's
// max that minimises the block's output error (for the types whose quantizer takes the block
// max as is: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_G64, Q4_G128; the K-quant and IQ4 quantizers
// already search their scales).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/tensor_type.h"
#include "quant/calibration.h"
#include "quant/float_weights.h"

namespace nibble {

struct AwqOptions {
  int n_grid = 20;             // α ∈ {0, 1/n, …, (n−1)/n}
  bool clip = true;            // the clipping search after scaling
  // Output rows per layer the α search measures (evenly spaced): the search compares α values
  // on the same rows, so a sample ranks them as the whole layer would at a fraction of the cost.
  int64_t sample_rows = 128;
};

// One scale group's search: output errors relative to tr(W H Wᵀ), summed over its layers.
struct AwqGroupReport {
  std::string group;  // "blk.3.attn_norm>q,k,v"
  float alpha = 0;
  double rel_err_rtn = 0, rel_err_awq = 0;
};

struct AwqReport {
  std::vector<AwqGroupReport> groups;
  int64_t clipped_blocks = 0, blocks = 0;  // blocks whose clip ratio is below 1
  double seconds = 0;
};

// The type each tensor will be quantized to.
using TypeOfTensor = std::function<TensorType(const std::string& name)>;

// Applies AWQ to the LLaMA-style blocks of src: the changed tensors (norms and linear layers)
// are left in w (loaded from src as needed), and cal's statistics are rewritten for the scaled
// inputs (H_ij / s_i s_j, mean and max |x_j| / s_j) so later methods (GPTQ) see what the
// quantized layers will read. Tensors quantized to a type that is not integer (F16/F32) are
// left alone.
AwqReport apply_awq(const ModelFile& src, CalibrationData& cal, FloatTensors& w,
                    const TypeOfTensor& type_of, const AwqOptions& options);

// The scale groups of block `layer`: a producer (a norm weight, or a linear layer whose output
// rows feed the input) and the linear layers that read that input. v → attn_output only when
// the model has as many KV heads as query heads.
struct ScaleGroup {
  std::string producer;
  std::vector<std::string> consumers;
  LinearSite site;
  std::string label;  // "blk.3.attn_norm>q,k,v"
};
std::vector<ScaleGroup> scale_groups(const ModelConfig& c, int64_t layer);

// The fold itself: input channel j of every tensor in `consumers` multiplied by s[j], and
// `producer` divided by s — a norm weight (1-D) elementwise, or a linear layer's output rows.
void fold_input_scales(FloatTensors& w, const ModelFile& src, const std::string& producer,
                       const std::vector<std::string>& consumers, const std::vector<float>& s);

}  // namespace nibble
