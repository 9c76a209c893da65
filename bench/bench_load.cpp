// bench-load: what loading a model costs — time to load, time to the first token, and resident
// memory (RSS, split into file-backed pages and anonymous memory) after each step, against the
// file's size. One file per run (a process's RSS is not reset by unloading), through nibble's
// public C API only.
//
// A nibble .q4 file is used where it lies (mmap, pre-packed weights): after the load little is
// resident, and after the first token RSS ≈ the weights the forward pass touched, all of it
// file-backed page cache that other processes mapping the same file share. A GGUF Q4_0 file is
// repacked at load into anonymous memory (the file's pages are released afterwards), so its
// load reads every weight and its RSS is private.
//
//   bench-load -m FILE [-t N] [-p N] [--cold] [--no-mmap] [--tokenizer FILE]
//     -p N     prompt length for the first token (default 1: time to first token of decode)
//     --cold   evict the file from the page cache first (posix_fadvise DONTNEED: only this
//              file's clean pages; no root needed, nothing else on the machine is touched)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "../examples/run-model/cli_args.h"
#include "nibble/nibble.h"

namespace {

struct Rss {
  double total_mb = 0, file_mb = 0, anon_mb = 0;
};

// VmRSS, RssFile and RssAnon from /proc/self/status (kB).
Rss read_rss() {
  Rss r;
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    double kb = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %lf", &kb) == 1) r.total_mb = kb / 1024;
    if (std::sscanf(line.c_str(), "RssFile: %lf", &kb) == 1) r.file_mb = kb / 1024;
    if (std::sscanf(line.c_str(), "RssAnon: %lf", &kb) == 1) r.anon_mb = kb / 1024;
  }
  return r;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void print_rss(const char* when, const Rss& r) {
  std::printf("  %-22s RSS %8.1f MB (file-backed %8.1f MB, anonymous %8.1f MB)\n", when,
              r.total_mb, r.file_mb, r.anon_mb);
}

int run(int argc, char** argv) {
  std::string model, tokenizer;
  int32_t threads = 0, n_prompt = 1;
  bool cold = false, mmap = true;
  cli::Args a(argc, argv, 1);
  while (!a.done()) {
    const std::string f = a.next();
    if (f == "-h" || f == "--help") {
      std::puts("usage: bench-load -m FILE [-t N] [-p N] [--cold] [--no-mmap] [--tokenizer FILE]");
      return 0;
    } else if (f == "-m") {
      model = a.value(f);
    } else if (f == "-t") {
      threads = static_cast<int32_t>(cli::parse_int(f, a.value(f), 1, 1024));
    } else if (f == "-p") {
      n_prompt = static_cast<int32_t>(cli::parse_int(f, a.value(f), 1, 4096));
    } else if (f == "--cold") {
      cold = true;
    } else if (f == "--no-mmap") {
      mmap = false;
    } else if (f == "--tokenizer") {
      tokenizer = a.value(f);
    } else {
      throw cli::UsageError("unknown flag '" + f + "'");
    }
  }
  if (model.empty()) throw cli::UsageError("no model (-m FILE)");

  struct stat st {};
  if (::stat(model.c_str(), &st) != 0) throw cli::UsageError("cannot stat " + model);
  const double file_mb = static_cast<double>(st.st_size) / (1024.0 * 1024.0);
  if (cold) {
    const int fd = ::open(model.c_str(), O_RDONLY);
    if (fd >= 0) {
      ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      ::close(fd);
    }
  }

  std::printf("%s: %.1f MB%s%s\n", model.c_str(), file_mb, cold ? ", cold page cache" : "",
              mmap ? "" : ", --no-mmap");
  const Rss before = read_rss();
  print_rss("before load", before);

  nibble_model_params mp = nibble_model_default_params();
  mp.use_mmap = mmap;
  if (!tokenizer.empty()) mp.tokenizer_path = tokenizer.c_str();
  nibble_model* m = nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  if (nibble_model_load(model.c_str(), &mp, &m) != NIBBLE_OK) {
    std::fprintf(stderr, "bench-load: %s\n", nibble_last_error());
    return 1;
  }
  const double load_ms = ms_since(t0);
  const Rss loaded = read_rss();

  nibble_context_params cp = nibble_context_default_params();
  cp.n_threads = threads;
  cp.n_ctx = n_prompt + 1;
  nibble_context* ctx = nullptr;
  if (nibble_context_create(m, &cp, &ctx) != NIBBLE_OK) {
    std::fprintf(stderr, "bench-load: %s\n", nibble_last_error());
    nibble_model_free(m);
    return 1;
  }
  const Rss with_ctx = read_rss();
  std::vector<int32_t> tokens(static_cast<size_t>(n_prompt));
  tokens[0] = nibble_token_bos(m) >= 0 ? nibble_token_bos(m) : 1;
  for (size_t i = 1; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(100 + 37 * i % 1000);
  const auto t1 = std::chrono::steady_clock::now();
  if (nibble_eval(ctx, tokens.data(), n_prompt) != NIBBLE_OK) {
    std::fprintf(stderr, "bench-load: %s\n", nibble_context_last_error(ctx));
    return 1;
  }
  const double first_ms = ms_since(t1);
  const Rss after = read_rss();
  // A second token: the weights are resident now, so this is the steady decode cost.
  const auto t2 = std::chrono::steady_clock::now();
  int32_t next = 42;
  nibble_eval(ctx, &next, 1);
  const double second_ms = ms_since(t2);

  nibble_model_info info;
  nibble_model_get_info(m, &info);
  const double weights_mb = static_cast<double>(info.tensor_bytes) / (1024.0 * 1024.0);
  print_rss("after load", loaded);
  print_rss("after context", with_ctx);
  print_rss("after first token", after);
  std::printf("  load %.1f ms; first token (prompt %d) %.1f ms; time to first token %.1f ms; "
              "next token %.1f ms\n",
              load_ms, n_prompt, first_ms, load_ms + first_ms, second_ms);
  std::printf("  tensors %.1f MB; RSS growth: load %.1f MB, first token %.1f MB (%.0f%% of the "
              "file); anonymous growth %.1f MB\n",
              weights_mb, loaded.total_mb - before.total_mb, after.total_mb - with_ctx.total_mb,
              100.0 * (after.total_mb - before.total_mb) / file_mb, after.anon_mb - before.anon_mb);
  nibble_context_free(ctx);
  nibble_model_free(m);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const cli::UsageError& e) {
    std::fprintf(stderr, "bench-load: %s\n", e.what());
    return 1;
  }
}
