// quant/act_calibration.h: the streaming |x| histogram and the four threshold rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "quant/act_calibration.h"

namespace nibble {
namespace {

// Dense data |x| <= bulk plus `outliers` samples of magnitude 50 * bulk at random positions.
std::vector<float> with_outliers(std::vector<float> data, float bulk, int outliers, uint32_t seed) {
  std::mt19937 rng(seed);
  for (int i = 0; i < outliers; ++i) {
    std::uniform_int_distribution<size_t> pos(0, data.size() - 1);
    data.insert(data.begin() + static_cast<std::ptrdiff_t>(pos(rng)),
                (i % 2 ? -50.0f : 50.0f) * bulk);
  }
  return data;
}

std::vector<float> uniform_data(size_t n, float t, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-t, t);
  std::vector<float> d(n);
  for (float& v : d) v = u(rng);
  return d;
}

std::vector<float> gaussian_data(size_t n, float sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, sigma);
  std::vector<float> d(n);
  for (float& v : d) v = g(rng);
  return d;
}

// Sum of squared errors of x -> s * clamp(round(x / s), -127, 127) with s = t / 127.
double quant_error(const std::vector<float>& data, float t) {
  const double s = t / 127.0;
  double e = 0.0;
  for (float x : data) {
    const double q = std::min(127.0, std::max(-127.0, std::nearbyint(x / s)));
    e += (x - q * s) * (x - q * s);
  }
  return e;
}

ActivationHistogram histogram_of(const std::vector<float>& d) {
  ActivationHistogram h;
  h.add(d.data(), static_cast<int64_t>(d.size()));
  return h;
}

uint64_t binned(const ActivationHistogram& h) {
  return std::accumulate(h.bins().begin(), h.bins().end(), uint64_t{0});
}

TEST(ActCalib, ParsesCliSpellings) {
  EXPECT_EQ(parse_act_calib("minmax").method, ActCalib::kMinMax);
  EXPECT_EQ(parse_act_calib("kl").method, ActCalib::kKl);
  EXPECT_EQ(parse_act_calib("mse").method, ActCalib::kMse);
  const ActCalibSpec p = parse_act_calib("percentile");
  EXPECT_EQ(p.method, ActCalib::kPercentile);
  EXPECT_EQ(p.percentile, 99.99);
  EXPECT_EQ(parse_act_calib("percentile=99.9").percentile, 99.9);
  EXPECT_EQ(parse_act_calib("percentile=100").percentile, 100.0);
  EXPECT_EQ(to_string(parse_act_calib("percentile=99.999")), "percentile=99.999");
  EXPECT_EQ(to_string(parse_act_calib("kl")), "kl");
  for (const char* bad : {"", "KL", "max", "percentile=", "percentile=0", "percentile=101",
                          "percentile=99x", "percentile=nan", "mse=3", "kl=1"}) {
    try {
      parse_act_calib(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + bad + "'"), std::string::npos)
          << e.what();
    }
  }
}

TEST(ActCalib, GrowingTheRangeLosesNoCounts) {
  // Magnitudes rising over ten decades force many doublings (and some jumps of more than 11
  // doublings, which fold every old bin into bin 0).
  std::vector<float> d;
  for (int i = 0; i < 200000; ++i)
    d.push_back((i % 3 ? 1.0f : -1.0f) * std::pow(10.0f, i / 20000.0f - 5.0f));
  d.push_back(0.0f);
  d.push_back(-0.0f);
  const ActivationHistogram h = histogram_of(d);
  EXPECT_EQ(h.count(), d.size());
  EXPECT_EQ(binned(h) + h.tail().size(), d.size());
  EXPECT_EQ(h.tail().size(), static_cast<size_t>(ActivationHistogram::kTail));
  float mx = 0.0f;
  for (float v : d) mx = std::max(mx, std::fabs(v));
  EXPECT_EQ(h.max_abs(), mx);
  // The range is the smallest power of two above the largest binned value.
  EXPECT_EQ(std::log2(h.range()), std::floor(std::log2(h.range())));
  // Every tail value lies at or above every binned one.
  int top = ActivationHistogram::kBins - 1;
  while (top > 0 && h.bins()[top] == 0) --top;
  EXPECT_GE(h.tail().front(), top * h.bin_width());
}

