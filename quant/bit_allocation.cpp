#include "quant/bit_allocation.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>

// Method. The problem is a multiple-choice knapsack (NP-hard in general, but small here: ~200
// tensors x ~6 types). We solve it exactly:
//  1. Drop dominated candidates (another is no larger and no costlier), leaving per tensor a
//     list with bytes rising and cost falling.
//  2. Lagrangian relaxation: greedy upgrades along each tensor's lower convex hull in order of
//     cost saved per byte solve the LP relaxation; the first upgrade that does not fit gives
//     the optimal multiplier λ*. Continuing the greedy with the upgrades that still fit, then
//     a best-improvement pass over all single changes, gives a feasible incumbent (typically
//     within one tensor's cost step of optimal).
//  3. Dynamic programming over tensors on the Pareto frontier of (bytes used, cost) pairs,
//     which is exact at byte granularity: states with equal byte sums merge, and tensors of
//     one shape share sizes, so sums repeat a lot. A state is dropped when its cost plus a
//     Lagrangian lower bound for the remaining tensors and bytes, max over a few λ around λ*
//     of Σ min(cost + λ·bytes) - λ·bytes_left, cannot beat the incumbent; with λ* the bound is
//     tight enough that few states survive.
// Rejected: DP over bytes rounded to a granularity (approximate, and rounding can break the
// budget or miss the optimum); Lagrangian plus repair alone (its gap is up to one tensor's
// cost step, and ΔKL steps between 4 and 8 bits are exactly what we are choosing between).
// Every step iterates in a fixed order with total-order tie breaks, so results are
// deterministic.

namespace nibble {
namespace {

// A candidate that no other candidate of the tensor dominates.
struct Option {
  uint64_t bytes;
  double cost;
  int index;  // into the tensor's candidate list
};

// Past this many frontier states after one tensor we keep the best-bounded ones only and the
// result is no longer proven optimal. Caps memory near 1 MiB per tensor.
constexpr size_t kMaxStates = size_t{1} << 15;

std::vector<Option> efficient_options(const std::vector<AllocCandidate>& cands, size_t t) {
  if (cands.empty()) {
    throw std::invalid_argument("allocate_bits: tensor " + std::to_string(t) +
                                " has no candidates");
  }
  std::vector<Option> all;
  for (size_t i = 0; i < cands.size(); ++i) {
    if (!std::isfinite(cands[i].cost)) {
      throw std::invalid_argument("allocate_bits: tensor " + std::to_string(t) + " candidate " +
                                  std::to_string(i) + " has a non-finite cost");
    }
    all.push_back({cands[i].bytes, cands[i].cost, static_cast<int>(i)});
  }
  std::sort(all.begin(), all.end(), [](const Option& a, const Option& b) {
    if (a.bytes != b.bytes) return a.bytes < b.bytes;
    if (a.cost != b.cost) return a.cost < b.cost;
    return a.index < b.index;
  });
  std::vector<Option> kept;
  for (const Option& o : all) {
    if (kept.empty() || o.cost < kept.back().cost) kept.push_back(o);
  }
  return kept;
}

class Solver {
 public:
  Solver(std::vector<std::vector<Option>> opts, uint64_t budget)
      : opts_(std::move(opts)), budget_(budget), n_(opts_.size()) {}

  AllocResult solve();

 private:
  struct State {
    uint64_t bytes;
    double cost;
    uint32_t parent;  // index into the previous stage
    int32_t opt;      // option of this stage's tensor
  };

  uint64_t bytes_of(const std::vector<int>& pos) const {
    uint64_t b = 0;
    for (size_t t = 0; t < n_; ++t) b += opts_[t][pos[t]].bytes;
    return b;
  }
  double cost_of(const std::vector<int>& pos) const {
    double c = 0.0;
    for (size_t t = 0; t < n_; ++t) c += opts_[t][pos[t]].cost;
    return c;
  }
  // Greedy on the convex hulls; returns λ* (0 when every upgrade fits) and leaves the
  // incumbent in pos.
  double greedy(std::vector<int>& pos) const;
  // Applies the best cost-lowering single change that fits until none is left.
  void improve(std::vector<int>& pos) const;
  double lower_bound(size_t t, uint64_t bytes_left) const {
    double lb = -std::numeric_limits<double>::infinity();
    for (size_t l = 0; l < lambdas_.size(); ++l) {
      lb = std::max(lb, suffix_[l][t] - lambdas_[l] * static_cast<double>(bytes_left));
    }
    return lb;
  }

