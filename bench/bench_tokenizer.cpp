// Tokenizer encode speed, one thread: ../shared/data/kjv-valid.txt (or the file named by
// NIBBLE_BENCH_TEXT) through
//   - SmolLM2's byte-level BPE vocabulary ($NIBBLE_MODELS or ~/.cache/nibble/models, fetched by
//     scripts/fetch-models.sh), the vocabulary decisions.md item 11 compares on;
//   - the bundled KJV model's sentencepiece vocabulary (assets/kjv-llama-q4_0.gguf).
// Reports bytes/s and tokens/s. A benchmark whose files are missing is left out with a message.
//   build/bench/bench_tokenizer [--benchmark_filter=BPE]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "loaders/model_file.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocabulary.h"

namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path models_dir() {
  if (const char* env = std::getenv("NIBBLE_MODELS")) return env;
  const char* home = std::getenv("HOME");
  return fs::path(home ? home : ".") / ".cache" / "nibble" / "models";
}

std::shared_ptr<const nibble::Tokenizer> load(const fs::path& gguf) {
  const nibble::ModelFile file = nibble::read_gguf(gguf.string());
  return nibble::make_tokenizer(nibble::read_vocabulary(file.meta, gguf.string()), gguf.string());
}

void encode(benchmark::State& state, std::shared_ptr<const nibble::Tokenizer> tok,
            std::shared_ptr<const std::string> text, bool parse_special) {
  size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = tok->encode(*text, /*add_special=*/false, parse_special);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text->size()));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(tokens) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  const char* text_env = std::getenv("NIBBLE_BENCH_TEXT");
  const fs::path text_path =
      text_env ? fs::path(text_env) : fs::path(NIBBLE_SHARED_DIR) / "data" / "kjv-valid.txt";
  if (!fs::exists(text_path)) {
    std::fprintf(stderr, "bench_tokenizer: no text to encode (%s missing)\n", text_path.c_str());
    return 0;
  }
  const auto text = std::make_shared<const std::string>(read_file(text_path));

  const fs::path smollm = models_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf";
  if (fs::exists(smollm)) {
    auto tok = load(smollm);
    benchmark::RegisterBenchmark("BPE/SmolLM2/kjv-valid", encode, tok, text, false)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BPE/SmolLM2/kjv-valid/parse_special", encode, tok, text, true)
        ->Unit(benchmark::kMillisecond);
  } else {
    std::fprintf(stderr, "bench_tokenizer: %s missing (scripts/fetch-models.sh): BPE left out\n",
                 smollm.c_str());
  }
  const fs::path kjv = fs::path(NIBBLE_SOURCE_DIR) / "assets" / "kjv-llama-q4_0.gguf";
  if (fs::exists(kjv)) {
    benchmark::RegisterBenchmark("SPM/kjv-llama/kjv-valid", encode, load(kjv), text, false)
        ->Unit(benchmark::kMillisecond);
  }

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
