// quantize-model's engine: opens any input nibble reads (GGUF, llama2.c with a tokenizer, a
// Hugging Face LLaMA directory), gives each tensor the type its recipe says, and writes nibble's
// own file (docs/format.md) or GGUF, by OUT's extension. Tensors are quantized one at a time
// and streamed to the writer, so no model is held in memory twice. Optionally measures how far
// each quantized tensor is from the original (MSE, SNR, cosine, max error).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "loaders/model_file.h"
#include "quant/act_calibration.h"
#include "quant/awq.h"
#include "quant/calibration.h"
#include "quant/gptq.h"
#include "quant/sensitivity.h"

namespace nibble {

struct RecipeInfo {
  const char* name;         // "q4", "Q4_0"
  const char* extension;    // the output it is for: ".q4" (nibble file), ".gguf"
  const char* description;  // one line for --help
};

// Every recipe: nibble's (non-.gguf output) first, then GGUF's (quant/gguf_quantize.h).
const std::vector<RecipeInfo>& all_recipes();
const std::vector<RecipeInfo>& nibble_recipes();

// True when `out` is written as GGUF (its name ends in .gguf, any case), else nibble's format.
bool is_gguf_output(const std::string& out);

struct QuantizeOptions {
  std::string tokenizer_path;  // sentencepiece .model to embed (llama2.c input needs one)
  bool measure = false;        // per-tensor error statistics (dequantizes every tensor again)

  // Calibrated quantization (quant/calibration.h): a calibration text enables the methods
  // below, which need one; none of them without it.
  CalibrationOptions calib;
  bool awq = false;
  AwqOptions awq_options;
  bool gptq = false;
  GptqOptions gptq_options;
  // Recipes q8a8 / q8o (static INT8 activations): SmoothQuant's α and how each input's scale
  // is chosen from its calibration histogram.
  float smooth_alpha = 0.5f;
  ActCalibSpec act_calib{ActCalib::kMse, 99.99};
  // Recipe q8o: input channels with calibration max |x| above this stay in F16.
  float outlier_threshold = 6.0f;
  // Recipe auto: per-tensor types by measured sensitivity (quant/sensitivity.h) under a budget,
  // either bits per weight over all tensors or the output file's size in bytes (one of them).
  double target_bpw = 0;
  uint64_t target_size = 0;
  int64_t sensitivity_sequences = 8;
};

struct TensorQuantStats {
  std::string name;
  TensorType src_type = TensorType::F32, type = TensorType::F32;
  uint32_t layout = 0;
  std::vector<uint64_t> dims;
  uint64_t n_elements = 0;
  uint64_t bytes = 0;  // in the output file
  bool copied = false; // the source bytes were taken as they are (same type: no loss)
  // Dequantized output against the source values (measure only). snr_db is +inf for an exact
  // tensor; cosine is 1 for two all-zero tensors.
  double mse = 0, snr_db = 0, cosine = 1, max_abs_err = 0;
  // Sums behind the ratios, so totals over many tensors can be formed exactly.
  double sum_sq = 0, sum_err_sq = 0;
  // Calibrated runs with measure, linear layers only (else −1): the output error on the
  // calibration activations relative to the output, tr(E H Eᵀ) / tr(W H Wᵀ), of plain
  // round-to-nearest of the original weights and of what was written (both in the original
  // input basis, so AWQ's scales count).
  double out_err_rtn = -1, out_err = -1;
};

struct QuantizeResult {
  std::string container;  // "nibble" or "gguf"
  std::string recipe;
  uint64_t n_tensors = 0, n_params = 0;
  uint64_t src_bytes = 0;     // the input's tensor bytes
  uint64_t tensor_bytes = 0;  // the output's tensor bytes
  uint64_t file_bytes = 0;    // the output file's size
  bool measured = false;
  std::vector<TensorQuantStats> tensors;
  // Over all weights (measured only).
  double mse = 0, snr_db = 0, max_abs_err = 0;
  // Calibrated runs: what was done, in words ("awq+gptq on kjv-train.txt, 128 × 128 tokens,
  // seed 1"), the calibration's cost, and the AWQ search per scale group.
  std::string calibration;
  std::vector<std::pair<std::string, float>> act_scales;  // static recipes: input step per tensor
  std::vector<std::pair<std::string, std::vector<int32_t>>> outlier_cols;  // q8o: per tensor
  // Recipe auto: every tensor's measured candidates and the choice (an index into them).
  std::vector<TensorSensitivity> sensitivity;
  std::vector<int> allocation;
  double allocation_cost = 0;       // Σ ΔKL of the choice
  std::string allocation_summary;   // as recorded in nibble.quantization.allocation
  double calib_seconds = 0;
  uint64_t calib_bytes = 0;
  AwqReport awq;
  // GPTQ: Σ over its tensors of tr(E H Eᵀ) for round-to-nearest and for GPTQ's rows.
  double gptq_loss_rtn = 0, gptq_loss = 0;
  int64_t gptq_tensors = 0;
  double gptq_seconds = 0;
};

// Opens a quantizer input: a Hugging Face LLaMA checkpoint directory, or any file
// open_model_file reads. With a tokenizer path, its vocabulary replaces the input's; without,
// the input must carry one. Throws FileError.
ModelFile open_quant_source(const std::string& in, const std::string& tokenizer_path);

// The type `recipe` gives tensor t (1-D tensors stay F32; rows that are not whole groups fall
// back as docs/format.md says). Throws std::invalid_argument for an unknown recipe.
TensorType recipe_tensor_type(const std::string& recipe, const TensorInfo& t);

// True when the writer stores tensor t of `type` in layout 1 (packed4): 2-D linear weights
// (not the embedding table, which is read row by row) whose type and shape have that layout.
bool stores_packed(const TensorInfo& t, TensorType type);

// The whole pipeline. The container follows out's extension; a recipe for the other container
// is refused with a hint. Throws FileError / std::invalid_argument.
QuantizeResult quantize_model(const std::string& in, const std::string& out,
                              const std::string& recipe, const QuantizeOptions& options);

// Tests: what quantize_model would write to a nibble file, in memory and in the plain layout
// (tensor bytes owned by the returned file; metadata without the source hash).
ModelFile quantize_in_memory(const ModelFile& src, const std::string& recipe);

}  // namespace nibble
