// random-model: writes a seeded random LLaMA or Gemma 3 model of any shape as a GGUF file laid
// out as llama.cpp's tools write them, so speed can be measured on real model shapes
// (TinyLlama-1.1B by default, Gemma 3 270M with --arch gemma3) without downloading weights, and
// the same file can be run by nibble and by the peer runtimes side by side.
//
// The weights are random normal (std 0.02, norm weights 1.0), quantized row by row with nibble's
// llama.cpp-exact quantizers, in llama.cpp's type mix: matrices in the chosen type, the output
// head (output.weight for LLaMA; for Gemma the tied token_embd, which llama-quantize treats as
// the head) as llama-quantize would write it, the LLaMA token_embd in the chosen type, 1-D
// tensors F32. Values only have to be finite and plausibly scaled: speed does not depend on them.
//
// The file is streamed: write_gguf() takes every tensor's bytes at once, which for the F32 1.1B
// file is 4.4 GB, so this tool writes the same layout itself (header, KVs, tensor infos, each
// tensor's data padded to 32 bytes) one chunk of rows at a time, then re-opens the file with
// nibble's reader to check it.
#include <omp.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "../examples/run-model/cli_args.h"
#include "kernels/quantize.h"
#include "kernels/tensor_type.h"
#include "loaders/gguf_writer.h"
#include "loaders/model_file.h"
#include "tokenizer/vocabulary.h"

