// Prefill and decode attention on the TinyLlama-1.1B head shape (32 query heads of 64, 4 KV heads),
// one layer, in GFLOP/s: 4·head_dim per visible (query head, key) pair — the two products; the
// softmax's exponentials are not counted. Prefill splits the work into (KV head, block of tokens)
// items as models/blocks.cpp does, over NIBBLE_BENCH_THREADS (default 2) OpenMP threads; the
// cache is laid out as nibble's KvCache: [kv head][position][head_dim].
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

#include "bench/bench_common.h"
#include "kernels/dispatch.h"
#include "kernels/ops.h"

namespace {

constexpr int64_t kHeads = 32, kKvHeads = 4, kHeadDim = 64;
constexpr int64_t kGroup = kHeads / kKvHeads;
constexpr int64_t kQDim = kHeads * kHeadDim, kKvDim = kKvHeads * kHeadDim;

int bench_threads() { return nibble::bench::threads(); }

std::vector<float> random_floats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// Prefill of n tokens at position 0 (args: n).
void BM_AttentionPrefill(benchmark::State& state) {
  const int64_t n = state.range(0);
  const int threads = bench_threads();
  const auto q = random_floats(n * kQDim, 1), k = random_floats(n * kKvDim, 2),
             v = random_floats(n * kKvDim, 3);
  std::vector<float> out(static_cast<size_t>(n * kQDim));
  const int64_t scratch_floats = nibble::attention_batch_scratch_floats(kGroup, kHeadDim);
  std::vector<float> scratch(static_cast<size_t>(threads * scratch_floats));
  const int64_t block = nibble::attention_batch_block_tokens(kGroup);
  const int64_t n_blocks = (n + block - 1) / block, work = n_blocks * kKvHeads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  for (auto _ : state) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int64_t w = 0; w < work; ++w) {
      const int64_t b = n_blocks - 1 - w / kKvHeads, kvh = w % kKvHeads;
      const int64_t i0 = b * block, nt = std::min(block, n - i0);
      const int64_t off = i0 * kQDim + kvh * kGroup * kHeadDim;
      nibble::attention_batch(q.data() + off, kQDim, nt, i0, kGroup, k.data() + kvh * n * kHeadDim,
                              v.data() + kvh * n * kHeadDim, kHeadDim, kHeadDim, scale, 0,
                              out.data() + off, kQDim,
                              scratch.data() + omp_get_thread_num() * scratch_floats);
    }
    benchmark::DoNotOptimize(out.data());
  }
  const double pairs = static_cast<double>(n) * static_cast<double>(n + 1) / 2 * kHeads;
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * kHeadDim * pairs * 1e-9 * state.iterations(),
                                                 benchmark::Counter::kIsRate);
  state.SetLabel(nibble::active_isa());
}
BENCHMARK(BM_AttentionPrefill)
    ->Arg(128)
    ->Arg(512)
    ->Arg(2048)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// Decode: one token at position n_kv − 1 for every head (args: n_kv), one item per KV head as
// models/blocks.cpp does. Each iteration takes the next of kLayers caches, as a forward pass goes
// through its layers, so at long contexts the keys and values come from DRAM (22 × 4 MiB at
// 2048 positions), not from a cache that one layer's call left warm.
constexpr int64_t kLayers = 22;
void BM_AttentionDecode(benchmark::State& state) {
  const int64_t n_kv = state.range(0);
  const int threads = bench_threads();
  const auto q = random_floats(kQDim, 1), k = random_floats(kLayers * n_kv * kKvDim, 2),
             v = random_floats(kLayers * n_kv * kKvDim, 3);
  std::vector<float> out(kQDim);
  const int64_t scratch_floats = nibble::attention_batch_scratch_floats(kGroup, kHeadDim);
  std::vector<float> scratch(static_cast<size_t>(threads * scratch_floats));
  const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  int64_t layer = 0;
  for (auto _ : state) {
    const float* kl = k.data() + layer * n_kv * kKvDim;
    const float* vl = v.data() + layer * n_kv * kKvDim;
    layer = (layer + 1) % kLayers;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int64_t kvh = 0; kvh < kKvHeads; ++kvh) {
      nibble::attention_batch(q.data() + kvh * kGroup * kHeadDim, kQDim, 1, n_kv - 1, kGroup,
                              kl + kvh * n_kv * kHeadDim, vl + kvh * n_kv * kHeadDim, kHeadDim,
                              kHeadDim, scale, 0, out.data() + kvh * kGroup * kHeadDim, kQDim,
                              scratch.data() + omp_get_thread_num() * scratch_floats);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(
      4.0 * kHeadDim * static_cast<double>(n_kv) * kHeads * 1e-9 * state.iterations(),
      benchmark::Counter::kIsRate);
  state.counters["KV_GB/s"] = benchmark::Counter(
      2.0 * sizeof(float) * static_cast<double>(n_kv * kKvDim) * 1e-9 * state.iterations(),
      benchmark::Counter::kIsRate);
  state.SetLabel(nibble::active_isa());
}
BENCHMARK(BM_AttentionDecode)->Arg(512)->Arg(2048)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) { return nibble::bench::run_benchmarks(argc, argv); }
