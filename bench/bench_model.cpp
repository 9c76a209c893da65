// bench-model: whole-model speed the way llama.cpp's llama-bench measures it, through nibble's
// public C API only, so its numbers sit next to llama-bench's for the same file and threads.
//
//   pp<P>: P random token ids (BOS first, fixed seed) evaluated from an empty context as one
//          batch; t/s = P / time.
//   tg<N>: N single tokens evaluated one after another from an empty context; t/s = N / time.
//   -d D (llama-bench's --n-depth): each test starts after D other random tokens in the cache
//          (evaluated untimed before every run, in batches of up to 512), "pp512 @ d2048".
// Each test gets its own context of n_depth + n_prompt + n_gen positions (as llama-bench sizes
// them), one untimed warmup run (llama-bench's: the whole prompt for pp, one token for tg), then -r
// timed repetitions from a reset context. avg and stddev are over the per-repetition t/s values
// with the n-1 divisor, as llama-bench reports them.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../examples/run-model/cli_args.h"
#include "nibble/nibble.h"

namespace {

struct Options {
  std::string model, tokenizer, output = "md", gemm = "auto";
  std::vector<int> n_prompt{512}, n_gen{128}, threads{2}, n_depth{0};
  int reps = 3;
};

struct Result {
  int n_prompt = 0, n_gen = 0, n_depth = 0, threads = 0;
  std::vector<double> samples_ns, samples_ts;
  double avg_ts = 0, stddev_ts = 0, avg_ns = 0, stddev_ns = 0;
  std::string isa;  // the kernels' instruction set, and the prompt matmul when not nibble's
};

const char* kUsage =
    "usage: bench-model -m FILE [-p 512] [-n 128] [-d 0] [-t 2] [-r 3] [-o md|json]\n"
    "                   [--tokenizer F] [--gemm auto|nibble|amx|onednn]\n"
    "  -p, -n, -d, -t take comma lists (e.g. -p 128,512); -p/-n 0 skips that kind of test.\n"
    "  -d: tokens already in the context when each test starts (llama-bench's --n-depth).\n"
    "  --tokenizer: sentencepiece .model for files without a vocabulary (llama2.c checkpoints).\n"
    "  --gemm: the matmul prompts use (default auto: amx where the CPU has AMX tiles, else\n"
    "          nibble's int8 GEMM; onednn: oneDNN's bf16 primitive). The isa column names it when\n"
    "          not nibble's. The untimed warmup pays onednn's one-time weight conversion.\n";

std::vector<int> parse_list(const std::string& flag, const std::string& s, int lo) {
  std::vector<int> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    v.push_back(static_cast<int>(cli::parse_int(flag, item, lo, 1 << 20)));
  }
  if (v.empty() || s.back() == ',') throw cli::UsageError(flag + ": expected a comma list of integers");
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  cli::Args args(argc, argv, 1);
  while (!args.done()) {
    const std::string a = args.next();
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "-m" || a == "--model") {
      o.model = args.value(a);
    } else if (a == "-p" || a == "--n-prompt") {
      o.n_prompt = parse_list(a, args.value(a), 0);
    } else if (a == "-n" || a == "--n-gen") {
      o.n_gen = parse_list(a, args.value(a), 0);
    } else if (a == "-d" || a == "--n-depth") {
      o.n_depth = parse_list(a, args.value(a), 0);
    } else if (a == "-t" || a == "--threads") {
      o.threads = parse_list(a, args.value(a), 1);
    } else if (a == "-r" || a == "--repetitions") {
      o.reps = static_cast<int>(cli::parse_int(a, args.value(a), 1, 1000));
    } else if (a == "-o" || a == "--output") {
      o.output = args.value(a);
      if (o.output != "md" && o.output != "json")
        throw cli::UsageError("-o: expected md or json, got '" + o.output + "'");
    } else if (a == "--tokenizer") {
      o.tokenizer = args.value(a);
    } else if (a == "--gemm") {
      o.gemm = args.value(a);
    } else {
      throw cli::UsageError("unknown flag '" + a + "'");
    }
  }
  if (o.model.empty()) throw cli::UsageError("no model (-m FILE)");
  return o;
}

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check(nibble_status st, const nibble_context* ctx, const char* what) {
  if (st == NIBBLE_OK) return;
  throw Failure(std::string(what) + ": " +
                (ctx ? nibble_context_last_error(ctx) : nibble_last_error()));
}

