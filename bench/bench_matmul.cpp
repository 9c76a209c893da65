// GEMV/GEMM throughput of matmul() per weight type on the TinyLlama-1.1B layer shapes, next to a
// streaming-read baseline: decode (M = 1) should approach the baseline's GB/s, prefill (M ≥ 32)
// is compute-bound and is reported in GOP/s (2·M·N·K per call).
//
// Weights are replicated until they exceed the last-level cache and each iteration uses the next
// copy, so M = 1 numbers are DRAM numbers, as in a real forward pass, not L3 ones.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(NIBBLE_HAVE_DNNL)
#include <omp.h>

#include <dnnl.hpp>
#endif

#include "bench/bench_common.h"
#include "kernels/amx_matmul.h"
#include "kernels/dispatch.h"
#include "kernels/fp16.h"
#include "kernels/matmul.h"
#include "kernels/matmul_internal.h"
#include "kernels/quantize.h"
#include "kernels/repack.h"
#include "kernels/tensor_type.h"

namespace {

using nibble::TensorType;

constexpr size_t kColdBytes = 256u << 20;  // well above a 32 MiB L3

int bench_threads() { return nibble::bench::threads(); }

// Streams kColdBytes once per pass with bench_threads() threads; returns GB/s of the best of
// `passes`. This is the ceiling for M = 1, measured in the same run as the kernels it judges.
// Each pass reads twice: a plain loop (hardware prefetchers only) and one that also prefetches
// non-temporally 8 KiB ahead, as the GEMV drivers do; on Zen 5 the second read up to 1.3× faster
// in quiet minutes (92 vs 71 GB/s), so a plain loop alone would understate the ceiling.
double stream_read_gbps(int passes) {
  const size_t n = kColdBytes / sizeof(uint64_t);
  std::vector<uint64_t> buf(n);
  for (size_t i = 0; i < n; ++i) buf[i] = i;
  constexpr size_t kAhead = 8192 / sizeof(uint64_t);
  double best = 0;
  for (int p = 0; p < 2 * passes; ++p) {
    const bool prefetch = p % 2 == 1;
    const auto t0 = std::chrono::steady_clock::now();
    uint64_t total = 0;
    if (prefetch) {
#pragma omp parallel for schedule(static) num_threads(bench_threads()) reduction(+ : total)
      for (size_t i = 0; i < n; i += 8) {
        __builtin_prefetch(buf.data() + std::min(i + kAhead, n - 1), 0, 0);
        for (size_t k = 0; k < 8; ++k) total += buf[i + k];
      }
    } else {
#pragma omp parallel for schedule(static) num_threads(bench_threads()) reduction(+ : total)
      for (size_t i = 0; i < n; ++i) total += buf[i];
    }
    benchmark::DoNotOptimize(total);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(kColdBytes) / 1e9 / s);
  }
  return best;
}

double roofline_gbps() {
  static const double gbps = stream_read_gbps(20);
  return gbps;
}

struct WeightCopies {
  std::vector<uint8_t> bytes;
  uint64_t matrix_bytes = 0;
  size_t copies = 0;
};

WeightCopies make_weights(TensorType t, int64_t N, int64_t K, bool cold) {
  const uint64_t rb = nibble::row_bytes(static_cast<uint32_t>(t), static_cast<uint64_t>(K));
  WeightCopies w;
  w.matrix_bytes = rb * N;
  w.copies = cold ? std::max<size_t>(1, kColdBytes / w.matrix_bytes) : 1;
  w.bytes.resize(w.matrix_bytes);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  const nibble::TypeTraits* tr = nibble::type_traits(t);
  if (tr->block_elems == 1 || nibble::can_quantize(t)) {
    std::vector<float> row(K);
    for (int64_t n = 0; n < N; ++n) {
      for (float& x : row) x = value(rng);
      nibble::quantize_row(t, row.data(), K, w.bytes.data() + n * rb);
    }
  } else {  // no quantizer (K-quants with mins, IQ4): random codes, finite fp16 scales
    std::uniform_int_distribution<int> byte(0, 255);
    for (uint8_t& b : w.bytes) b = static_cast<uint8_t>(byte(rng));
    // Byte offsets of the block's fp16 scale fields (d, and dmin where the format has one).
    std::vector<int> f16_fields = {0};
    if (t == TensorType::Q4_K || t == TensorType::Q5_K) f16_fields = {0, 2};
    if (t == TensorType::Q2_K) f16_fields = {80, 82};
    if (t == TensorType::Q3_K) f16_fields = {108};
    const uint16_t d = nibble::fp32_to_fp16(0.01f);
    for (uint64_t off = 0; off < w.bytes.size(); off += tr->block_bytes) {
      for (int f : f16_fields) std::memcpy(w.bytes.data() + off + f, &d, 2);
    }
  }
  const std::vector<uint8_t> one = w.bytes;
  w.bytes.resize(w.matrix_bytes * w.copies);
  for (size_t c = 1; c < w.copies; ++c) std::memcpy(w.bytes.data() + c * w.matrix_bytes, one.data(), one.size());
  return w;
}

