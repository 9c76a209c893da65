// The calibration pass behind quantize-model's calibrated methods (AWQ, GPTQ, SmoothQuant,
// static activation scales, bit allocation): runs a full-precision model over calibration text
// and collects, for the input of every linear layer, per-channel mean and max |x| and the Gram
// matrix H = XᵀX summed over tokens. Layers that read the same input (q/k/v, gate/up) share one
// record. Statistics stream chunk by chunk: memory is the records, not the activations.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "loaders/model_file.h"
#include "models/model.h"
#include "quant/act_calibration.h"

namespace nibble {

struct CalibrationOptions {
  std::string text_path;  // calibration text (required)
  int64_t n_chunks = 128;  // sequences drawn from the text
  int64_t n_ctx = 0;       // tokens per sequence; 0: min(512, the model's trained context)
  uint64_t seed = 1;       // which sequences: the same seed draws the same ones
  bool gram = true;        // collect H (the other statistics are cheap and always collected)
  bool histograms = false; // collect |x| histograms (static activation scales)
  int n_threads = 0;       // 0: OpenMP's default
};

// What one linear-layer input looked like over the calibration tokens.
struct InputStats {
  int64_t layer = -1;  // −1: the output head
  LinearSite site = LinearSite::kAttnIn;
  int64_t dim = 0;
  int64_t n_tokens = 0;
  std::vector<double> sum_abs;  // Σ|x_j| per channel
  std::vector<float> max_abs;   // max |x_j| per channel
  std::vector<float> gram;      // dim × dim, Σ x xᵀ (empty without CalibrationOptions::gram)
  std::optional<ActivationHistogram> hist;  // |x| over all channels (CalibrationOptions::histograms)

  std::vector<float> mean_abs() const;
  // The statistics of the input divided by s per channel (what a layer reads once scales s
  // are folded into its producer): |x_j| / s_j and H_ij / (s_i s_j).
  void rescale(const std::vector<float>& s);
  // max over channels of max_abs
  float abs_max() const;
};

struct CalibrationData {
  ModelConfig config;
  std::vector<InputStats> inputs;
  std::vector<std::vector<int32_t>> sequences;  // the token sequences evaluated
  int64_t n_ctx = 0;
  double seconds = 0;
  uint64_t bytes = 0;  // memory the statistics take

  InputStats* find(int64_t layer, LinearSite site);
  const InputStats* find(int64_t layer, LinearSite site) const;
  // The record of the input a weight tensor reads ("blk.3.attn_q.weight" → layer 3, kAttnIn;
  // "output.weight" → the head), or null for tensors that are not linear-layer weights.
  const InputStats* for_tensor(const std::string& name) const;
};

// Where tensor `name` reads its input; false for names that are not linear-layer weights.
bool tensor_input_site(const std::string& name, int64_t* layer, LinearSite* site);

// Runs the model in `file` (any type nibble runs; full precision is what the methods assume)
// over options.n_chunks sequences of options.n_ctx tokens drawn from the text with the seed,
// the first token of each replaced by BOS when the vocabulary adds one. Throws FileError for an
// unreadable text or one shorter than a sequence, std::invalid_argument for bad options.
CalibrationData calibrate(const ModelFile& file, const CalibrationOptions& options);

// tr(E H Eᵀ) for the rows of E (rows × d, row-major) and H (d × d): the summed squared output
// error of weight error E over the tokens whose Gram matrix is H.
double output_error(const float* E, int64_t rows, int64_t d, const float* H);

// The output error of a quantized weight relative to the output, tr(E H Eᵀ) / tr(W H Wᵀ), over
// up to max_rows evenly spaced rows of w (rows × cols floats). `quantized` holds the rows in
// `type`'s plain layout; null measures round-to-nearest (quantize_row) of w instead.
double relative_output_error(const float* w, int64_t rows, int64_t cols, TensorType type,
                             const uint8_t* quantized, const float* H, int64_t max_rows = 512);

// Draws n sequences of n_ctx tokens from tokens (start offsets uniform over every whole window,
// from mt19937_64(seed)), the first token of each set to bos when bos ≥ 0.
std::vector<std::vector<int32_t>> draw_sequences(const std::vector<int32_t>& tokens, int64_t n,
                                                 int64_t n_ctx, uint64_t seed, int32_t bos);

}  // namespace nibble
