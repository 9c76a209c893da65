// quantize-model IN OUT RECIPE [--tokenizer FILE] [--report] [--json]: writes a quantized copy
// of a model. OUT's extension picks the container (.gguf: GGUF; anything else: nibble's own
// file). --report measures every tensor's error; --json prints the same as one JSON object.
// Uses nothing but the public C API.
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <string>

#include "nibble/nibble.h"

namespace {

void usage(FILE* to) {
  std::fputs(
      "usage: quantize-model IN OUT RECIPE [--tokenizer tokenizer.model] [--report] [--json]\n\n"
      "IN is a GGUF file, a nibble file, a llama2.c checkpoint (which needs --tokenizer to embed\n"
      "a vocabulary) or a Hugging Face LLaMA directory (config.json, *.safetensors,\n"
      "tokenizer.model). OUT's extension picks the container: .gguf writes GGUF with GGUF type\n"
      "names as recipes; any other name writes nibble's own file (docs/format.md), which loads\n"
      "as an mmap in the kernels' layout (suggested extensions as listed).\n\n"
      "  --tokenizer FILE  sentencepiece model to embed (replaces the input's vocabulary)\n"
      "  --report          per tensor MSE, SNR, cosine similarity and max |error| of the\n"
      "                    dequantized weights against the input, and a size summary\n"
      "  --json            the report as one JSON object on stdout\n\n"
      "calibrated quantization (the model runs at full precision over a text first):\n"
      "  --calib FILE      calibration text (e.g. ../shared/data/kjv-train.txt)\n"
      "  --calib-chunks N  sequences drawn from it (default 128)\n"
      "  --calib-ctx N     tokens per sequence (default min(512, the trained context))\n"
      "  --seed N          which sequences are drawn (default 1)\n"
      "  -t, --threads N   threads (default: all cores)\n"
      "  --awq             AWQ: activation-aware input-channel scales folded into the norms\n"
      "                    and producing layers, then a per-block clipping search\n"
      "  --no-clip         AWQ without the clipping search\n"
      "  --gptq            GPTQ: column-by-column rounding with Hessian error feedback\n"
      "  --damp F          GPTQ damping, a fraction of mean diag(H) (default 0.01)\n"
      "  --gptq-block N    GPTQ lazy-batch width in columns (default 128)\n"
      "  --act-order       GPTQ in order of decreasing diag(H), with static groups\n"
      "  --smooth A        q8a8: SmoothQuant migration strength in [0, 1] (default 0.5)\n"
      "  --act-calib M     q8a8: static input scale from minmax, percentile[=99.99], kl (2048-bin\n"
      "                    entropy method) or mse (least squared error; the default)\n"
      "  --outlier-threshold T  q8o: input channels whose calibration |x| exceeds T stay F16\n"
      "                    (default 6)\n"
      "  --target-bpw B    recipe auto: bits per weight over all tensors\n"
      "  --target-size N   recipe auto: the output file's size in bytes (met exactly)\n"
      "  --sens-chunks N   recipe auto: calibration sequences per sensitivity measurement (8)\n"
      "  With --report, each linear layer also shows its output error on the calibration\n"
      "  activations (relative): round-to-nearest vs what was written.\n\n"
      "recipe    output  what\n",
      to);
  const char* name = nullptr;
  const char* ext = nullptr;
  const char* desc = nullptr;
  for (int32_t i = 0; nibble_quantize_recipe_info(i, &name, &ext, &desc); ++i) {
    std::fprintf(to, "%-9s %-7s %s\n", name, ext, desc);
  }
  std::fputs("\n1-D tensors (norms) stay F32. Rows that are not whole groups of a type fall back to\n"
             "a smaller group (Q4_G128 -> Q4_G64 -> Q4_0), else F16.\n\n"
             "The GGUF K-quant and IQ4 mixes assign types per tensor as llama.cpp's quantize does\n"
             "(general.file_type is llama.cpp's number for the mix): the output head, or token_embd\n"
             "when the head is tied to it, is Q6_K (Q8_0 if its rows are not whole 256-blocks);\n"
             "token_embd otherwise keeps the base type. \"More-bits\" layers are i < n/8, i >= 7n/8\n"
             "and (i - n/8) % 3 == 2 (i counts attn_v resp. ffn_down tensors, n their number).\n"
             "Rows that are not whole blocks fall back as llama.cpp's do: Q2_K/Q3_K/IQ4_XS -> IQ4_NL,\n"
             "Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16.\n",
             to);
}

std::string shape_text(const nibble_quantize_tensor& t) {
  std::string s;
  for (int32_t d = 0; d < t.n_dims; ++d) {
    if (d) s += 'x';
    s += std::to_string(t.dims[d]);
  }
  return s;
}

std::string with_commas(uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

std::string json_string(const char* s) {
  std::string out = "\"";
  for (const char* p = s; *p; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// JSON has no infinity: an exact tensor's SNR is null.
std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void print_text_report(const nibble_quantize_result* r, const nibble_quantize_summary& s,
                       const std::string& in, const std::string& out, double seconds) {
  const bool calibrated = s.calibration[0] != '\0';
  std::printf("%-32s %-12s %-6s %-8s %-8s %11s %11s %8s %9s %9s", "tensor", "shape", "src",
              "type", "layout", "bytes", "MSE", "SNR dB", "cosine", "max|err|");
  std::printf(calibrated ? " %10s %10s\n" : "\n", "out RTN", "out");
  const int64_t n = nibble_quantize_result_tensor_count(r);
  for (int64_t i = 0; i < n; ++i) {
    nibble_quantize_tensor t;
    if (nibble_quantize_result_tensor(r, i, &t) != NIBBLE_OK) continue;
    char snr[16];
    if (std::isfinite(t.snr_db)) {
      std::snprintf(snr, sizeof snr, "%.2f", t.snr_db);
    } else {
      std::snprintf(snr, sizeof snr, "exact");
    }
    std::printf("%-32s %-12s %-6s %-8s %-8s %11s %11.3e %8s %9.6f %9.3g", t.name,
                shape_text(t).c_str(), t.src_type, t.type, t.layout == 1 ? "packed4" : "plain",
                with_commas(t.bytes).c_str(), t.mse, snr, t.cosine, t.max_abs_err);
    if (calibrated && t.out_err >= 0) {
      std::printf(" %10.3e %10.3e\n", t.out_err_rtn, t.out_err);
    } else {
      std::printf(calibrated ? " %10s %10s\n" : "\n", "-", "-");
    }
  }
  std::printf("\n%s -> %s (recipe %s, %s file) in %.2f s\n", in.c_str(), out.c_str(), s.recipe,
              s.container, seconds);
  std::printf("summary: %lld tensors, %s weights\n", static_cast<long long>(s.n_tensors),
              with_commas(s.n_params).c_str());
  std::printf("size: %s tensor bytes, %.3f bits/weight; FP16 %s bytes: %.2fx smaller; file %s bytes\n",
              with_commas(s.tensor_bytes).c_str(), s.bits_per_weight, with_commas(s.f16_bytes).c_str(),
              s.compression_vs_f16, with_commas(s.file_bytes).c_str());
  if (s.measured) {
    std::printf("error over all weights: MSE %.3e, SNR %.2f dB, max |err| %.4g\n", s.mse, s.snr_db,
                s.max_abs_err);
  }
  if (calibrated) {
    std::printf("calibration: %s; %.2f s, statistics %.1f MiB\n", s.calibration, s.calib_seconds,
                static_cast<double>(s.calib_bytes) / (1 << 20));
    if (s.gptq_tensors > 0 && s.gptq_loss_rtn > 0) {
      std::printf("GPTQ: %lld tensors, summed output error %.4e (round-to-nearest) -> %.4e (%.1f%%)\n",
                  static_cast<long long>(s.gptq_tensors), s.gptq_loss_rtn, s.gptq_loss,
                  s.gptq_loss_rtn > 0 ? 100.0 * s.gptq_loss / s.gptq_loss_rtn : 0.0);
    }
    const int64_t ng = nibble_quantize_result_awq_count(r);
    if (ng > 0) std::printf("\n%-32s %6s %12s %12s\n", "AWQ scale group", "alpha", "out RTN", "out AWQ");
    for (int64_t i = 0; i < ng; ++i) {
      nibble_quantize_awq_group g;
      if (nibble_quantize_result_awq_group(r, i, &g) != NIBBLE_OK) continue;
      std::printf("%-32s %6.2f %12.4e %12.4e\n", g.group, g.alpha, g.rel_err_rtn, g.rel_err_awq);
    }
  }
}

void print_json_report(const nibble_quantize_result* r, const nibble_quantize_summary& s,
                       const std::string& in, const std::string& out, double seconds) {
  std::printf("{\"input\": %s, \"output\": %s, \"recipe\": %s, \"container\": %s, \"seconds\": %s,\n",
              json_string(in.c_str()).c_str(), json_string(out.c_str()).c_str(),
              json_string(s.recipe).c_str(), json_string(s.container).c_str(),
              json_number(seconds).c_str());
  std::printf(" \"summary\": {\"n_tensors\": %lld, \"n_params\": %llu, \"src_bytes\": %llu, "
              "\"tensor_bytes\": %llu, \"file_bytes\": %llu, \"bits_per_weight\": %s, "
              "\"f16_bytes\": %llu, \"compression_vs_f16\": %s, \"mse\": %s, \"snr_db\": %s, "
              "\"max_abs_err\": %s, \"calibration\": %s, \"calib_seconds\": %s, \"calib_bytes\": %llu, "
              "\"gptq_tensors\": %lld, \"gptq_loss_rtn\": %s, \"gptq_loss\": %s},\n",
              static_cast<long long>(s.n_tensors), static_cast<unsigned long long>(s.n_params),
              static_cast<unsigned long long>(s.src_bytes),
              static_cast<unsigned long long>(s.tensor_bytes),
              static_cast<unsigned long long>(s.file_bytes), json_number(s.bits_per_weight).c_str(),
              static_cast<unsigned long long>(s.f16_bytes), json_number(s.compression_vs_f16).c_str(),
              json_number(s.mse).c_str(), json_number(s.snr_db).c_str(),
              json_number(s.max_abs_err).c_str(), json_string(s.calibration).c_str(),
              json_number(s.calib_seconds).c_str(), static_cast<unsigned long long>(s.calib_bytes),
              static_cast<long long>(s.gptq_tensors), json_number(s.gptq_loss_rtn).c_str(),
              json_number(s.gptq_loss).c_str());
  std::printf(" \"awq\": [");
  const int64_t ng = nibble_quantize_result_awq_count(r);
  for (int64_t i = 0; i < ng; ++i) {
    nibble_quantize_awq_group g;
    if (nibble_quantize_result_awq_group(r, i, &g) != NIBBLE_OK) continue;
    std::printf("%s{\"group\": %s, \"alpha\": %s, \"rel_err_rtn\": %s, \"rel_err_awq\": %s}",
                i ? ", " : "", json_string(g.group).c_str(), json_number(g.alpha).c_str(),
                json_number(g.rel_err_rtn).c_str(), json_number(g.rel_err_awq).c_str());
  }
  std::printf("],\n");
  std::printf(" \"tensors\": [");
  const int64_t n = nibble_quantize_result_tensor_count(r);
  for (int64_t i = 0; i < n; ++i) {
    nibble_quantize_tensor t;
    if (nibble_quantize_result_tensor(r, i, &t) != NIBBLE_OK) continue;
    std::string dims = "[";
    for (int32_t d = 0; d < t.n_dims; ++d) {
      if (d) dims += ", ";
      dims += std::to_string(t.dims[d]);
    }
    dims += ']';
    std::printf("%s\n  {\"name\": %s, \"dims\": %s, \"src_type\": %s, \"type\": %s, \"layout\": %u, "
                "\"bytes\": %llu, \"copied\": %s, \"mse\": %s, \"snr_db\": %s, \"cosine\": %s, "
                "\"max_abs_err\": %s, \"out_err_rtn\": %s, \"out_err\": %s}",
                i ? "," : "", json_string(t.name).c_str(), dims.c_str(),
                json_string(t.src_type).c_str(), json_string(t.type).c_str(), t.layout,
                static_cast<unsigned long long>(t.bytes), t.copied ? "true" : "false",
                json_number(t.mse).c_str(), json_number(t.snr_db).c_str(),
                json_number(t.cosine).c_str(), json_number(t.max_abs_err).c_str(),
                t.out_err >= 0 ? json_number(t.out_err_rtn).c_str() : "null",
                t.out_err >= 0 ? json_number(t.out_err).c_str() : "null");
  }
  std::printf("]}\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string pos[3];
  int n_pos = 0;
  std::string tokenizer, calib, act_calib;
  bool report = false, json = false;
  nibble_quantize_params params = nibble_quantize_default_params();
  // A flag's value: the next argument, which must exist and (for numbers) parse completely.
  auto value = [&](int& i, const std::string& flag) -> const char* {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "quantize-model: %s needs a value\n", flag.c_str());
      std::exit(1);
    }
    return argv[++i];
  };
  auto integer = [&](int& i, const std::string& flag, long long lo, long long hi) -> long long {
    const char* v = value(i, flag);
    char* end = nullptr;
    errno = 0;
    const long long n = std::strtoll(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi) {
      std::fprintf(stderr, "quantize-model: %s wants an integer in [%lld, %lld], not '%s'\n",
                   flag.c_str(), lo, hi, v);
      std::exit(1);
    }
    return n;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a == "--tokenizer") {
      tokenizer = value(i, a);
    } else if (a == "--calib") {
      calib = value(i, a);
    } else if (a == "--calib-chunks") {
      params.calib_chunks = static_cast<int32_t>(integer(i, a, 1, 1 << 20));
    } else if (a == "--calib-ctx") {
      params.calib_ctx = static_cast<int32_t>(integer(i, a, 2, 1 << 20));
    } else if (a == "--seed") {
      params.seed = static_cast<uint64_t>(integer(i, a, 1, LLONG_MAX));
    } else if (a == "-t" || a == "--threads") {
      params.n_threads = static_cast<int>(integer(i, a, 1, 1024));
    } else if (a == "--awq") {
      params.awq = 1;
    } else if (a == "--no-clip") {
      params.awq_no_clip = 1;
    } else if (a == "--gptq") {
      params.gptq = 1;
    } else if (a == "--act-order") {
      params.act_order = 1;
    } else if (a == "--gptq-block") {
      params.gptq_block = static_cast<int32_t>(integer(i, a, 1, 1 << 20));
    } else if (a == "--damp") {
      const char* v = value(i, a);
      char* end = nullptr;
      const float d = std::strtof(v, &end);
      if (end == v || *end || !(d > 0.0f) || d > 10.0f) {
        std::fprintf(stderr, "quantize-model: --damp wants a number in (0, 10], not '%s'\n", v);
        return 1;
      }
      params.gptq_damp = d;
    } else if (a == "--smooth") {
      const char* v = value(i, a);
      char* end = nullptr;
      const float x = std::strtof(v, &end);
      if (end == v || *end || !(x >= 0.0f && x <= 1.0f)) {
        std::fprintf(stderr, "quantize-model: --smooth wants a number in [0, 1], not '%s'\n", v);
        return 1;
      }
      params.smooth_alpha = x > 0.0f ? x : 1e-9f;  // 0 means "default" in the C struct
    } else if (a == "--outlier-threshold") {
      const char* v = value(i, a);
      char* end = nullptr;
      const float x = std::strtof(v, &end);
      if (end == v || *end || !(x > 0.0f) || !std::isfinite(x)) {
        std::fprintf(stderr, "quantize-model: --outlier-threshold wants a positive number, not '%s'\n", v);
        return 1;
      }
      params.outlier_threshold = x;
    } else if (a == "--target-bpw") {
      const char* v = value(i, a);
      char* end = nullptr;
      const double x = std::strtod(v, &end);
      if (end == v || *end || !(x > 0.0) || x > 32.0) {
        std::fprintf(stderr, "quantize-model: --target-bpw wants bits per weight in (0, 32], not '%s'\n", v);
        return 1;
      }
      params.target_bpw = x;
    } else if (a == "--target-size") {
      params.target_size = static_cast<uint64_t>(integer(i, a, 1, LLONG_MAX));
    } else if (a == "--sens-chunks") {
      params.sensitivity_sequences = static_cast<int32_t>(integer(i, a, 1, 1 << 20));
    } else if (a == "--act-calib") {
      act_calib = value(i, a);
    } else if (a == "--report") {
      report = true;
    } else if (a == "--json") {
      json = true;
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
  if (calib.empty() && (params.awq || params.gptq || params.act_order || params.calib_chunks ||
                        params.calib_ctx || params.seed)) {
    std::fprintf(stderr, "quantize-model: calibrated methods need a calibration text (--calib FILE)\n");
    return 1;
  }
  const bool static_recipe = pos[2] == "q8a8";
  if (!calib.empty() && !params.awq && !params.gptq && !static_recipe && pos[2] != "q8o" && pos[2] != "auto") {
    std::fprintf(stderr, "quantize-model: --calib without a method (--awq, --gptq, recipes q8a8, q8o, auto)\n");
    return 1;
  }
  if (params.outlier_threshold != 0.0f && pos[2] != "q8o") {
    std::fprintf(stderr, "quantize-model: --outlier-threshold applies to recipe q8o\n");
    return 1;
  }
  if ((params.smooth_alpha != 0.0f || !act_calib.empty()) && !static_recipe) {
    std::fprintf(stderr, "quantize-model: --smooth and --act-calib apply to recipe q8a8\n");
    return 1;
  }
  params.act_calib = act_calib.empty() ? nullptr : act_calib.c_str();
  params.calib_path = calib.empty() ? nullptr : calib.c_str();
  params.tokenizer_path = tokenizer.empty() ? nullptr : tokenizer.c_str();
  params.measure = report || json;
  nibble_quantize_result* result = nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  if (nibble_quantize_model(pos[0].c_str(), pos[1].c_str(), pos[2].c_str(), &params, &result) !=
      NIBBLE_OK) {
    std::fprintf(stderr, "quantize-model: %s\n", nibble_last_error());
    return 1;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nibble_quantize_summary sum;
  nibble_quantize_result_summary(result, &sum);
  if (json) {
    print_json_report(result, sum, pos[0], pos[1], s);
  } else if (report) {
    print_text_report(result, sum, pos[0], pos[1], s);
  }
  if (!json) {
    std::fprintf(stderr, "wrote %s (%s, %s file): %lld tensors, %.3f bits/weight, %s bytes in %.2f s\n",
                 pos[1].c_str(), pos[2].c_str(), sum.container, static_cast<long long>(sum.n_tensors),
                 sum.bits_per_weight, with_commas(sum.file_bytes).c_str(), s);
    if (sum.calibration[0] != '\0') {
      std::fprintf(stderr, "  %s: calibration %.1f s (statistics %.1f MiB), AWQ %.1f s, GPTQ %.1f s\n",
                   sum.calibration, sum.calib_seconds, static_cast<double>(sum.calib_bytes) / (1 << 20),
                   sum.awq_seconds, sum.gptq_seconds);
    }
    if (sum.allocation[0] != '\0') std::fprintf(stderr, "  allocation: %s\n", sum.allocation);
  }
  nibble_quantize_result_free(result);
  return 0;
}
