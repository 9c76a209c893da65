#include "quant/act_calibration.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <stdexcept>

namespace nibble {
namespace {

constexpr int kLogBins = 11;
static_assert((1 << kLogBins) == ActivationHistogram::kBins, "kBins must be 2^kLogBins");

// The exponent e of the smallest power of two strictly above a > 0: a < 2^e <= 2a.
int exp_above(double a) {
  int e = 0;
  std::frexp(a, &e);  // a = f * 2^e with f in [0.5, 1)
  return e;
}

// The samples as choose_threshold sees them: the bins with the tail values below their range
// folded in (as counts), and the tail values at or above it kept exact.
struct View {
  double width = 0.0;
  std::vector<double> bins;
  std::vector<double> beyond;  // ascending
  double total = 0.0;
};

// Outliers the threshold rules may treat as such: samples beyond the view's bins. More than
// this and the bins grow to take them in.
constexpr double kMaxBeyondFraction = 1e-4;

View make_view(const ActivationHistogram& h) {
  const std::vector<float> tail = h.tail();
  const size_t allowed = static_cast<size_t>(kMaxBeyondFraction * static_cast<double>(h.count()));
  // The smallest power-of-two range that leaves at most `allowed` tail values above it.
  double range = h.range();
  if (allowed < tail.size()) {
    const float a = tail[tail.size() - allowed - 1];
    if (a > 0.0f) range = std::max(range, std::ldexp(1.0, exp_above(a)));
  }
  if (range == 0.0) range = std::ldexp(1.0, exp_above(h.max_abs()));
  View v;
  v.width = range / ActivationHistogram::kBins;
  v.bins.assign(ActivationHistogram::kBins, 0.0);
  const int e = exp_above(range) - 1;  // range = 2^e
  if (h.range() > 0.0) {
    const int shift = e - (exp_above(h.range()) - 1);
    for (int j = 0; j < ActivationHistogram::kBins; ++j) {
      v.bins[shift >= kLogBins ? 0 : j >> shift] += static_cast<double>(h.bins()[j]);
    }
  } else {
    v.bins[0] = static_cast<double>(h.bins()[0]);  // only zeros
  }
  for (float a : tail) {
    if (a < range) {
      v.bins[static_cast<size_t>(std::ldexp(static_cast<double>(a), kLogBins - e))] += 1.0;
    } else {
      v.beyond.push_back(a);
    }
  }
  v.total = static_cast<double>(h.count());
  return v;
}

float percentile_threshold(const View& v, double percentile) {
  const double target = percentile / 100.0 * v.total;
  double cum = 0.0;
  for (size_t b = 0; b < v.bins.size(); ++b) {
    const double c = v.bins[b];
    if (c > 0.0 && cum + c >= target) {
      return static_cast<float>((static_cast<double>(b) + (target - cum) / c) * v.width);
    }
    cum += c;
  }
  for (double a : v.beyond) {
    cum += 1.0;
    if (cum >= target) return static_cast<float>(a);
  }
  return v.beyond.empty() ? static_cast<float>(v.bins.size() * v.width)
                          : static_cast<float>(v.beyond.back());
}

// MXNet's smoothing for KL: move eps of mass onto every empty bin, taken evenly from the
// others, so log(p/q) stays finite. False when it cannot (no non-empty bin, or a bin would go
// non-positive): that candidate is then rejected as TensorRT rejects it.
bool smooth(std::vector<double>& d, size_t n) {
  constexpr double kEps = 1e-4;
  size_t zeros = 0;
  double min_nonzero = std::numeric_limits<double>::infinity();
  for (size_t k = 0; k < n; ++k) {
    if (d[k] == 0.0) {
      ++zeros;
    } else {
      min_nonzero = std::min(min_nonzero, d[k]);
    }
  }
  if (zeros == n) return false;
  const double eps1 = kEps * static_cast<double>(zeros) / static_cast<double>(n - zeros);
  if (min_nonzero - eps1 <= 0.0) return false;
  for (size_t k = 0; k < n; ++k) d[k] += d[k] == 0.0 ? kEps : -eps1;
  return true;
}

float kl_threshold(const View& v) {
  constexpr int kLevels = 128;  // int8 magnitudes: the positive half of the grid
  const int nb = ActivationHistogram::kBins;
  // above[i]: samples at or above bin i, the tail beyond the bins included.
  std::vector<double> above(static_cast<size_t>(nb) + 1, 0.0);
  above[nb] = static_cast<double>(v.beyond.size());
  for (int b = nb - 1; b >= 0; --b) above[b] = above[b + 1] + v.bins[b];

  std::vector<double> p(nb), q(nb);
  int best_i = nb;
  double best_kl = std::numeric_limits<double>::infinity();
  for (int i = kLevels; i <= nb; ++i) {
    std::copy(v.bins.begin(), v.bins.begin() + i, p.begin());
    p[i - 1] += above[i];
    // Q quantises the unclipped bins (no outliers) into 128 groups of i/128 bins, the last
    // group taking the remainder; a group's mass is spread over the bins non-empty in P.
    const int merged = i / kLevels;
    for (int j = 0; j < kLevels; ++j) {
      const int start = j * merged, stop = j == kLevels - 1 ? i : start + merged;
      double sum = 0.0;
      int nonzero = 0;
      for (int k = start; k < stop; ++k) {
        sum += v.bins[k];
        nonzero += p[k] != 0.0;
      }
      for (int k = start; k < stop; ++k) q[k] = p[k] != 0.0 ? sum / nonzero : 0.0;
    }
    if (!smooth(p, i) || !smooth(q, i)) continue;
    double sp = 0.0, sq = 0.0;
    for (int k = 0; k < i; ++k) {
      sp += p[k];
      sq += q[k];
    }
    double kl = 0.0;
    for (int k = 0; k < i; ++k) {
      const double pk = p[k] / sp;
      kl += pk * std::log(pk / (q[k] / sq));
    }
    if (kl < best_kl) {
      best_kl = kl;
      best_i = i;
    }
  }
  return static_cast<float>((best_i + 0.5) * v.width);
}

// Mean of (x - s * round(x / s))^2 for x uniform on [a, b], a < b. The integral of the squared
// sawtooth has a closed form, so this is exact whether a bin is narrower than a step or spans
// several; the s^2/12 shortcut is not once a large threshold leaves the bulk only a few steps.
double rounding_noise(double a, double b, double s) {
  const auto integral = [s](double x) {  // of the squared sawtooth from -s/2 to x
    const double k = std::floor(x / s + 0.5), y = x - k * s;
    return k * s * s * s / 12.0 + (y * y * y + s * s * s / 8.0) / 3.0;
  };
  return (integral(b) - integral(a)) / (b - a);
}

// Squared error of symmetric int8 quantisation with threshold t (step s = t / 127) over the
// view, bins taken as uniform within their width: rounding noise below t, clipping above.
// Bins from first_clipped_bin up lie above t (thresholds are tried at bin edges).
double quantisation_error(const View& v, double t, int first_clipped_bin) {
  const int nb = ActivationHistogram::kBins;
  const double w = v.width, s = t / 127.0;
  double e = 0.0;
  for (int b = 0; b < nb; ++b) {
    const double c = v.bins[b];
    if (c == 0.0) continue;
    if (b < first_clipped_bin) {
      e += c * rounding_noise(b * w, (b + 1) * w, s);
    } else {
      const double d = (b + 0.5) * w - t;
      e += c * (d * d + w * w / 12.0);
    }
  }
  for (double a : v.beyond) {
    const double r = a <= t ? a - s * std::nearbyint(a / s) : a - t;
    e += r * r;
  }
  return e;
}

float mse_threshold(const View& v) {
  const int nb = ActivationHistogram::kBins;
  const double range = nb * v.width;
  double best_t = 0.0, best_e = std::numeric_limits<double>::infinity();
  const auto consider = [&](double t, int first_clipped_bin) {
    const double e = quantisation_error(v, t, first_clipped_bin);
    if (e < best_e) {
      best_e = e;
      best_t = t;
    }
  };
  // Inside the bins: every bin edge.
  for (int j = 1; j <= nb; ++j) consider(j * v.width, j);
  if (v.beyond.empty()) return static_cast<float>(best_t);
  // Above them only the exact tail values are left. A few outliers far above the bulk can win
  // here: squared error charges a clipped outlier far more than int8 rounding costs the bulk.
  // Try each tail value, a geometric grid up to the largest, and on each interval between
  // tail values the minimum of its s^2/12 approximation, a quadratic in t.
  constexpr int kGrid = 1024;
  const double top = v.beyond.back();
  for (int k = 1; k <= kGrid; ++k) consider(range * std::pow(top / range, k / double(kGrid)), nb);
  const double noise_per_t2 = 1.0 / (12.0 * 127.0 * 127.0);
  double clipped_sum = 0.0;
  for (double a : v.beyond) clipped_sum += a;
  for (size_t k = 0; k < v.beyond.size(); ++k) {
    const double lo = k == 0 ? range : v.beyond[k - 1], hi = v.beyond[k];
    const double n_clipped = static_cast<double>(v.beyond.size() - k);
    const double t_star = clipped_sum / ((v.total - n_clipped) * noise_per_t2 + n_clipped);
    consider(std::min(hi, std::max(lo, t_star)), nb);
    consider(hi, nb);
    clipped_sum -= v.beyond[k];
  }
  return static_cast<float>(best_t);
}

}  // namespace

ActivationHistogram::ActivationHistogram() : bins_(kBins, 0) { heap_.reserve(kTail); }

void ActivationHistogram::add(const float* x, int64_t n) {
  if (n < 0) throw std::invalid_argument("ActivationHistogram::add: negative count");
  if (n > 0 && x == nullptr) throw std::invalid_argument("ActivationHistogram::add: null data");
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    if (!std::isfinite(a)) {
      throw std::invalid_argument("ActivationHistogram::add: non-finite activation at index " +
                                  std::to_string(i));
    }
    max_abs_ = std::max(max_abs_, a);
    ++count_;
    insert(a);
  }
}