double int8_peak_gops();

// act_scale > 0: a calibrated W8A8 weight (WeightMatrix::act_scale, recipe q8a8): activations
// quantised with that one step, as oneDNN's int8 matmul below takes them. amx: prompts (M ≥
// AmxMatmul::min_rows()) on the AMX tile kernel, as `--gemm amx`.
void BM_Matmul(benchmark::State& state, TensorType t, bool packed, float act_scale = 0.0f,
               bool amx = false) {
  const int64_t K = state.range(0), N = state.range(1), M = state.range(2);
  if (amx && !nibble::AmxMatmul::available()) {
    state.SkipWithError("no AMX-BF16 tiles on this CPU");
    return;
  }
  const bool cold = M == 1 && std::getenv("NIBBLE_BENCH_HOT") == nullptr;
  WeightCopies w = make_weights(t, N, K, cold);
  std::vector<float> x(M * K), y(M * N);
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (float& v : x) v = value(rng);
  nibble::MatmulWorkspace ws;
  ws.n_threads = bench_threads();
  if (amx) ws.prompt = std::make_shared<nibble::AmxMatmul>();
  nibble::WeightMatrix W;
  W.type = t;
  W.rows = N;
  W.cols = K;
  W.row_bytes = nibble::row_bytes(static_cast<uint32_t>(t), static_cast<uint64_t>(K));
  W.act_scale = act_scale;
  // The packed layout the running target prefers (what the runtime uses for these types:
  // kLayoutPacked4 or kLayoutRows16): each copy repacked once here.
  std::vector<nibble::PackedWeight> packs;
  if (packed) {
    for (size_t c = 0; c < w.copies; ++c) {
      W.data = w.bytes.data() + c * w.matrix_bytes;
      packs.push_back(nibble::repack_for_matmul(W));
    }
    // Types the running target does not pack (Q4_1, IQ4_NL without their packed tile) keep
    // pointing at the plain bytes.
    packed = packs.front().view.layout != nibble::kLayoutGguf;
    if (packed) w.bytes = {};
  }
  size_t copy = 0;
  for (auto _ : state) {
    if (packed) {
      W = packs[copy].view;
    } else {
      W.data = w.bytes.data() + copy * w.matrix_bytes;
    }
    copy = (copy + 1) % w.copies;
    nibble::matmul(W, x.data(), M, y.data(), N, ws);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["W_GB/s"] = benchmark::Counter(static_cast<double>(w.matrix_bytes) / 1e9,
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GOP/s"] = benchmark::Counter(2.0 * static_cast<double>(M * N * K) / 1e9,
                                               benchmark::Counter::kIsIterationInvariantRate);
  if (M >= 8 && int8_peak_gops() > 0) {
    state.counters["int8_peak"] = benchmark::Counter(2.0 * static_cast<double>(M * N * K) / 1e9 / int8_peak_gops(),
                                                     benchmark::Counter::kIsIterationInvariantRate);
  }
  if (M == 1) {
    state.counters["roofline"] = benchmark::Counter(static_cast<double>(w.matrix_bytes) / 1e9 / roofline_gbps(),
                                                    benchmark::Counter::kIsIterationInvariantRate);
  }
  const bool on_amx = amx && M >= ws.prompt->min_rows();
  state.SetLabel(std::string(on_amx ? "AMX-BF16" : nibble::active_isa()) +
                 (!packed                                              ? ""
                  : packs.front().view.layout == nibble::kLayoutRows16 ? " rows16"
                                                                       : " packed"));
}

void Shapes(benchmark::internal::Benchmark* b) {
  const int64_t kn[][2] = {{2048, 2048}, {2048, 5632}, {5632, 2048}, {2048, 256}};
  for (const auto& s : kn) {
    for (int64_t m : {1, 8, 32, 128, 512}) b->Args({s[0], s[1], m});
  }
  b->ArgNames({"K", "N", "M"})->UseRealTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK_CAPTURE(BM_Matmul, Q4_0_packed, TensorType::Q4_0, true)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q8_0_packed, TensorType::Q8_0, true)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q4_0, TensorType::Q4_0, false)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q8_0, TensorType::Q8_0, false)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q6_K, TensorType::Q6_K, false)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q6_K_packed, TensorType::Q6_K, true)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q4_K, TensorType::Q4_K, false)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q4_K_packed, TensorType::Q4_K, true)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q5_K, TensorType::Q5_K, false)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q5_K_packed, TensorType::Q5_K, true)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q4_1, TensorType::Q4_1, false)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q4_1_packed, TensorType::Q4_1, true)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q8_C, TensorType::Q8_C, false)->Apply(Shapes);