// Owns a context for one test; freed on every path out.
struct ContextGuard {
  nibble_context* ctx = nullptr;
  ~ContextGuard() { nibble_context_free(ctx); }
};

Result run_test(nibble_model* model, int n_prompt, int n_gen, int n_depth, int threads, int reps,
                const std::string& gemm) {
  nibble_context_params cp = nibble_context_default_params();
  cp.n_ctx = n_depth + n_prompt + n_gen;
  cp.n_threads = threads;
  cp.n_batch = std::max({n_prompt, std::min(n_depth, 512), 1});
  ContextGuard g;
  check(nibble_context_create(model, &cp, &g.ctx), nullptr, "creating the context");
  nibble_context* ctx = g.ctx;
  check(nibble_context_set_gemm(ctx, gemm.c_str()), ctx, "choosing the matmul");
  const std::string chosen = nibble_context_gemm(ctx);

  nibble_model_info info{};
  check(nibble_model_get_info(model, &info), nullptr, "reading the model info");
  // Fixed seed, valid ids: every run and every runtime sees the same kind of input.
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> id(0, info.n_vocab - 1);
  const int32_t bos = nibble_token_bos(model);
  auto first_token = [&] { return bos >= 0 ? bos : id(rng); };

  std::vector<int32_t> prompt(static_cast<size_t>(std::max(n_prompt, n_depth)));
  // Reset, then the depth's tokens (BOS first): the state every run starts from.
  auto start = [&] {
    check(nibble_context_reset(ctx), ctx, "resetting the context");
    if (n_depth == 0) return;
    prompt[0] = first_token();
    for (int i = 1; i < n_depth; ++i) prompt[i] = id(rng);
    check(nibble_eval(ctx, prompt.data(), n_depth), ctx, "evaluating the depth tokens");
  };
  auto run_once = [&](int gen_count) {
    if (n_prompt > 0) {
      prompt[0] = n_depth > 0 ? id(rng) : first_token();
      for (int i = 1; i < n_prompt; ++i) prompt[i] = id(rng);
      check(nibble_eval(ctx, prompt.data(), n_prompt), ctx, "evaluating the prompt");
    }
    int32_t tok = n_depth > 0 ? id(rng) : first_token();
    for (int i = 0; i < gen_count; ++i) {
      check(nibble_eval(ctx, &tok, 1), ctx, "evaluating a token");
      tok = id(rng);
    }
  };

  // Warmup (untimed): first touches of the mapped weights and buffers.
  start();
  run_once(std::min(n_gen, 1));

  Result r;
  r.n_prompt = n_prompt;
  r.n_gen = n_gen;
  r.n_depth = n_depth;
  r.threads = nibble_context_threads(ctx);
  // The isa column names the matmul too when it is not nibble's own.
  r.isa = chosen == "nibble" ? nibble_isa() : std::string(nibble_isa()) + "+" + chosen;
  for (int rep = 0; rep < reps; ++rep) {
    start();
    const auto t0 = std::chrono::steady_clock::now();
    run_once(n_gen);
    const auto t1 = std::chrono::steady_clock::now();
    const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
    r.samples_ns.push_back(ns);
    r.samples_ts.push_back(1e9 * (n_prompt + n_gen) / ns);
  }
  auto mean_sd = [](const std::vector<double>& v, double* mean, double* sd) {
    double s = 0;
    for (double x : v) s += x;
    *mean = s / static_cast<double>(v.size());
    double q = 0;
    for (double x : v) q += (x - *mean) * (x - *mean);
    *sd = v.size() > 1 ? std::sqrt(q / static_cast<double>(v.size() - 1)) : 0.0;
  };
  mean_sd(r.samples_ts, &r.avg_ts, &r.stddev_ts);
  mean_sd(r.samples_ns, &r.avg_ns, &r.stddev_ns);
  return r;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      o += buf;
    } else {
      o += c;
    }
  }
  return o;
}

