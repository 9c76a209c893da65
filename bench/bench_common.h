// What the Google Benchmark programs in bench/ share: the thread count and a main() that honours
// NIBBLE_ISA (so one binary measures any compiled target).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdlib>

#include "kernels/dispatch.h"

namespace nibble::bench {

// Threads for every benchmark: NIBBLE_BENCH_THREADS, default 2 (the CI machines' cores).
inline int threads() {
  static const int n = [] {
    const char* env = std::getenv("NIBBLE_BENCH_THREADS");
    const int v = env ? std::atoi(env) : 2;
    return v > 0 ? v : 2;
  }();
  return n;
}

inline int run_benchmarks(int argc, char** argv) {
  apply_isa_from_env();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace nibble::bench