// W8A8 (x in [−1, 1], step 1/127): the same integer work as oneDNN's u8s8s32 matmul.
BENCHMARK_CAPTURE(BM_Matmul, Q8_C_static, TensorType::Q8_C, false, 1.0f / 127.0f)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q5_0, TensorType::Q5_0, false)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q5_1, TensorType::Q5_1, false)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q3_K, TensorType::Q3_K, false)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q2_K, TensorType::Q2_K, false)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, IQ4_NL, TensorType::IQ4_NL, false)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, IQ4_NL_packed, TensorType::IQ4_NL, true)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, IQ4_XS, TensorType::IQ4_XS, false)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, F16, TensorType::F16, false)->Apply(Shapes);
// The AMX tile kernel on the types of the common files (Q4_K_M mixes Q4_K and Q6_K).
BENCHMARK_CAPTURE(BM_Matmul, Q4_0_amx, TensorType::Q4_0, true, 0.0f, true)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q8_0_amx, TensorType::Q8_0, true, 0.0f, true)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q4_K_amx, TensorType::Q4_K, true, 0.0f, true)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_Matmul, Q6_K_amx, TensorType::Q6_K, false, 0.0f, true)->Apply(Shapes);
// The plain FP32 GEMV/GEMM the quantised formats are measured against.
BENCHMARK_CAPTURE(BM_Matmul, F32, TensorType::F32, false)->Apply(Shapes);