void ActivationHistogram::insert(float a) {
  if (heap_.size() < static_cast<size_t>(kTail)) {
    heap_.push_back(a);
    std::push_heap(heap_.begin(), heap_.end(), std::greater<float>());
    return;
  }
  if (a > heap_.front()) {
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<float>());
    const float evicted = heap_.back();
    heap_.back() = a;
    std::push_heap(heap_.begin(), heap_.end(), std::greater<float>());
    a = evicted;
  }
  bin(a);
}

void ActivationHistogram::bin(float a) {
  // Bin 0 holds zero whatever the range, so zeros never force one.
  if (a == 0.0f) {
    ++bins_[0];
    return;
  }
  if (a >= range_) grow_to(std::ldexp(1.0, exp_above(a)));
  // a * kBins / range is a power-of-two scaling, hence exact: the index of a value at a doubled
  // range is exactly half its index now, which is what makes growth order-independent.
  ++bins_[static_cast<size_t>(static_cast<double>(a) * to_bin_)];
}

void ActivationHistogram::grow_to(double r) {
  if (r <= range_) return;
  if (range_ > 0.0) {
    const int shift = exp_above(r) - exp_above(range_);
    std::vector<uint64_t> grown(kBins, 0);
    for (int j = 0; j < kBins; ++j) grown[shift >= kLogBins ? 0 : j >> shift] += bins_[j];
    bins_.swap(grown);
  }
  range_ = r;
  to_bin_ = kBins / r;
}