namespace {

using nibble::FileError;
using nibble::MetaType;
using nibble::MetaValue;
using nibble::Metadata;
using nibble::TensorType;

constexpr float kWeightStd = 0.02f;

struct Shape {
  int64_t dim = 2048, ffn = 5632, layers = 22, heads = 32, kv_heads = 4, vocab = 32000,
          ctx = 2048;
  int64_t head_dim = 0;  // 0: dim / heads
  // Gemma 3 only: sliding window of the local layers and the local/global pattern.
  int64_t window = 0, swa_pattern = 6;
};

// Gemma 3 270M's published text config (model-families.md B.1).
constexpr Shape kGemma3_270m{640, 2048, 18, 4, 1, 262144, 32768, 256, 512, 6};

// ---- Random numbers: a counter-based seed per row, so the file is the same whatever the
// thread count, and any row can be generated without the ones before it.

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed) {
    for (uint64_t& w : s_) w = seed = splitmix64(seed);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in (0, 1]: never 0, so log() below stays finite.
  float uniform_open0() { return static_cast<float>((next() >> 40) + 1) * 0x1.0p-24f; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Fills row with N(0, std^2) values (Box-Muller, both outputs used).
void normal_row(uint64_t seed, float std, float* row, int64_t n) {
  Xoshiro256 rng(seed);
  for (int64_t i = 0; i < n; i += 2) {
    const float r = std * std::sqrt(-2.0f * std::log(rng.uniform_open0()));
    const float a = 2.0f * std::numbers::pi_v<float> * rng.uniform_open0();
    row[i] = r * std::cos(a);
    if (i + 1 < n) row[i + 1] = r * std::sin(a);
  }
}

// One tensor to write: its shape and type, and how to make row r of it as floats.
struct TensorPlan {
  std::string name;
  TensorType type;
  std::vector<uint64_t> dims;  // innermost first
  bool ones = false;           // norm weights
  uint64_t nbytes() const {
    uint64_t rows = 1;
    for (size_t i = 1; i < dims.size(); ++i) rows *= dims[i];
    return rows * nibble::row_bytes(static_cast<uint32_t>(type), dims[0]);
  }
};

// Writes the file under a temporary name and renames it when complete, so an interrupted run
// never leaves something that looks like a (corrupt) model under the requested name. Rows are
// made and quantized a chunk at a time: only one chunk of a tensor is ever in memory.
void write_model(const std::string& path, const Metadata& meta,
                 const std::vector<TensorPlan>& tensors, uint64_t seed) {
  std::vector<nibble::GgufTensorDesc> descs;
  for (const TensorPlan& t : tensors) descs.push_back({t.name, t.type, t.dims});
  const std::string tmp = path + ".partial";
  std::vector<uint8_t> chunk;
  nibble::write_gguf_streamed(tmp, meta, descs, [&](size_t ti, const nibble::GgufDataSink& sink) {
    const TensorPlan& t = tensors[ti];
    const auto K = static_cast<int64_t>(t.dims[0]);
    const uint64_t rb = nibble::row_bytes(static_cast<uint32_t>(t.type), K);
    const auto rows = static_cast<int64_t>(t.nbytes() / rb);
    // Chunks of about 4M elements keep memory flat while giving each thread plenty of rows.
    const int64_t rows_per_chunk = std::max<int64_t>(1, (int64_t{4} << 20) / K);
    for (int64_t r0 = 0; r0 < rows; r0 += rows_per_chunk) {
      const int64_t nr = std::min(rows_per_chunk, rows - r0);
      chunk.resize(static_cast<size_t>(nr) * rb);
#pragma omp parallel
      {
        std::vector<float> row(static_cast<size_t>(K));  // one row of floats per thread
#pragma omp for schedule(static)
        for (int64_t r = 0; r < nr; ++r) {
          if (t.ones) {
            std::fill(row.begin(), row.end(), 1.0f);
          } else {
            normal_row(splitmix64(seed ^ splitmix64((uint64_t(ti) << 40) + uint64_t(r0 + r))),
                       kWeightStd, row.data(), K);
          }
          nibble::quantize_row(t.type, row.data(), K, chunk.data() + size_t(r) * rb);
        }
      }
      sink(chunk.data(), chunk.size());
    }
  });
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw FileError(path + ": cannot rename from " + tmp + ": " + std::strerror(errno));
  }
}

// A sentencepiece-style vocabulary with no real pieces: enough for nibble and llama.cpp to load
// the model and tokenize any text (through the byte tokens).
nibble::Vocabulary synthetic_vocabulary(int64_t n) {
  nibble::Vocabulary v;
  v.model = "llama";
  auto add = [&](std::string piece, float score, int32_t type) {
    v.tokens.push_back(std::move(piece));
    v.scores.push_back(score);
    v.types.push_back(type);
  };
  add("<unk>", 0.0f, nibble::kTokenUnknown);
  add("<s>", 0.0f, nibble::kTokenControl);
  add("</s>", 0.0f, nibble::kTokenControl);
  for (int b = 0; b < 256; ++b) {
    char piece[8];
    std::snprintf(piece, sizeof(piece), "<0x%02X>", b);
    add(piece, 0.0f, nibble::kTokenByte);
  }
  for (int64_t i = static_cast<int64_t>(v.tokens.size()); i < n; ++i) {
    add("\xE2\x96\x81w" + std::to_string(i), -static_cast<float>(i), nibble::kTokenNormal);
  }
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.add_bos = true;
  v.add_eos = false;
  return v;
}

// llama.cpp's enum llama_ftype for the whole-file types this tool writes.
uint32_t file_type_of(TensorType t) {
  switch (t) {
    case TensorType::F32:
      return 0;
    case TensorType::F16:
      return 1;
    case TensorType::Q4_0:
      return 2;
    case TensorType::Q8_0:
      return 7;
    default:
      throw cli::UsageError("--type: unsupported");
  }
}

TensorType parse_type(const std::string& s) {
  if (s == "Q4_0") return TensorType::Q4_0;
  if (s == "Q8_0") return TensorType::Q8_0;
  if (s == "F16") return TensorType::F16;
  if (s == "F32") return TensorType::F32;
  throw cli::UsageError("--type: expected Q4_0, Q8_0, F16 or F32, got '" + s + "'");
}

const char* kUsage =
    "usage: random-model OUT.gguf --type Q4_0|Q8_0|F16|F32 [--arch llama|gemma3]\n"
    "         [--shape tinyllama-1.1b|kjv|gemma3-270m|custom]\n"
    "         [--dim N --ffn N --layers N --heads N --kv-heads N --vocab N --ctx N]\n"
    "         [--head-dim N --window N --swa-pattern N] [--seed N] [--tokenizer tokenizer.model]\n"
    "Writes a seeded random LLaMA or Gemma 3 model (std 0.02 weights) as GGUF in llama.cpp's\n"
    "layout. Shapes: tinyllama-1.1b (the llama default: dim 2048, ffn 5632, 22 layers, 32/4 heads,\n"
    "vocab 32000, ctx 2048), kjv (dim 256, ffn 768, 8 layers, 8/4 heads, vocab 32000, ctx 256),\n"
    "gemma3-270m (the gemma3 default: dim 640, ffn 2048, 18 layers, 4/1 heads, head size 256,\n"
    "vocab 262144, ctx 32768, sliding window 512, pattern 6); the size flags override the shape's\n"
    "values. --head-dim (default dim / heads), --window (0: no local layers) and --swa-pattern\n"
    "(every Nth layer global) are Gemma 3's. Without --tokenizer a synthetic vocabulary is written.\n";

int run(int argc, char** argv) {
  std::string out, tokenizer_path, type_name, arch = "llama", shape_name;
  Shape shape;
  // Explicit size flags are applied after the preset, whatever their order on the line.
  std::vector<std::pair<std::string, int64_t>> overrides;
  uint64_t seed = 1;
  cli::Args args(argc, argv, 1);
  while (!args.done()) {
    const std::string a = args.next();
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--type") {
      type_name = args.value(a);
    } else if (a == "--arch") {
      arch = args.value(a);
      if (arch != "llama" && arch != "gemma3") {
        throw cli::UsageError("--arch: expected llama or gemma3, got '" + arch + "'");
      }
    } else if (a == "--shape") {
      shape_name = args.value(a);
      if (shape_name != "tinyllama-1.1b" && shape_name != "custom" && shape_name != "kjv" &&
          shape_name != "gemma3-270m") {
        throw cli::UsageError("--shape: expected tinyllama-1.1b, kjv, gemma3-270m or custom, got '" +
                              shape_name + "'");
      }
    } else if (a == "--dim" || a == "--ffn" || a == "--layers" || a == "--heads" ||
               a == "--kv-heads" || a == "--vocab" || a == "--ctx" || a == "--head-dim") {
      overrides.emplace_back(a, cli::parse_int(a, args.value(a), 1, int64_t{1} << 24));
    } else if (a == "--window" || a == "--swa-pattern") {
      overrides.emplace_back(a, cli::parse_int(a, args.value(a), 0, int64_t{1} << 24));
    } else if (a == "--seed") {
      seed = cli::parse_u64(a, args.value(a));
    } else if (a == "--tokenizer") {
      tokenizer_path = args.value(a);
    } else if (!a.empty() && a[0] == '-') {
      throw cli::UsageError("unknown flag '" + a + "'");
    } else if (out.empty()) {
      out = a;
    } else {
      throw cli::UsageError("unexpected argument '" + a + "'");
    }
  }
  if (out.empty()) throw cli::UsageError("no output file (usage: random-model OUT.gguf --type T)");
  if (type_name.empty()) throw cli::UsageError("--type is required (Q4_0, Q8_0, F16 or F32)");
  const TensorType type = parse_type(type_name);
  const bool gemma = arch == "gemma3";
  // The preset: the one named, else the architecture's own (custom means the default).
  if (shape_name == "kjv") {
    shape = Shape{256, 768, 8, 8, 4, 32000, 256};
  } else if (shape_name == "gemma3-270m" || (gemma && (shape_name.empty() || shape_name == "custom"))) {
    shape = kGemma3_270m;
  }
  if (shape_name == "gemma3-270m" && !gemma) throw cli::UsageError("--shape gemma3-270m needs --arch gemma3");
  bool vocab_given = false;
  for (const auto& [flag, v] : overrides) {
    if (flag == "--dim") shape.dim = v;
    if (flag == "--ffn") shape.ffn = v;
    if (flag == "--layers") shape.layers = v;
    if (flag == "--heads") shape.heads = v;
    if (flag == "--kv-heads") shape.kv_heads = v;
    if (flag == "--vocab") shape.vocab = v, vocab_given = true;
    if (flag == "--ctx") shape.ctx = v;
    if (flag == "--head-dim" || flag == "--window" || flag == "--swa-pattern") {
      if (!gemma) throw cli::UsageError(flag + " needs --arch gemma3");
      if (flag == "--head-dim") shape.head_dim = v;
      if (flag == "--window") shape.window = v;
      if (flag == "--swa-pattern") shape.swa_pattern = v;
    }
  }

  nibble::Vocabulary vocab;
  if (!tokenizer_path.empty()) {
    vocab = nibble::read_sentencepiece_model(tokenizer_path);
    if (vocab_given && shape.vocab != static_cast<int64_t>(vocab.size())) {
      throw cli::UsageError("--vocab " + std::to_string(shape.vocab) + " disagrees with " +
                            tokenizer_path + " (" + std::to_string(vocab.size()) + " pieces)");
    }
    shape.vocab = static_cast<int64_t>(vocab.size());
  } else {
    if (shape.vocab < 259) throw cli::UsageError("--vocab: needs at least 259 (3 special + 256 byte tokens)");
    vocab = synthetic_vocabulary(shape.vocab);
  }

  // Shape checks: the ones llama.cpp and nibble enforce at load, caught before writing gigabytes.
  const uint32_t blk = nibble::type_traits(type)->block_elems;
  if (shape.head_dim == 0) {
    if (shape.dim % shape.heads != 0 || (shape.dim / shape.heads) % 2 != 0)
      throw cli::UsageError("--dim must be a multiple of --heads with an even head size");
    shape.head_dim = shape.dim / shape.heads;
  } else if (shape.head_dim % 2 != 0) {
    throw cli::UsageError("--head-dim must be even");
  }
  if (shape.heads % shape.kv_heads != 0) throw cli::UsageError("--heads must be a multiple of --kv-heads");
  const int64_t q_dim = shape.heads * shape.head_dim;
  if (shape.dim % blk != 0 || shape.ffn % blk != 0 || q_dim % blk != 0) {
    throw cli::UsageError("--dim, --ffn and heads × head size must be multiples of " +
                          std::to_string(blk) + " for " + type_name);
  }

  // llama-quantize's mix: Q4_0 files keep output.weight at Q6_K (it falls back to Q8_0 when the
  // rows are not a whole number of 256-element super-blocks); nibble cannot write Q6_K until
  // quantize_row() learns it, so Q8_0 stands in. Other whole-file types use their own type.
  TensorType output_type = type;
  std::string output_note;
  if (type == TensorType::Q4_0) {
    if (nibble::can_quantize(TensorType::Q6_K) && shape.dim % 256 == 0) {
      output_type = TensorType::Q6_K;
      output_note = "Q6_K (as llama-quantize writes Q4_0 files)";
    } else {
      output_type = TensorType::Q8_0;
      output_note = nibble::can_quantize(TensorType::Q6_K)
                        ? "Q8_0 (dim is not a multiple of 256, llama-quantize's fallback)"
                        : "Q8_0 (llama-quantize writes Q6_K; nibble cannot quantize Q6_K yet)";
    }
  } else {
    output_note = std::string(nibble::type_traits(type)->name);
  }

  const uint64_t dim = shape.dim, ffn = shape.ffn, nv = shape.vocab;
  const uint64_t hd = shape.head_dim, qd = q_dim, kv_dim = hd * shape.kv_heads;
  std::vector<TensorPlan> tensors;
  // Gemma's head is tied to token_embd, which llama-quantize then stores as it would the head.
  tensors.push_back({"token_embd.weight", gemma ? output_type : type, {dim, nv}});
  for (int64_t l = 0; l < shape.layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    tensors.push_back({p + "attn_norm.weight", TensorType::F32, {dim}, true});
    tensors.push_back({p + "attn_q.weight", type, {dim, qd}});
    tensors.push_back({p + "attn_k.weight", type, {dim, kv_dim}});
    tensors.push_back({p + "attn_v.weight", type, {dim, kv_dim}});
    if (gemma) {
      tensors.push_back({p + "attn_q_norm.weight", TensorType::F32, {hd}, true});
      tensors.push_back({p + "attn_k_norm.weight", TensorType::F32, {hd}, true});
    }
    tensors.push_back({p + "attn_output.weight", type, {qd, dim}});
    if (gemma) tensors.push_back({p + "post_attention_norm.weight", TensorType::F32, {dim}, true});
    tensors.push_back({p + "ffn_norm.weight", TensorType::F32, {dim}, true});
    tensors.push_back({p + "ffn_gate.weight", type, {dim, ffn}});
    tensors.push_back({p + "ffn_up.weight", type, {dim, ffn}});
    tensors.push_back({p + "ffn_down.weight", type, {ffn, dim}});
    if (gemma) tensors.push_back({p + "post_ffw_norm.weight", TensorType::F32, {dim}, true});
  }
  tensors.push_back({"output_norm.weight", TensorType::F32, {dim}, true});
  // LLaMA untied, as llama.cpp's converters write LLaMA models with their own classifier.
  if (!gemma) tensors.push_back({"output.weight", output_type, {dim, nv}});

  Metadata meta;
  const std::string k = arch + ".";
  meta.set_string("general.architecture", arch);
  meta.set_string("general.name", "random-" + arch + "-" + std::to_string(shape.dim) + "x" +
                                      std::to_string(shape.layers) + "-seed" + std::to_string(seed));
  meta.set_uint("general.file_type", file_type_of(type));
  if (type == TensorType::Q4_0 || type == TensorType::Q8_0)
    meta.set_uint("general.quantization_version", 2);
  if (!gemma) meta.set_uint(k + "vocab_size", nv);
  meta.set_uint(k + "context_length", static_cast<uint64_t>(shape.ctx));
  meta.set_uint(k + "embedding_length", dim);
  meta.set_uint(k + "block_count", static_cast<uint64_t>(shape.layers));
  meta.set_uint(k + "feed_forward_length", ffn);
  meta.set_uint(k + "attention.head_count", static_cast<uint64_t>(shape.heads));
  meta.set_uint(k + "attention.head_count_kv", static_cast<uint64_t>(shape.kv_heads));
  if (gemma) {
    // As the Gemma 3 converter writes them: the global layers' rope base, the head size as
    // its own key, and the window (the pattern only when it is not the default 6).
    meta.set_uint(k + "attention.key_length", hd);
    meta.set_uint(k + "attention.value_length", hd);
    meta.set_float(k + "attention.layer_norm_rms_epsilon", 1e-6);
    meta.set_float(k + "rope.freq_base", 1e6);
    if (shape.window > 0) meta.set_uint(k + "attention.sliding_window", static_cast<uint64_t>(shape.window));
    if (shape.swa_pattern != 6)
      meta.set_uint(k + "attention.sliding_window_pattern", static_cast<uint64_t>(shape.swa_pattern));
  } else {
    meta.set_uint(k + "rope.dimension_count", hd);
    meta.set_float(k + "attention.layer_norm_rms_epsilon", 1e-5);
    meta.set_float(k + "rope.freq_base", 10000.0);
  }
  nibble::write_vocabulary(vocab, meta);

  uint64_t params = 0, bytes = 0;
  for (const TensorPlan& t : tensors) {
    uint64_t n = 1;
    for (uint64_t d : t.dims) n *= d;
    params += n;
    bytes += t.nbytes();
  }
  std::fprintf(stderr,
               "random-model: %s: %s %s, dim %lld, ffn %lld, %lld layers, %lld/%lld heads of %lld, "
               "vocab %llu, ctx %lld, seed %llu\n  %.3f B params, %.1f MiB of tensors; token_embd %s, "
               "%s; vocabulary: %s\n",
               out.c_str(), arch.c_str(), type_name.c_str(), (long long)shape.dim, (long long)shape.ffn,
               (long long)shape.layers, (long long)shape.heads, (long long)shape.kv_heads,
               (long long)shape.head_dim, (unsigned long long)nv, (long long)shape.ctx,
               (unsigned long long)seed, double(params) / 1e9, double(bytes) / (1 << 20),
               gemma ? output_note.c_str() : type_name.c_str(),
               gemma ? "the head tied to it" : ("output.weight " + output_note).c_str(),
               tokenizer_path.empty() ? "synthetic" : tokenizer_path.c_str());
  const double t0 = omp_get_wtime();
  write_model(out, meta, tensors, seed);
  std::fprintf(stderr, "random-model: wrote %s in %.1f s\n", out.c_str(), omp_get_wtime() - t0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const cli::UsageError& e) {
    std::fprintf(stderr, "random-model: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "random-model: error: %s\n", e.what());
  }
  return 1;
}