  std::vector<std::vector<Option>> opts_;
  uint64_t budget_;
  size_t n_;
  std::vector<double> lambdas_;
  std::vector<std::vector<double>> suffix_;  // [λ][t]: Σ_{t' >= t} min_o (cost + λ·bytes)
};

double Solver::greedy(std::vector<int>& pos) const {
  struct Segment {
    double gain_per_byte;
    size_t t;
    int from, to;
  };
  std::vector<Segment> segs;
  for (size_t t = 0; t < n_; ++t) {
    const std::vector<Option>& o = opts_[t];
    const auto slope = [&](int a, int b) {  // cost saved per byte from option a to option b
      return (o[a].cost - o[b].cost) / static_cast<double>(o[b].bytes - o[a].bytes);
    };
    std::vector<int> hull = {0};
    for (int k = 1; k < static_cast<int>(o.size()); ++k) {
      while (hull.size() >= 2 &&
             slope(hull[hull.size() - 2], hull.back()) <= slope(hull.back(), k)) {
        hull.pop_back();
      }
      hull.push_back(k);
    }
    for (size_t h = 1; h < hull.size(); ++h) {
      segs.push_back({slope(hull[h - 1], hull[h]), t, hull[h - 1], hull[h]});
    }
  }
  std::sort(segs.begin(), segs.end(), [](const Segment& a, const Segment& b) {
    if (a.gain_per_byte != b.gain_per_byte) return a.gain_per_byte > b.gain_per_byte;
    if (a.t != b.t) return a.t < b.t;
    return a.from < b.from;
  });
  pos.assign(n_, 0);
  uint64_t used = bytes_of(pos);
  std::vector<char> blocked(n_, 0);
  double lambda = 0.0;
  bool broke = false;
  for (const Segment& s : segs) {
    if (blocked[s.t] || pos[s.t] != s.from) continue;
    const uint64_t extra = opts_[s.t][s.to].bytes - opts_[s.t][s.from].bytes;
    if (extra <= budget_ - used) {
      used += extra;
      pos[s.t] = s.to;
    } else {
      blocked[s.t] = 1;  // later hull steps of this tensor build on this one
      if (!broke) lambda = s.gain_per_byte;
      broke = true;
    }
  }
  improve(pos);
  return lambda;
}

void Solver::improve(std::vector<int>& pos) const {
  uint64_t used = bytes_of(pos);
  for (;;) {
    double best_gain = 0.0;
    size_t best_t = 0;
    int best_o = -1;
    for (size_t t = 0; t < n_; ++t) {
      const Option& cur = opts_[t][pos[t]];
      const uint64_t room = budget_ - used + cur.bytes;
      for (int o = 0; o < static_cast<int>(opts_[t].size()); ++o) {
        const Option& c = opts_[t][o];
        const double gain = cur.cost - c.cost;
        if (c.bytes <= room && gain > best_gain) {
          best_gain = gain;
          best_t = t;
          best_o = o;
        }
      }
    }
    if (best_o < 0) return;
    used = used - opts_[best_t][pos[best_t]].bytes + opts_[best_t][best_o].bytes;
    pos[best_t] = best_o;
  }
}

AllocResult Solver::solve() {
  AllocResult r;
  r.optimal = true;
  std::vector<int> pos(n_, 0);
  // The cheapest candidate of every tensor fits: nothing to trade.
  for (size_t t = 0; t < n_; ++t) pos[t] = static_cast<int>(opts_[t].size()) - 1;
  bool all_best_fit = true;
  {
    uint64_t b = 0;
    for (size_t t = 0; t < n_ && all_best_fit; ++t) {
      const uint64_t ob = opts_[t][pos[t]].bytes;
      if (ob > budget_ - b)
        all_best_fit = false;
      else
        b += ob;
    }
  }
  if (!all_best_fit) {
    const double lambda_star = greedy(pos);
    double ub = cost_of(pos);

    // Lower-bound tables for a spread of multipliers around λ*: the best one for a partial
    // state depends on how many bytes it has left.
    lambdas_ = {0.0};
    if (lambda_star > 0.0) {
      for (double f : {0.125, 0.25, 0.5, 0.7, 0.85, 1.0, 1.15, 1.4, 2.0, 4.0, 8.0}) {
        lambdas_.push_back(lambda_star * f);
      }
    }
    suffix_.assign(lambdas_.size(), std::vector<double>(n_ + 1, 0.0));
    for (size_t l = 0; l < lambdas_.size(); ++l) {
      for (size_t t = n_; t-- > 0;) {
        double m = std::numeric_limits<double>::infinity();
        for (const Option& o : opts_[t]) {
          m = std::min(m, o.cost + lambdas_[l] * static_cast<double>(o.bytes));
        }
        suffix_[l][t] = suffix_[l][t + 1] + m;
      }
    }
    std::vector<uint64_t> min_bytes_after(n_ + 1, 0);
    for (size_t t = n_; t-- > 0;) min_bytes_after[t] = min_bytes_after[t + 1] + opts_[t][0].bytes;
    double scale = 0.0;
    for (const auto& o : opts_)
      scale += std::max(std::fabs(o.front().cost), std::fabs(o.back().cost));
    const double tol = 1e-12 * std::max(scale, std::numeric_limits<double>::min());

    std::vector<std::vector<State>> stages(n_ + 1);
    stages[0].push_back({0, 0.0, 0, -1});
    std::vector<State> next;
    std::vector<double> keys;
    for (size_t t = 0; t < n_ && !stages[t].empty(); ++t) {
      next.clear();
      const uint64_t limit = budget_ - min_bytes_after[t + 1];
      for (size_t si = 0; si < stages[t].size(); ++si) {
        const State& s = stages[t][si];
        for (int o = 0; o < static_cast<int>(opts_[t].size()); ++o) {
          const Option& op = opts_[t][o];
          if (op.bytes > limit - s.bytes) break;  // options grow in bytes
          const uint64_t nb = s.bytes + op.bytes;
          const double nc = s.cost + op.cost;
          if (nc + lower_bound(t + 1, budget_ - nb) >= ub - tol) continue;
          next.push_back({nb, nc, static_cast<uint32_t>(si), o});
        }
      }
      std::sort(next.begin(), next.end(), [](const State& a, const State& b) {
        if (a.bytes != b.bytes) return a.bytes < b.bytes;
        if (a.cost != b.cost) return a.cost < b.cost;
        if (a.parent != b.parent) return a.parent < b.parent;
        return a.opt < b.opt;
      });
      std::vector<State>& kept = stages[t + 1];
      for (const State& s : next) {
        if (kept.empty() || s.cost < kept.back().cost) kept.push_back(s);
      }
      if (kept.size() > kMaxStates) {
        // Keep the states with the best bound (ties by position, so deterministically).
        r.optimal = false;
        std::vector<size_t> idx(kept.size());
        keys.resize(kept.size());
        for (size_t i = 0; i < kept.size(); ++i) {
          idx[i] = i;
          keys[i] = kept[i].cost + lower_bound(t + 1, budget_ - kept[i].bytes);
        }
        std::nth_element(idx.begin(), idx.begin() + kMaxStates, idx.end(), [&](size_t a, size_t b) {
          return keys[a] != keys[b] ? keys[a] < keys[b] : a < b;
        });
        idx.resize(kMaxStates);
        std::sort(idx.begin(), idx.end());
        std::vector<State> beam;
        for (size_t i : idx) beam.push_back(kept[i]);
        kept.swap(beam);
      }
    }
    // The frontier is sorted by bytes with falling cost: its last state is the cheapest. Any
    // state that reached the end beats the incumbent (the bound at the end is exact).
    if (!stages[n_].empty()) {
      std::vector<int> found(n_);
      size_t i = stages[n_].size() - 1;
      for (size_t t = n_; t-- > 0;) {
        const State& s = stages[t + 1][i];
        found[t] = s.opt;
        i = s.parent;
      }
      if (!r.optimal) improve(found);
      if (cost_of(found) < ub) pos.swap(found);
    }
  }
  r.choice.resize(n_);
  for (size_t t = 0; t < n_; ++t) r.choice[t] = opts_[t][pos[t]].index;
  r.bytes = bytes_of(pos);
  r.cost = cost_of(pos);
  return r;
}

}  // namespace

AllocResult allocate_bits(const std::vector<std::vector<AllocCandidate>>& per_tensor,
                          uint64_t budget_bytes) {
  std::vector<std::vector<Option>> opts;
  opts.reserve(per_tensor.size());
  uint64_t min_total = 0;
  bool overflow = false;
  for (size_t t = 0; t < per_tensor.size(); ++t) {
    opts.push_back(efficient_options(per_tensor[t], t));
    const uint64_t b = opts.back().front().bytes;
    if (b > std::numeric_limits<uint64_t>::max() - min_total) overflow = true;
    min_total += b;
  }
  if (overflow || min_total > budget_bytes) {
    throw std::invalid_argument(
        "allocate_bits: budget of " + std::to_string(budget_bytes) +
        " bytes is below the smallest possible size, " +
        (overflow ? std::string("more than 2^64") : std::to_string(min_total)) + " bytes");
  }
  return Solver(std::move(opts), budget_bytes).solve();
}

}  // namespace nibble