void ActivationHistogram::merge(const ActivationHistogram& other) {
  if (&other == this) {
    const ActivationHistogram copy(other);
    merge(copy);
    return;
  }
  grow_to(other.range_);
  if (other.range_ == 0.0) {
    bins_[0] += other.bins_[0];  // only zeros
  } else {
    const int shift = exp_above(range_) - exp_above(other.range_);
    for (int j = 0; j < kBins; ++j) bins_[shift >= kLogBins ? 0 : j >> shift] += other.bins_[j];
  }
  // The union's largest kTail values are among the two tails (each side's binned values lie
  // below its full tail), so re-inserting other's tail restores the invariant.
  for (float a : other.heap_) insert(a);
  count_ += other.count_;
  max_abs_ = std::max(max_abs_, other.max_abs_);
}

std::vector<float> ActivationHistogram::tail() const {
  std::vector<float> t(heap_);
  std::sort(t.begin(), t.end());
  return t;
}

bool ActivationHistogram::operator==(const ActivationHistogram& o) const {
  return count_ == o.count_ && max_abs_ == o.max_abs_ && range_ == o.range_ && bins_ == o.bins_ &&
         tail() == o.tail();
}

const char* act_calib_name(ActCalib method) {
  switch (method) {
    case ActCalib::kMinMax:
      return "minmax";
    case ActCalib::kPercentile:
      return "percentile";
    case ActCalib::kKl:
      return "kl";
    case ActCalib::kMse:
      return "mse";
  }
  return "unknown";
}