// Activation quantisation as a prefill matmul runs it before the panel GEMM (M × K floats →
// the block-major int8 copy, one scale per 32-block or per 256), on inputs the size of the 1.1B
// shape's matmul inputs (L3-resident, as the previous op's output is). GB/s of floats read.
void BM_QuantizeActivations(benchmark::State& state) {
  const int64_t K = state.range(0), M = state.range(1);
  const int group_blocks = static_cast<int>(state.range(2));
  std::vector<float> x(static_cast<size_t>(M * K));
  std::mt19937 rng(5);
  std::normal_distribution<float> value(0.0f, 1.0f);
  for (float& v : x) v = value(rng);
  nibble::QuantizedInput q;
  for (auto _ : state) {
    nibble::detail::quantize_panel_input(x.data(), M, K, q, bench_threads(), group_blocks);
    benchmark::DoNotOptimize(q.panel_q.data());
    benchmark::ClobberMemory();
  }
  state.counters["X_GB/s"] = benchmark::Counter(4.0 * static_cast<double>(M * K) / 1e9,
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(nibble::active_isa());
}
BENCHMARK(BM_QuantizeActivations)
    ->ArgsProduct({{2048, 5632}, {512}, {1, 8}})
    ->ArgNames({"K", "M", "group"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// The int8 dot-product peak of this CPU on bench_threads() threads: independent chains of the
// widest u8×s8 dot product it has (vpdpbusd on 512 bits, else vpmaddubsw + vpmaddwd + vpaddd on
// 256), in GOP/s (2 ops per multiply-add). The ceiling for M ≥ 32.
#if defined(__x86_64__)
// Inline assembly, not intrinsics: with intrinsics GCC merged the identical chains into one
// (same inputs, same start) and the "peak" measured one chain's latency × 12, 1.5× too high.
// 16 independent accumulators cover vpdpbusd's latency × throughput on every CPU we run on.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) uint64_t vnni512_loop(int64_t iters) {
  asm volatile(
      "vpternlogd $0xff, %%zmm16, %%zmm16, %%zmm16\n\t"
      "vpabsb %%zmm16, %%zmm17\n\t"
      "1:\n\t"
      "vpdpbusd %%zmm17, %%zmm16, %%zmm0\n\t vpdpbusd %%zmm17, %%zmm16, %%zmm1\n\t"
      "vpdpbusd %%zmm17, %%zmm16, %%zmm2\n\t vpdpbusd %%zmm17, %%zmm16, %%zmm3\n\t"
      "vpdpbusd %%zmm17, %%zmm16, %%zmm4\n\t vpdpbusd %%zmm17, %%zmm16, %%zmm5\n\t"
      "vpdpbusd %%zmm17, %%zmm16, %%zmm6\n\t vpdpbusd %%zmm17, %%zmm16, %%zmm7\n\t"
      "vpdpbusd %%zmm17, %%zmm16, %%zmm8\n\t vpdpbusd %%zmm17, %%zmm16, %%zmm9\n\t"
      "vpdpbusd %%zmm17, %%zmm16, %%zmm10\n\t vpdpbusd %%zmm17, %%zmm16, %%zmm11\n\t"
      "vpdpbusd %%zmm17, %%zmm16, %%zmm12\n\t vpdpbusd %%zmm17, %%zmm16, %%zmm13\n\t"
      "vpdpbusd %%zmm17, %%zmm16, %%zmm14\n\t vpdpbusd %%zmm17, %%zmm16, %%zmm15\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
        "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "cc");
  return static_cast<uint64_t>(iters);
}
constexpr double kVnni512OpsPerIter = 16 * 64 * 2;

// The same in assembly (GCC computed the shared vpmaddubsw once): u8×s8 → i16 pairs, → i32, add.
__attribute__((target("avx2"))) uint64_t avx2_loop(int64_t iters) {
  asm volatile(
      "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n\t"
      "vpabsb %%ymm15, %%ymm14\n\t"
      "vpabsw %%ymm15, %%ymm13\n\t"
      "1:\n\t"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm8\n\t vpmaddwd %%ymm13, %%ymm8, %%ymm8\n\t vpaddd %%ymm8, %%ymm0, %%ymm0\n\t"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm9\n\t vpmaddwd %%ymm13, %%ymm9, %%ymm9\n\t vpaddd %%ymm9, %%ymm1, %%ymm1\n\t"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm10\n\t vpmaddwd %%ymm13, %%ymm10, %%ymm10\n\t vpaddd %%ymm10, %%ymm2, %%ymm2\n\t"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm11\n\t vpmaddwd %%ymm13, %%ymm11, %%ymm11\n\t vpaddd %%ymm11, %%ymm3, %%ymm3\n\t"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm8\n\t vpmaddwd %%ymm13, %%ymm8, %%ymm8\n\t vpaddd %%ymm8, %%ymm4, %%ymm4\n\t"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm9\n\t vpmaddwd %%ymm13, %%ymm9, %%ymm9\n\t vpaddd %%ymm9, %%ymm5, %%ymm5\n\t"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm10\n\t vpmaddwd %%ymm13, %%ymm10, %%ymm10\n\t vpaddd %%ymm10, %%ymm6, %%ymm6\n\t"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm11\n\t vpmaddwd %%ymm13, %%ymm11, %%ymm11\n\t vpaddd %%ymm11, %%ymm7, %%ymm7\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm13",
        "xmm14", "xmm15", "cc");
  return static_cast<uint64_t>(iters);
}
constexpr double kAvx2OpsPerIter = 8 * 32 * 2;
#endif

double int8_peak_gops() {
#if defined(__x86_64__)
  static const double gops = [] {
    const bool vnni = __builtin_cpu_supports("avx512vnni");
    const int64_t iters = 20'000'000;
    double best = 0;
    for (int pass = 0; pass < 3; ++pass) {
      const auto t0 = std::chrono::steady_clock::now();
      uint64_t sink = 0;
#pragma omp parallel num_threads(bench_threads()) reduction(+ : sink)
      sink += vnni ? vnni512_loop(iters) : avx2_loop(iters);
      benchmark::DoNotOptimize(sink);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double ops = (vnni ? kVnni512OpsPerIter : kAvx2OpsPerIter) * static_cast<double>(iters) * bench_threads();
      best = std::max(best, ops / 1e9 / s);
    }
    return best;
  }();
  return gops;
#else
  return 0.0;
#endif
}

void BM_Int8Peak(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(int8_peak_gops());
  state.counters["int8_peak_GOP/s"] = int8_peak_gops();
}
BENCHMARK(BM_Int8Peak)->Iterations(1);

#if defined(NIBBLE_HAVE_DNNL)
// oneDNN's matmul on the same shape, weights in its own packed layout (format_tag::any, reordered
// once outside the timing). int8: u8 activations × s8 weights → s32, and each iteration also
// quantises the float activations to u8 (one scale per row, zero point 128) so that, like
// nibble, it pays for activation quantisation (decisions.md 12). f32: plain sgemm-class matmul.
void BM_OneDnn(benchmark::State& state, bool int8) {
  const int64_t K = state.range(0), N = state.range(1), M = state.range(2);
  omp_set_num_threads(bench_threads());
  using dnnl::memory;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  const memory::data_type src_t = int8 ? memory::data_type::u8 : memory::data_type::f32;
  const memory::data_type wei_t = int8 ? memory::data_type::s8 : memory::data_type::f32;
  const memory::data_type dst_t = int8 ? memory::data_type::s32 : memory::data_type::f32;
  const memory::desc src_md({M, K}, src_t, memory::format_tag::ab);
  const memory::desc wei_any({K, N}, wei_t, memory::format_tag::any);
  const memory::desc wei_plain({K, N}, wei_t, memory::format_tag::ab);
  const memory::desc dst_md({M, N}, dst_t, memory::format_tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, wei_any, dst_md), eng);
  const dnnl::matmul prim(pd);

  std::mt19937 rng(3);
  memory wei_user(wei_plain, eng), wei(pd.weights_desc(), eng), src(src_md, eng), dst(dst_md, eng);
  if (int8) {
    std::uniform_int_distribution<int> q(-127, 127);
    auto* w = static_cast<int8_t*>(wei_user.get_data_handle());
    for (int64_t i = 0; i < K * N; ++i) w[i] = static_cast<int8_t>(q(rng));
  } else {
    std::uniform_real_distribution<float> v(-1.0f, 1.0f);
    auto* w = static_cast<float*>(wei_user.get_data_handle());
    for (int64_t i = 0; i < K * N; ++i) w[i] = v(rng);
  }
  dnnl::reorder(wei_user, wei).execute(strm, wei_user, wei);
  strm.wait();
  std::vector<float> x(static_cast<size_t>(M * K));
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (float& v : x) v = value(rng);
  for (auto _ : state) {
    if (int8) {
      auto* a = static_cast<uint8_t*>(src.get_data_handle());
#pragma omp parallel for num_threads(bench_threads())
      for (int64_t m = 0; m < M; ++m) {
        const float* xr = x.data() + m * K;
        float amax = 0.0f;
        for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(xr[k]));
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        for (int64_t k = 0; k < K; ++k) a[m * K + k] = static_cast<uint8_t>(std::lrint(xr[k] * id) + 128);
      }
    } else {
      std::memcpy(src.get_data_handle(), x.data(), x.size() * sizeof(float));
    }
    prim.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
    strm.wait();
  }
  state.counters["GOP/s"] = benchmark::Counter(2.0 * static_cast<double>(M * N * K) / 1e9,
                                               benchmark::Counter::kIsIterationInvariantRate);
  if (int8 && M >= 8 && int8_peak_gops() > 0) {
    state.counters["int8_peak"] = benchmark::Counter(2.0 * static_cast<double>(M * N * K) / 1e9 / int8_peak_gops(),
                                                     benchmark::Counter::kIsIterationInvariantRate);
  }
  state.SetLabel(int8 ? "oneDNN u8s8s32 + u8 quantisation" : "oneDNN f32");
}
BENCHMARK_CAPTURE(BM_OneDnn, u8s8s32, true)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_OneDnn, f32, false)->Apply(Shapes);
#endif

// What DRAM gives two threads streaming reads: the ceiling for M = 1.
void BM_StreamRead(benchmark::State& state) {
  for (auto _ : state) state.SetIterationTime(static_cast<double>(kColdBytes) / 1e9 / stream_read_gbps(1));
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(kColdBytes) / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
  state.counters["roofline_GB/s"] = roofline_gbps();
}
BENCHMARK(BM_StreamRead)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) { return nibble::bench::run_benchmarks(argc, argv); }
