// Static activation calibration for W8A8 (SmoothQuant): a linear layer's input is quantised
// with one per-tensor scale stored in the file, x_q = clamp(round(x / s), -127, 127) with
// s = threshold / 127. The threshold is chosen from a histogram of |x| over calibration data.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nibble {

// A one-pass, mergeable histogram of |x|: kBins equal bins over [0, range()) plus the kTail
// largest values kept exactly.
//
// The range is always the smallest power of two above the largest binned value. Growing it
// doubles the bin width (pairs of bins merge, no count is lost), and because the range and every
// bin index are functions of the values alone (scaling by a power of two is exact), the final
// state does not depend on the order of add()/merge() calls: one histogram of all data equals
// any merge of histograms of its parts, bit for bit.
//
// The exact tail exists because LLM activations often have a handful of huge outliers. If they
// set the range, the bulk of the data lands in a few dozen bins and the entropy method, which
// never considers fewer than 128 bins, cannot choose a threshold below max/16. Keeping the
// largest kTail values out of the bins lets the range follow the bulk instead (choose_threshold
// folds back into the bins all but the largest 0.01 % of samples, so a small data set, mostly
// tail, is not treated as outliers).
class ActivationHistogram {
 public:
  static constexpr int kBins = 2048;
  static constexpr int kTail = 4096;

  ActivationHistogram();

  // Adds |x[i]| for i < n. Throws std::invalid_argument on a NaN or infinity (an activation
  // that overflowed is a bug upstream, not something to calibrate for) or on n < 0.
  void add(const float* x, int64_t n);
  // Adds every sample of `other`; the result equals one histogram of both data sets.
  void merge(const ActivationHistogram& other);

  uint64_t count() const { return count_; }
  float max_abs() const { return max_abs_; }
  // Upper edge of the bins (a power of two), 0 while nothing has been binned.
  double range() const { return range_; }
  double bin_width() const { return range_ / kBins; }
  const std::vector<uint64_t>& bins() const { return bins_; }
  // The values kept out of the bins (at most kTail), ascending.
  std::vector<float> tail() const;

  bool operator==(const ActivationHistogram& o) const;
  bool operator!=(const ActivationHistogram& o) const { return !(*this == o); }

 private:
  void insert(float a);    // a = |x|, finite
  void bin(float a);       // into the bins, growing the range when a >= range_
  void grow_to(double r);  // r a power of two >= range_

  std::vector<uint64_t> bins_;
  std::vector<float> heap_;  // min-heap (std::greater) of the largest values seen
  double range_ = 0.0;
  double to_bin_ = 0.0;  // kBins / range_, a power of two
  uint64_t count_ = 0;
  float max_abs_ = 0.0f;
};

enum class ActCalib { kMinMax, kPercentile, kKl, kMse };

struct ActCalibSpec {
  ActCalib method = ActCalib::kPercentile;
  double percentile = 99.99;  // used by kPercentile only
};

// Parses the CLI spellings "minmax", "percentile", "percentile=P" (0 < P <= 100; plain
// "percentile" means 99.99), "kl", "mse". Throws std::invalid_argument naming the bad text.
ActCalibSpec parse_act_calib(std::string_view text);
// The spelling parse_act_calib reads back ("percentile=99.9" keeps its value).
std::string to_string(const ActCalibSpec& spec);
const char* act_calib_name(ActCalib method);

// The clipping threshold T (scale T / 127) for the data in `h`. The rules see the bins with
// the tail folded back in, except the largest <= 0.01 % of samples, which stay exact beyond them
// (the bins' range doubles until that holds).
//   kMinMax     max|x|, exactly;
//   kPercentile the |x| below which `percentile` % of the samples lie (linear within a bin,
//               exact among the values beyond the bins);
//   kKl         TensorRT's entropy calibration over the 2048 bins: the candidate i in
//               [128, 2048] minimising KL(P || Q), P the first i bins with every sample above
//               folded into bin i-1, Q the unfolded bins quantised to 128 levels (each group's
//               mass spread over its bins non-empty in P), both smoothed as MXNet does
//               (eps = 1e-4); T = (i + 0.5) * bin width;
//   kMse        the T minimising the squared error of symmetric int8 quantisation with
//               clipping: rounding noise for |x| <= T (exact for values uniform within each bin,
//               not the s^2/12 shortcut, which fails once T leaves the bulk few steps), and
//               (|x| - T)^2 above it; T is searched over the bin edges, then above the bins.
//               Squared error charges a clipped outlier far more than rounding costs the bulk,
//               so a few outliers far out pull this T well above the bulk (10 samples at 50x
//               the bulk among 1e6 put it near 30x); kKl and kPercentile clip them.
// The result never exceeds max|x| (a larger threshold only wastes levels). Throws
// std::invalid_argument for an empty histogram or a percentile outside (0, 100]. Returns 0 when
// every sample is 0; the caller must then store some positive scale (any scale is exact).
float choose_threshold(const ActivationHistogram& h, ActCalib method, double percentile = 99.99);
inline float choose_threshold(const ActivationHistogram& h, const ActCalibSpec& spec) {
  return choose_threshold(h, spec.method, spec.percentile);
}

}  // namespace nibble
