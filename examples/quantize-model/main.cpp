// quantize-model IN OUT RECIPE [--tokenizer FILE]: writes a quantized copy of a model file.
#include <chrono>
#include <cstdio>
#include <string>

#include "nibble/nibble.h"

namespace {

void usage(FILE* to) {
  std::fputs(
      "usage: quantize-model IN OUT RECIPE [--tokenizer tokenizer.model]\n\n"
      "IN is a GGUF file or a llama2.c checkpoint (which needs --tokenizer to embed a\n"
      "vocabulary). OUT's extension picks the container: .gguf writes GGUF.\n\nrecipes:\n",
      to);
  const char* name = nullptr;
  const char* desc = nullptr;
  for (int32_t i = 0; nibble_quantize_recipe(i, &name, &desc); ++i) {
    std::fprintf(to, "  %-8s %s\n", name, desc);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string pos[3];
  int n_pos = 0;
  std::string tokenizer;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a == "--tokenizer") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "quantize-model: --tokenizer needs a value\n");
        return 1;
      }
      tokenizer = argv[++i];
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "quantize-model: unknown flag '%s' (see --help)\n", a.c_str());
      return 1;
    } else if (n_pos < 3) {
      pos[n_pos++] = a;
    } else {
      std::fprintf(stderr, "quantize-model: too many arguments\n");
      return 1;
    }
  }
  if (n_pos != 3) {
    usage(stderr);
    return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (nibble_quantize(pos[0].c_str(), pos[1].c_str(), pos[2].c_str(),
                      tokenizer.empty() ? nullptr : tokenizer.c_str()) != NIBBLE_OK) {
    std::fprintf(stderr, "quantize-model: %s\n", nibble_last_error());
    return 1;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "wrote %s (%s) in %.2f s\n", pos[1].c_str(), pos[2].c_str(), s);
  return 0;
}