std::string test_name(const Result& r) {
  std::string name = r.n_prompt > 0 && r.n_gen > 0
                         ? "pp" + std::to_string(r.n_prompt) + "+tg" + std::to_string(r.n_gen)
                     : r.n_prompt > 0 ? "pp" + std::to_string(r.n_prompt)
                                      : "tg" + std::to_string(r.n_gen);
  if (r.n_depth > 0) name += " @ d" + std::to_string(r.n_depth);
  return name;
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  nibble_model_params mp = nibble_model_default_params();
  if (!o.tokenizer.empty()) mp.tokenizer_path = o.tokenizer.c_str();
  nibble_model* raw_model = nullptr;
  check(nibble_model_load(o.model.c_str(), &mp, &raw_model), nullptr, "loading the model");
  const std::unique_ptr<nibble_model, void (*)(nibble_model*)> model(raw_model, nibble_model_free);
  nibble_model_info info{};
  check(nibble_model_get_info(model.get(), &info), nullptr, "reading the model info");

  // As llama-bench: params = elements of all tensors, size = bytes of all tensors.
  const double n_params = static_cast<double>(info.n_params);
  const double size_mib = static_cast<double>(info.tensor_bytes) / (1024.0 * 1024.0);
  char params_text[32];
  if (n_params >= 1e9)
    std::snprintf(params_text, sizeof(params_text), "%.2f B", n_params / 1e9);
  else
    std::snprintf(params_text, sizeof(params_text), "%.2f M", n_params / 1e6);

  std::vector<Result> results;
  const bool md = o.output == "md";
  if (md) {
    std::printf("| model | size | params | isa | threads | test | t/s |\n");
    std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
    std::fflush(stdout);
  }
  for (int t : o.threads) {
    std::vector<std::pair<int, int>> tests;
    for (int p : o.n_prompt)
      if (p > 0) tests.emplace_back(p, 0);
    for (int n : o.n_gen)
      if (n > 0) tests.emplace_back(0, n);
    for (int d : o.n_depth)
      for (const auto& [p, n] : tests) {
        results.push_back(run_test(model.get(), p, n, d, t, o.reps, o.gemm));
        const Result& r = results.back();
        if (md) {
          std::printf("| %s | %.2f MiB | %s | %s | %d | %s | %.2f ± %.2f |\n", o.model.c_str(),
                      size_mib, params_text, r.isa.c_str(), r.threads, test_name(r).c_str(),
                      r.avg_ts, r.stddev_ts);
          std::fflush(stdout);
        }
      }
  }
  if (!md) {
    std::printf("[\n");
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      std::printf(
          "  {\n    \"runtime\": \"nibble %s\",\n    \"isa\": \"%s\",\n"
          "    \"model_filename\": \"%s\",\n    \"model_size\": %llu,\n"
          "    \"model_n_params\": %.0f,\n    \"n_batch\": %d,\n    \"n_threads\": %d,\n"
          "    \"n_prompt\": %d,\n    \"n_gen\": %d,\n    \"n_depth\": %d,\n    \"avg_ns\": %.0f,\n"
          "    \"stddev_ns\": %.0f,\n    \"avg_ts\": %.6f,\n    \"stddev_ts\": %.6f,\n"
          "    \"samples_ts\": [",
          nibble_version(), r.isa.c_str(), json_escape(o.model).c_str(),
          static_cast<unsigned long long>(info.tensor_bytes), n_params, std::max(r.n_prompt, 1),
          r.threads, r.n_prompt, r.n_gen, r.n_depth, r.avg_ns, r.stddev_ns, r.avg_ts, r.stddev_ts);
      for (size_t k = 0; k < r.samples_ts.size(); ++k)
        std::printf("%s%.6f", k ? ", " : "", r.samples_ts[k]);
      std::printf("]\n  }%s\n", i + 1 < results.size() ? "," : "");
    }
    std::printf("]\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const cli::UsageError& e) {
    std::fprintf(stderr, "bench-model: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-model: error: %s\n", e.what());
  }
  return 1;
}
