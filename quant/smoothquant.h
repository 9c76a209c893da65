// SmoothQuant (Xiao et al. 2023): W8A8 with a static activation scale loses the small channels
// of inputs that have a few huge ones. Dividing input channel j by
//   s_j = max|X_j|^α / max|W_j|^(1−α)   (max|W_j| over the layers that read the input)
// and multiplying the weights' column j by s_j moves the outliers' range into the weights,
// which quantize per output channel and take it well; the division folds into the producing
// norm or linear layer, so the full-precision function is unchanged. Groups as AWQ's
// (quant/awq.h scale_groups).
#pragma once

#include <string>
#include <vector>

#include "quant/calibration.h"
#include "quant/float_weights.h"

namespace nibble {

struct SmoothReport {
  std::vector<std::string> groups;  // the groups smoothed
  float max_abs_before = 0, max_abs_after = 0;  // largest input |x| over all smoothed inputs
};

// The smoothing factors for one input: s_j as above, 1 where either max is zero, clamped to
// [1e-5, 1e5].
std::vector<float> smooth_scales(const std::vector<float>& act_max, const std::vector<float>& weight_max,
                                 float alpha);

// Smooths every scale group of src's blocks (cal needs max |x|, not H); the changed tensors are
// left in w and cal's statistics rewritten for the smoothed inputs. Throws std::invalid_argument
// for α outside [0, 1].
SmoothReport apply_smoothquant(const ModelFile& src, CalibrationData& cal, FloatTensors& w, float alpha);

}  // namespace nibble
