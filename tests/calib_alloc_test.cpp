// quant/bit_allocation.h against brute-force enumeration, and on a model-sized instance.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "quant/bit_allocation.h"

namespace nibble {
namespace {

using Instance = std::vector<std::vector<AllocCandidate>>;

constexpr TensorType kTypes[] = {TensorType::F16,  TensorType::Q8_0, TensorType::Q6_K,
                                 TensorType::Q5_K, TensorType::Q4_K, TensorType::Q2_K};
constexpr double kBitsPerWeight[] = {16.0, 8.5, 6.5625, 5.5, 4.5, 2.625};

// Model-like: bytes from bits per weight times a tensor size, cost falling with bits roughly
// as 4^-bits with noise (so hulls are not always convex), some candidates dominated.
Instance realistic(std::mt19937& rng, int tensors, int cands) {
  const uint64_t shapes[] = {2048 * 2048, 2048 * 256, 2048 * 5632, 32000 * 2048};
  std::uniform_int_distribution<int> pick(0, 3);
  std::uniform_real_distribution<double> u(0.5, 1.5);
  Instance inst(tensors);
  for (auto& t : inst) {
    const uint64_t elems = shapes[pick(rng)];
    const double sens = u(rng) * u(rng);
    for (int c = 0; c < cands; ++c) {
      const int k = (6 - cands) + c;  // the smallest types last
      t.push_back({kTypes[k], static_cast<uint64_t>(elems * kBitsPerWeight[k] / 8),
                   sens * std::pow(4.0, -kBitsPerWeight[k]) * elems * u(rng)});
    }
  }
  return inst;
}

// Anything goes: small random sizes (ties, equal sizes, dominated and zero-cost candidates).
Instance arbitrary(std::mt19937& rng, int tensors, int cands) {
  std::uniform_int_distribution<int> bytes(0, 40), cost(0, 30);
  Instance inst(tensors);
  for (auto& t : inst) {
    for (int c = 0; c < cands; ++c) {
      t.push_back({kTypes[c], static_cast<uint64_t>(bytes(rng)), cost(rng) * 0.25});
    }
  }
  return inst;
}

struct Totals {
  uint64_t bytes = 0;
  double cost = 0.0;
};

Totals totals(const Instance& inst, const std::vector<int>& choice) {
  Totals s;
  for (size_t t = 0; t < inst.size(); ++t) {
    s.bytes += inst[t][choice[t]].bytes;
    s.cost += inst[t][choice[t]].cost;
  }
  return s;
}

// Minimum cost within the budget over every configuration; infinity when none fits.
double brute_force(const Instance& inst, uint64_t budget) {
  std::vector<int> c(inst.size(), 0);
  double best = std::numeric_limits<double>::infinity();
  for (;;) {
    const Totals s = totals(inst, c);
    if (s.bytes <= budget) best = std::min(best, s.cost);
    size_t t = 0;
    while (t < inst.size() && ++c[t] == static_cast<int>(inst[t].size())) c[t++] = 0;
    if (t == inst.size()) return best;
  }
}

double cost_scale(const Instance& inst) {
  double s = 0.0;
  for (const auto& t : inst) {
    double m = 0.0;
    for (const auto& c : t) m = std::max(m, std::fabs(c.cost));
    s += m;
  }
  return std::max(s, 1e-300);
}

// The result is consistent, within the budget, and no single change that fits is cheaper.
void check_result(const Instance& inst, uint64_t budget, const AllocResult& r) {
  ASSERT_EQ(r.choice.size(), inst.size());
  for (size_t t = 0; t < inst.size(); ++t) {
    ASSERT_GE(r.choice[t], 0);
    ASSERT_LT(r.choice[t], static_cast<int>(inst[t].size()));
  }
  const Totals s = totals(inst, r.choice);
  EXPECT_EQ(s.bytes, r.bytes);
  EXPECT_NEAR(s.cost, r.cost, 1e-12 * cost_scale(inst));
  EXPECT_LE(r.bytes, budget);
  for (size_t t = 0; t < inst.size(); ++t) {
    const AllocCandidate& cur = inst[t][r.choice[t]];
    for (const AllocCandidate& c : inst[t]) {
      if (r.bytes - cur.bytes + c.bytes <= budget) {
        EXPECT_GE(c.cost, cur.cost - 1e-12 * cost_scale(inst)) << "tensor " << t;
      }
    }
  }
}

TEST(BitAlloc, MatchesBruteForceOnRandomSmallInstances) {
  std::mt19937 rng(7);
  int checked = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    const int tensors = 1 + static_cast<int>(rng() % 8), cands = 3 + static_cast<int>(rng() % 2);
    const Instance inst =
        iter % 2 ? realistic(rng, tensors, cands) : arbitrary(rng, tensors, cands);
    uint64_t lo = 0, hi = 0;
    for (const auto& t : inst) {
      uint64_t mn = t[0].bytes, mx = t[0].bytes;
      for (const auto& c : t) {
        mn = std::min(mn, c.bytes);
        mx = std::max(mx, c.bytes);
      }
      lo += mn;
      hi += mx;
    }
    const uint64_t budget = lo + (hi > lo ? rng() % (hi - lo + 1) : 0);
    const AllocResult r = allocate_bits(inst, budget);
    SCOPED_TRACE("iteration " + std::to_string(iter));
    check_result(inst, budget, r);
    EXPECT_TRUE(r.optimal);
    EXPECT_NEAR(r.cost, brute_force(inst, budget), 1e-9 * cost_scale(inst));
    ++checked;
  }
  EXPECT_EQ(checked, 3000);
}

TEST(BitAlloc, BudgetEqualToAConfigurationSize) {
  std::mt19937 rng(8);
  for (int iter = 0; iter < 1000; ++iter) {
    const Instance inst = iter % 2 ? realistic(rng, 6, 4) : arbitrary(rng, 7, 3);
    std::vector<int> config(inst.size());
    for (size_t t = 0; t < inst.size(); ++t) config[t] = static_cast<int>(rng() % inst[t].size());
    const Totals target = totals(inst, config);
    const AllocResult r = allocate_bits(inst, target.bytes);
    SCOPED_TRACE("iteration " + std::to_string(iter));
    check_result(inst, target.bytes, r);
    EXPECT_LE(r.bytes, target.bytes);
    EXPECT_LE(r.cost, target.cost + 1e-12 * cost_scale(inst));
    EXPECT_NEAR(r.cost, brute_force(inst, target.bytes), 1e-9 * cost_scale(inst));
  }
}

TEST(BitAlloc, RejectsImpossibleBudgetsAndBadInput) {
  const Instance inst = {{{TensorType::Q8_0, 100, 1.0}, {TensorType::Q4_0, 60, 5.0}},
                         {{TensorType::Q8_0, 50, 2.0}, {TensorType::Q4_0, 30, 3.0}}};
  try {
    allocate_bits(inst, 89);
    ADD_FAILURE() << "a budget below 90 bytes was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("90"), std::string::npos) << e.what();
  }
  const AllocResult tight = allocate_bits(inst, 90);
  EXPECT_EQ(tight.choice, (std::vector<int>{1, 1}));
  EXPECT_EQ(tight.bytes, 90u);
  const AllocResult roomy = allocate_bits(inst, 1000);
  EXPECT_EQ(roomy.choice, (std::vector<int>{0, 0}));
  EXPECT_EQ(roomy.cost, 3.0);
  // 110 bytes: upgrading tensor 1 (+20 bytes, -1) beats nothing; tensor 0 needs +40.
  EXPECT_EQ(allocate_bits(inst, 110).choice, (std::vector<int>{1, 0}));
  EXPECT_EQ(allocate_bits(inst, 130).choice, (std::vector<int>{0, 1}));

  EXPECT_TRUE(allocate_bits({}, 0).choice.empty());
  EXPECT_THROW(allocate_bits({{}}, 100), std::invalid_argument);
  EXPECT_THROW(allocate_bits({{{TensorType::Q8_0, 1, std::nan("")}}}, 100), std::invalid_argument);
  const uint64_t huge = std::numeric_limits<uint64_t>::max() / 2 + 1;
  EXPECT_THROW(allocate_bits({{{TensorType::F32, huge, 0.0}}, {{TensorType::F32, huge, 0.0}}},
                             std::numeric_limits<uint64_t>::max()),
               std::invalid_argument);
}

// 200 x 6, model-shaped; the optimum does not depend on the order of the tensors, which an
// approximate method would rarely reproduce to 1e-12.
TEST(BitAlloc, ModelSizedInstanceIsFastExactAndWithinBudget) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    std::mt19937 rng(seed);
    Instance inst = realistic(rng, 200, 6);
    uint64_t q4 = 0;
    for (const auto& t : inst) q4 += t[4].bytes;  // everything Q4_K, then ~0.9 bpw more
    const uint64_t budget = q4 + q4 / 5;
    const auto t0 = std::chrono::steady_clock::now();
    const AllocResult r = allocate_bits(inst, budget);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    SCOPED_TRACE("seed " + std::to_string(seed));
    check_result(inst, budget, r);
    EXPECT_TRUE(r.optimal);
    EXPECT_LT(secs, 2.0);
    std::printf("seed %u: 200x6 in %.1f ms, %.4f of budget used\n", seed, secs * 1e3,
                static_cast<double>(r.bytes) / static_cast<double>(budget));
    EXPECT_GT(static_cast<double>(r.bytes), 0.99 * static_cast<double>(budget));