TEST(ActCalib, MergeEqualsOneHistogramOfAllData) {
  const std::vector<float> all = with_outliers(gaussian_data(300000, 2.0f, 11), 8.0f, 10, 12);
  const ActivationHistogram whole = histogram_of(all);
  // Three parts of unequal size, filled privately and merged in two different orders.
  const size_t a = 1000, b = 200000;
  ActivationHistogram p0, p1, p2;
  p0.add(all.data(), a);
  p1.add(all.data() + a, b - a);
  p2.add(all.data() + b, static_cast<int64_t>(all.size() - b));
  ActivationHistogram m1 = p0;
  m1.merge(p1);
  m1.merge(p2);
  ActivationHistogram m2 = p2;
  m2.merge(p0);
  m2.merge(p1);
  EXPECT_TRUE(m1 == whole);
  EXPECT_TRUE(m2 == whole);
  EXPECT_EQ(m1.count(), all.size());
  EXPECT_EQ(binned(m1) + m1.tail().size(), all.size());
  // Adding the data in reverse order gives the same state too.
  std::vector<float> rev(all.rbegin(), all.rend());
  EXPECT_TRUE(histogram_of(rev) == whole);
  // Self-merge doubles every count.
  ActivationHistogram twice = whole;
  twice.merge(twice);
  std::vector<float> dup(all);
  dup.insert(dup.end(), all.begin(), all.end());
  EXPECT_TRUE(twice == histogram_of(dup));
  // Merging a small histogram (everything still in its tail, range 0) into a large one.
  ActivationHistogram small;
  const float few[] = {0.0f, 1e-3f, -7.0f};
  small.add(few, 3);
  EXPECT_EQ(small.range(), 0.0);
  ActivationHistogram big = whole;
  big.merge(small);
  std::vector<float> more(all);
  more.insert(more.end(), few, few + 3);
  EXPECT_TRUE(big == histogram_of(more));
}

// Squared quantisation error over the samples with |x| <= bulk only.
double bulk_error(const std::vector<float>& data, float bulk, float t) {
  std::vector<float> kept;
  for (float x : data) {
    if (std::fabs(x) <= bulk) kept.push_back(x);
  }
  return quant_error(kept, t);
}

// The smallest quant_error over a fine geometric grid of thresholds in [lo, hi].
double best_grid_error(const std::vector<float>& data, float lo, float hi) {
  double best = std::numeric_limits<double>::infinity();
  for (int k = 0; k <= 400; ++k) {
    best = std::min(best, quant_error(data, lo * std::pow(hi / lo, k / 400.0f)));
  }
  return best;
}

TEST(ActCalib, UniformBulkWithHugeOutliers) {
  const float T = 3.0f;
  const std::vector<float> bulk = uniform_data(1000000, T, 21);
  const std::vector<float> d = with_outliers(bulk, T, 10, 22);
  const ActivationHistogram h = histogram_of(d);
  const float minmax = choose_threshold(h, ActCalib::kMinMax);
  const float pct = choose_threshold(h, ActCalib::kPercentile, 99.99);
  const float kl = choose_threshold(h, ActCalib::kKl);
  const float mse = choose_threshold(h, ActCalib::kMse);
  EXPECT_EQ(minmax, 50.0f * T);
  // 99.99 % of |x| ~ U(0, T) lie below 0.9999 T; the 10 outliers are 1e-5 of the data.
  EXPECT_NEAR(pct, 0.9999f * T, 0.002f * T);
  EXPECT_LT(pct, T);
  // Tolerance: 2 % of T (the bin width here is 4 / 2048 = 0.07 % of T).
  EXPECT_NEAR(kl, T, 0.02f * T);
  // The squared error's true minimiser here is near 30 T: clipping the outliers to T costs
  // 10 * (49 T)^2, more than rounding 1e6 samples with a step of 50 T / 127. mse must find it
  // (within 1 % of the best of 400 thresholds tried on the raw data) and beat minmax.
  EXPECT_GT(mse, 15.0f * T);
  EXPECT_LT(mse, 35.0f * T);
  EXPECT_LE(quant_error(d, mse), 1.01 * best_grid_error(d, T / 2, 50.0f * T));
  EXPECT_LT(quant_error(d, mse), 0.9 * quant_error(d, minmax));
  // On the bulk (all but 1e-5 of the samples) the clipping rules beat minmax many times over,
  // and mse still beats it.
  const double e_minmax = bulk_error(d, T, minmax);
  for (float t : {pct, kl}) EXPECT_LT(bulk_error(d, T, t), 0.01 * e_minmax) << t;
  EXPECT_LT(bulk_error(d, T, mse), 0.5 * e_minmax);

  // Without the outliers mse clips (almost) nothing: the optimum for U(0, T) is T / (1 + 1/254).
  const ActivationHistogram hb = histogram_of(bulk);
  EXPECT_NEAR(choose_threshold(hb, ActCalib::kMse), T, 0.02f * T);
  EXPECT_NEAR(choose_threshold(hb, ActCalib::kKl), T, 0.02f * T);
}