ActCalibSpec parse_act_calib(std::string_view text) {
  const auto bad = [&](const char* why) {
    return std::invalid_argument("activation calibration '" + std::string(text) + "': " + why +
                                 " (expected minmax, percentile[=P], kl or mse)");
  };
  ActCalibSpec spec;
  const size_t eq = text.find('=');
  const std::string_view name = text.substr(0, eq);
  if (name == "minmax") {
    spec.method = ActCalib::kMinMax;
  } else if (name == "percentile") {
    spec.method = ActCalib::kPercentile;
  } else if (name == "kl") {
    spec.method = ActCalib::kKl;
  } else if (name == "mse") {
    spec.method = ActCalib::kMse;
  } else {
    throw bad("unknown method");
  }
  if (eq == std::string_view::npos) return spec;
  if (spec.method != ActCalib::kPercentile) throw bad("only percentile takes a value");
  const std::string value(text.substr(eq + 1));
  char* end = nullptr;
  errno = 0;
  const double p = value.empty() ? 0.0 : std::strtod(value.c_str(), &end);
  if (value.empty() || errno != 0 || end != value.c_str() + value.size() || !(p > 0.0) ||
      p > 100.0) {
    throw bad("percentile must be a number in (0, 100]");
  }
  spec.percentile = p;
  return spec;
}

std::string to_string(const ActCalibSpec& spec) {
  std::string s = act_calib_name(spec.method);
  if (spec.method == ActCalib::kPercentile) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "=%.10g", spec.percentile);
    s += buf;
  }
  return s;
}

float choose_threshold(const ActivationHistogram& h, ActCalib method, double percentile) {
  if (h.count() == 0) throw std::invalid_argument("choose_threshold: empty histogram");
  if (method == ActCalib::kPercentile && !(percentile > 0.0 && percentile <= 100.0)) {
    throw std::invalid_argument("choose_threshold: percentile " + std::to_string(percentile) +
                                " is outside (0, 100]");
  }
  if (h.max_abs() == 0.0f) return 0.0f;
  if (method == ActCalib::kMinMax) return h.max_abs();
  const View v = make_view(h);
  float t = 0.0f;
  switch (method) {
    case ActCalib::kPercentile:
      t = percentile_threshold(v, percentile);
      break;
    case ActCalib::kKl:
      t = kl_threshold(v);
      break;
    case ActCalib::kMse:
      t = mse_threshold(v);
      break;
    case ActCalib::kMinMax:
      break;
  }
  return std::min(t, h.max_abs());
}

}  // namespace nibble