    std::vector<size_t> perm(inst.size());
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
    Instance shuffled;
    for (size_t i : perm) shuffled.push_back(inst[i]);
    const AllocResult rs = allocate_bits(shuffled, budget);
    EXPECT_NEAR(rs.cost, r.cost, 1e-12 * cost_scale(inst));
    EXPECT_EQ(allocate_bits(inst, budget).choice, r.choice);  // deterministic
  }
}

// Arbitrary sizes (no repeats, so the frontier cannot merge states) with cost falling as size
// grows, so every tensor has a real trade-off, at 200 x 6.
TEST(BitAlloc, LargeArbitraryInstanceIsFast) {
  std::mt19937 rng(5);
  Instance inst(200);
  std::uniform_int_distribution<uint64_t> size(1000000, 50000000);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  uint64_t lo = 0, hi = 0;
  for (auto& t : inst) {
    std::vector<uint64_t> sizes(6);
    std::vector<double> costs(6);
    for (int c = 0; c < 6; ++c) {
      sizes[c] = size(rng);
      costs[c] = u(rng);
    }
    std::sort(sizes.begin(), sizes.end());
    std::sort(costs.begin(), costs.end(), [](double a, double b) { return a > b; });
    for (int c = 0; c < 6; ++c) t.push_back({kTypes[c], sizes[c], costs[c]});
    lo += sizes.front();
    hi += sizes.back();
  }
  const uint64_t budget = lo + (hi - lo) / 3;
  const auto t0 = std::chrono::steady_clock::now();
  const AllocResult r = allocate_bits(inst, budget);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  check_result(inst, budget, r);
  std::printf("arbitrary 200x6 in %.1f ms, optimal %d\n", secs * 1e3, r.optimal);
  EXPECT_TRUE(r.optimal);
  EXPECT_LT(secs, 2.0);
}

}  // namespace
}  // namespace nibble