TEST(ActCalib, GaussianBulkWithHugeOutliers) {
  const float sigma = 1.0f, bulk = 4.0f * sigma;
  const std::vector<float> g = gaussian_data(1000000, sigma, 31);
  const std::vector<float> d = with_outliers(g, bulk, 10, 32);
  const ActivationHistogram h = histogram_of(d);
  const float minmax = choose_threshold(h, ActCalib::kMinMax);
  const float pct = choose_threshold(h, ActCalib::kPercentile, 99.99);
  const float kl = choose_threshold(h, ActCalib::kKl);
  EXPECT_EQ(minmax, 200.0f);
  // P(|x| > 3.8906 sigma) = 1e-4.
  EXPECT_NEAR(pct, 3.8906f * sigma, 0.1f * sigma);
  // Entropy calibration clips a Gaussian for 8 bits between 2.5 and 5.5 sigma, ignoring the
  // outliers at 200.
  EXPECT_GT(kl, 2.5f * sigma);
  EXPECT_LT(kl, 5.5f * sigma);
  const float mse = choose_threshold(h, ActCalib::kMse);
  EXPECT_LE(quant_error(d, mse), 1.01 * best_grid_error(d, 1.0f, 200.0f));

  // The Gaussian alone: every rule's total squared error is below minmax's, and mse's is within
  // 1 % of the best threshold on the raw data.
  const ActivationHistogram hg = histogram_of(g);
  const float g_max = choose_threshold(hg, ActCalib::kMinMax);
  const float g_mse = choose_threshold(hg, ActCalib::kMse);
  EXPECT_GT(g_mse, 2.5f * sigma);
  EXPECT_LT(g_mse, g_max);
  const double e_minmax = quant_error(g, g_max);
  for (ActCalib m : {ActCalib::kPercentile, ActCalib::kKl, ActCalib::kMse}) {
    EXPECT_LT(quant_error(g, choose_threshold(hg, m)), e_minmax) << act_calib_name(m);
  }
  EXPECT_LE(quant_error(g, g_mse), 1.01 * best_grid_error(g, 1.0f, g_max));
  std::printf("gaussian+outliers: pct %.4f kl %.4f mse %.4f; gaussian: kl %.4f mse %.4f max %.4f\n",
              pct, kl, mse, choose_threshold(hg, ActCalib::kKl), g_mse, g_max);
}

TEST(ActCalib, SmallAndDegenerateInputs) {
  ActivationHistogram empty;
  EXPECT_THROW(choose_threshold(empty, ActCalib::kKl), std::invalid_argument);
  const std::vector<float> zeros(1000, 0.0f);
  const ActivationHistogram hz = histogram_of(zeros);
  for (ActCalib m : {ActCalib::kMinMax, ActCalib::kPercentile, ActCalib::kKl, ActCalib::kMse}) {
    EXPECT_EQ(choose_threshold(hz, m), 0.0f);
  }
  // Fewer samples than the exact tail holds: every rule still answers within (0, max].
  const std::vector<float> few = {0.5f, -1.0f, 2.0f, -0.25f, 3.5f};
  const ActivationHistogram hf = histogram_of(few);
  EXPECT_EQ(choose_threshold(hf, ActCalib::kPercentile, 100.0), 3.5f);
  for (ActCalib m : {ActCalib::kMinMax, ActCalib::kPercentile, ActCalib::kKl, ActCalib::kMse}) {
    const float t = choose_threshold(hf, m);
    EXPECT_GT(t, 0.0f);
    EXPECT_LE(t, 3.5f);
  }
  // 5000 samples, most of them in the exact tail: still one distribution, nothing clipped as
  // an outlier.
  const ActivationHistogram hu = histogram_of(uniform_data(5000, 3.0f, 41));
  EXPECT_NEAR(choose_threshold(hu, ActCalib::kKl), 3.0f, 0.1f);
  EXPECT_NEAR(choose_threshold(hu, ActCalib::kMse), 3.0f, 0.1f);
  EXPECT_THROW(choose_threshold(hf, ActCalib::kPercentile, 0.0), std::invalid_argument);
  EXPECT_THROW(choose_threshold(hf, ActCalib::kPercentile, 100.5), std::invalid_argument);
  ActivationHistogram h;
  const float bad[] = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_THROW(h.add(bad, 2), std::invalid_argument);
  const float inf[] = {std::numeric_limits<float>::infinity()};
  EXPECT_THROW(h.add(inf, 1), std::invalid_argument);
}

}  // namespace
}  // namespace nibble
