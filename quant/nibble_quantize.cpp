// quantize-model's engine (see nibble_quantize.h). One tensor at a time: dequantize the source
// rows to floats, quantize them to the recipe's type (rows in parallel), measure the error if
// asked, pack linear weights into the kernels' layout for nibble files, and hand the bytes to
// the streaming writer.
#include "quant/nibble_quantize.h"

#include <omp.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>

#include "kernels/quantize.h"
#include "kernels/repack.h"
#include "loaders/gguf_writer.h"
#include "loaders/nibble_format.h"
#include "loaders/nibble_writer.h"
#include "quant/float_weights.h"
#include "quant/gguf_quantize.h"
#include "quant/gptq.h"
#include "quant/smoothquant.h"
#include "quant/hf_checkpoint.h"
#include "quant/quantize_internal.h"
#include "quant/sha256.h"
#include "tokenizer/vocabulary.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;

constexpr const char* kToolVersion = "nibble 0.1.0";

struct NibbleRecipe {
  RecipeInfo info;
  TensorType matrices;   // every 2-D weight but the embedding table and output head
  TensorType embedding;  // token_embd.weight and output.weight
};

const std::vector<NibbleRecipe>& recipe_table() {
  static const std::vector<NibbleRecipe> r = {
      {{"q8", ".q8", "Q8_0: int8, blocks of 32 with an f16 scale (8.5 bits/weight), kernel-packed"},
       TensorType::Q8_0, TensorType::Q8_0},
      {{"q8c", ".q8", "Q8_C: int8 per output channel, one f32 scale per row (~8 bits/weight)"},
       TensorType::Q8_C, TensorType::Q8_C},
      {{"q4", ".q4", "Q4_0: int4 symmetric, blocks of 32 (4.5 bits/weight), kernel-packed"},
       TensorType::Q4_0, TensorType::Q4_0},
      {{"q4-g64", ".q4", "Q4_G64: int4 symmetric, groups of 64 (4.25 bits/weight)"},
       TensorType::Q4_G64, TensorType::Q4_G64},
      {{"q4-g128", ".q4", "Q4_G128: int4 symmetric, groups of 128 (4.125 bits/weight)"},
       TensorType::Q4_G128, TensorType::Q4_G128},
      {{"q4a", ".q4", "Q4_1: int4 asymmetric (scale and minimum), blocks of 32 (5 bits/weight)"},
       TensorType::Q4_1, TensorType::Q4_1},
      {{"mixed", ".q4", "Q4_0 weights (kernel-packed); embeddings and output head Q8_0"},
       TensorType::Q4_0, TensorType::Q8_0},
      {{"f16", ".f16", "F16: IEEE half (16 bits/weight)"}, TensorType::F16, TensorType::F16},
      {{"auto", ".q4", "per-tensor types (Q3_K, Q4_0, Q4_K, Q5_K, Q6_K, Q8_0) chosen by measured sensitivity under "
                       "--target-bpw or --target-size; needs --calib"},
       TensorType::Q4_0, TensorType::Q4_0},
      {{"q8o", ".q8", "LLM.int8()-style: input channels whose calibration |x| exceeds "
                      "--outlier-threshold (6) stay F16, the rest Q8_C; needs --calib"},
       TensorType::Q8_C, TensorType::Q8_C},
      {{"q8a8", ".q8", "W8A8: Q8_C weights after SmoothQuant (--smooth), inputs INT8 with a static "
                       "calibrated scale per tensor (--act-calib); needs --calib"},
       TensorType::Q8_C, TensorType::Q8_C},
  };
  return r;
}

const NibbleRecipe& find_recipe(const std::string& name) {
  for (const NibbleRecipe& r : recipe_table()) {
    if (name == r.info.name) return r;
  }
  std::string known;
  for (const NibbleRecipe& r : recipe_table()) known += std::string(known.empty() ? "" : ", ") + r.info.name;
  throw std::invalid_argument("unknown recipe '" + name + "' (nibble files: " + known +
                              "; GGUF recipes such as Q4_0 need an OUT ending in .gguf)");
}

// The next smaller group of the same kind, for rows that are not whole groups.
TensorType fallback(TensorType t) {
  switch (t) {
    case TensorType::Q4_G128:
      return TensorType::Q4_G64;
    case TensorType::Q4_G64:
      return TensorType::Q4_0;
    default:
      return TensorType::F16;
  }
}

bool is_embedding_or_head(const std::string& name) {
  return name == "token_embd.weight" || name == "output.weight";
}

// Source rows in the plain layout: a packed tensor (a nibble file as input) is unpacked first.
const uint8_t* plain_bytes(const TensorInfo& t, std::vector<uint8_t>& scratch) {
  if (t.layout == 0) return t.data;
  scratch.resize(t.n_rows() * row_bytes(static_cast<uint32_t>(t.type), t.row_length()));
  nbl::unpack_packed4(t.type, t.dims, t.data, scratch.data());
  return scratch.data();
}

// Quantizes t to `type` (plain layout) into out; fills st (error statistics when measure).
// `given`: the quantized rows made elsewhere (GPTQ); they are only measured.
void quantize_tensor(const std::string& src_path, const TensorInfo& t, TensorType type,
                     bool measure, std::vector<uint8_t>& out, TensorQuantStats& st,
                     const std::vector<uint8_t>* given = nullptr) {
  const std::string where = src_path + ": tensor '" + t.name + "'";
  const uint64_t K = t.row_length(), rows = t.n_rows();
  const uint64_t in_row = row_bytes(static_cast<uint32_t>(t.type), K);
  const uint64_t out_row = row_bytes(static_cast<uint32_t>(type), K);
  if (!can_dequantize(t.type)) {
    throw FileError(where + " has type " + type_name(static_cast<uint32_t>(t.type)) +
                    ", which cannot be re-quantized");
  }
  if (in_row == 0 || out_row == 0) {
    throw FileError(where + ": row length " + std::to_string(K) + " does not fit type " +
                    type_name(static_cast<uint32_t>(type)));
  }
  if (type != t.type && !can_quantize(type)) {
    throw std::invalid_argument("cannot quantize to " + type_name(static_cast<uint32_t>(type)) + " yet");
  }
  std::vector<uint8_t> unpacked;
  const uint8_t* src = plain_bytes(t, unpacked);
  out.resize(rows * out_row);
  st.name = t.name;
  st.src_type = t.type;
  st.type = type;
  st.dims = t.dims;
  st.n_elements = t.n_elements();
  st.copied = type == t.type && !given;
  if (st.copied) std::copy(src, src + rows * in_row, out.begin());
  if (given) {
    if (given->size() != out.size()) throw std::logic_error(where + ": given rows have the wrong size");
    std::copy(given->begin(), given->end(), out.begin());
  }
  if ((st.copied || given) && !measure) return;

  // Per-row sums, added up in row order afterwards: the report is the same for any thread count.
  std::vector<double> err_sq(measure ? rows : 0), x_sq(measure ? rows : 0), y_sq(measure ? rows : 0),
      xy(measure ? rows : 0), max_err(measure ? rows : 0);
  const auto k = static_cast<int64_t>(K);
  // Nothing may leave an OpenMP region by exception: the first failure is kept and rethrown.
  std::string error;
#pragma omp parallel
  {
    std::vector<float> x(K), y(measure ? K : 0);
#pragma omp for schedule(dynamic, 16)
    for (int64_t r = 0; r < static_cast<int64_t>(rows); ++r) {
      try {
      dequantize_row(t.type, src + r * in_row, k, x.data());
      uint8_t* dst = out.data() + r * out_row;
      if (!st.copied && !given) quantize_row(type, x.data(), k, dst);
      if (!measure) continue;
      dequantize_row(type, dst, k, y.data());
      double e2 = 0, xx = 0, yy = 0, xyv = 0, m = 0;
      for (int64_t j = 0; j < k; ++j) {
        const double a = x[j], b = y[j], e = a - b;
        e2 += e * e;
        xx += a * a;
        yy += b * b;
        xyv += a * b;
        m = std::max(m, std::fabs(e));
      }
      err_sq[r] = e2;
      x_sq[r] = xx;
      y_sq[r] = yy;
      xy[r] = xyv;
      max_err[r] = m;
      } catch (const std::exception& e) {
#pragma omp critical(nibble_quantize_error)
        if (error.empty()) error = e.what();
      }
    }
  }
  if (!error.empty()) throw std::invalid_argument(where + ": " + error);
  if (!measure) return;
  double e2 = 0, xx = 0, yy = 0, xyv = 0, m = 0;
  for (uint64_t r = 0; r < rows; ++r) {
    e2 += err_sq[r];
    xx += x_sq[r];
    yy += y_sq[r];
    xyv += xy[r];
    m = std::max(m, max_err[r]);
  }
  st.sum_sq = xx;
  st.sum_err_sq = e2;
  st.mse = e2 / static_cast<double>(st.n_elements);
  st.snr_db = e2 > 0 ? 10.0 * std::log10(xx / e2) : std::numeric_limits<double>::infinity();
  st.cosine = xx > 0 && yy > 0 ? xyv / (std::sqrt(xx) * std::sqrt(yy)) : (xx == yy ? 1.0 : 0.0);
  st.max_abs_err = m;
}

// The output's metadata: the source's (hyperparameters, tokenizer, chat template) minus what
// describes the source file itself.
Metadata output_metadata(const ModelFile& src) {
  Metadata m;
  for (const auto& [key, value] : src.meta.entries()) {
    if (key == "general.file_type" || key == "general.quantization_version" ||
        key == "general.alignment" || key.rfind("nibble.", 0) == 0) {
      continue;
    }
    m.set(key, value);
  }
  return m;
}

// SHA-256 of the input: the file, or a checkpoint directory's files in a fixed order.
std::string source_sha256(const std::string& in) {
  std::error_code ec;
  if (!fs::is_directory(in, ec)) return sha256_file_hex(in);
  std::vector<std::string> files = {(fs::path(in) / "config.json").string()};
  std::vector<std::string> shards;
  for (const auto& e : fs::directory_iterator(in, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".safetensors") shards.push_back(e.path().string());
  }
  std::sort(shards.begin(), shards.end());
  files.insert(files.end(), shards.begin(), shards.end());
  if (fs::is_regular_file(fs::path(in) / "tokenizer.model", ec)) {
    files.push_back((fs::path(in) / "tokenizer.model").string());
  }
  Sha256 h;
  std::vector<uint8_t> buf(1 << 20);
  for (const std::string& f : files) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> fp(std::fopen(f.c_str(), "rb"), &std::fclose);
    if (!fp) throw FileError(f + ": cannot open to hash it");
    size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), fp.get())) > 0) h.update(buf.data(), n);
  }
  return h.finish_hex();
}

void add_totals(QuantizeResult& r) {
  double e2 = 0, xx = 0, n = 0, m = 0;
  for (const TensorQuantStats& s : r.tensors) {
    e2 += s.sum_err_sq;
    xx += s.sum_sq;
    n += static_cast<double>(s.n_elements);
    m = std::max(m, s.max_abs_err);
  }
  r.mse = n > 0 ? e2 / n : 0;
  r.snr_db = e2 > 0 ? 10.0 * std::log10(xx / e2) : std::numeric_limits<double>::infinity();
  r.max_abs_err = m;
}

// Bytes the file takes besides tensor data (header, metadata, directory, alignment), found by
// writing it with zero-filled tensors of these types.
uint64_t file_overhead(const ModelFile& src, const Metadata& meta, const std::vector<TensorType>& types,
                       const std::vector<uint32_t>& layouts, const std::string& scratch) {
  std::vector<NibbleTensorDesc> descs;
  uint64_t data = 0;
  for (size_t k = 0; k < src.tensors.size(); ++k) {
    descs.push_back({src.tensors[k].name, types[k], layouts[k], src.tensors[k].dims});
    data += nbl::tensor_bytes(static_cast<uint32_t>(types[k]), layouts[k], src.tensors[k].dims, nullptr);
  }
  std::vector<uint8_t> zeros;
  write_nibble_streamed(scratch, meta, descs, [&](size_t k, const std::function<void(const void*, size_t)>& sink) {
    zeros.assign(nbl::tensor_bytes(static_cast<uint32_t>(types[k]), layouts[k], src.tensors[k].dims, nullptr), 0);
    sink(zeros.data(), zeros.size());
  });
  std::error_code ec;
  const uint64_t size = fs::file_size(scratch, ec);
  fs::remove(scratch, ec);
  return size > data ? size - data : 0;
}

// Recipe auto: chooses each 2-D tensor's type from res.sensitivity under the budget and records
// the choice in meta. A file-size budget is met exactly: the overhead is measured with the
// chosen types and the allocation redone with the excess taken off until the file fits.
void allocate_types(const ModelFile& src, const std::string& out, Metadata& meta, const QuantizeOptions& o,
                    std::vector<TensorType>& types, std::vector<uint32_t>& layouts, QuantizeResult& res) {
  std::map<std::string, size_t> index;
  uint64_t fixed = 0, n_params = 0;  // bytes of the tensors not allocated (1-D, F32)
  for (size_t k = 0; k < src.tensors.size(); ++k) {
    index[src.tensors[k].name] = k;
    n_params += src.tensors[k].n_elements();
    if (src.tensors[k].dims.size() != 2) fixed += row_bytes(static_cast<uint32_t>(types[k]), src.tensors[k].row_length()) * src.tensors[k].n_rows();
  }
  // Each candidate's bytes as the file will hold them (its layout included).
  for (TensorSensitivity& t : res.sensitivity) {
    const TensorInfo& info = src.tensors[index.at(t.name)];
    for (AllocCandidate& c : t.candidates) {
      const uint32_t layout = stores_packed(info, c.type) ? nbl::kLayoutPacked : nbl::kLayoutPlain;
      c.bytes = nbl::tensor_bytes(static_cast<uint32_t>(c.type), layout, info.dims, nullptr);
    }
  }
  std::vector<std::vector<AllocCandidate>> per_tensor;
  for (const TensorSensitivity& t : res.sensitivity) per_tensor.push_back(t.candidates);
  auto apply = [&](const AllocResult& a) {
    for (size_t i = 0; i < res.sensitivity.size(); ++i) {
      const size_t k = index.at(res.sensitivity[i].name);
      types[k] = res.sensitivity[i].candidates[a.choice[i]].type;
      layouts[k] = stores_packed(src.tensors[k], types[k]) ? nbl::kLayoutPacked : nbl::kLayoutPlain;
    }
  };
  std::map<std::string, int> histogram;
  auto describe = [&](const AllocResult& a, uint64_t budget) {
    histogram.clear();
    for (size_t i = 0; i < a.choice.size(); ++i) ++histogram[type_name(static_cast<uint32_t>(res.sensitivity[i].candidates[a.choice[i]].type))];
    std::string d = o.target_size > 0 ? "target " + std::to_string(o.target_size) + " file bytes"
                                      : "target " + std::to_string(o.target_bpw) + " bits/weight";
    d += ", tensor budget " + std::to_string(budget) + ":";
    for (const auto& [name, n] : histogram) d += " " + name + " x" + std::to_string(n);
    char buf[64];
    std::snprintf(buf, sizeof buf, "; sum dKL %.6f", a.cost);
    return d + buf;
  };
  if (o.target_bpw > 0) {
    const auto total = static_cast<uint64_t>(o.target_bpw * static_cast<double>(n_params) / 8.0);
    if (total <= fixed) throw std::invalid_argument("--target-bpw leaves no room for the 2-D tensors");
    const AllocResult a = allocate_bits(per_tensor, total - fixed);
    apply(a);
    res.allocation = a.choice;
    res.allocation_cost = a.cost;
    res.allocation_summary = describe(a, total - fixed);
    meta.set_string("nibble.quantization.allocation", res.allocation_summary);
    return;
  }
  // The recorded description may grow by a few bytes once the final choice is known.
  constexpr uint64_t kSlack = 256;
  meta.set_string("nibble.quantization.allocation", std::string(200, ' '));
  uint64_t overhead = file_overhead(src, meta, types, layouts, out + ".size-probe");
  for (int attempt = 0; attempt < 6; ++attempt) {
    if (o.target_size <= overhead + fixed + kSlack) {
      throw std::invalid_argument("--target-size " + std::to_string(o.target_size) + " is below the file's " +
                                  "fixed part (" + std::to_string(overhead + fixed + kSlack) + " bytes)");
    }
    const uint64_t budget = o.target_size - overhead - fixed - kSlack;
    const AllocResult a = allocate_bits(per_tensor, budget);
    apply(a);
    res.allocation_summary = describe(a, budget);
    meta.set_string("nibble.quantization.allocation", res.allocation_summary);
    const uint64_t again = file_overhead(src, meta, types, layouts, out + ".size-probe");
    res.allocation = a.choice;
    res.allocation_cost = a.cost;
    if (again <= overhead) return;
    overhead = again;
  }
  throw std::logic_error("bit allocation: the file size did not settle");
}

}  // namespace

const std::vector<RecipeInfo>& nibble_recipes() {
  static const std::vector<RecipeInfo> r = [] {
    std::vector<RecipeInfo> v;
    for (const NibbleRecipe& n : recipe_table()) v.push_back(n.info);
    return v;
  }();
  return r;
}

const std::vector<RecipeInfo>& all_recipes() {
  static const std::vector<RecipeInfo> r = [] {
    std::vector<RecipeInfo> v = nibble_recipes();
    for (const GgufRecipe& g : gguf_recipes()) v.push_back({g.name, ".gguf", g.description});
    return v;
  }();
  return r;
}

bool is_gguf_output(const std::string& out) {
  if (out.size() < 5) return false;
  std::string ext = out.substr(out.size() - 5);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".gguf";
}

ModelFile open_quant_source(const std::string& in, const std::string& tokenizer_path) {
  if (is_hf_checkpoint(in)) return read_hf_checkpoint(in, tokenizer_path);
  ModelFile src = open_model_file(in);
  if (!tokenizer_path.empty()) {
    write_vocabulary(read_sentencepiece_model(tokenizer_path), src.meta);
  } else if (!src.meta.has("tokenizer.ggml.tokens")) {
    throw FileError(in + ": the file has no tokenizer; pass one with --tokenizer tokenizer.model");
  }
  return src;
}

TensorType recipe_tensor_type(const std::string& recipe, const TensorInfo& t) {
  const NibbleRecipe& r = find_recipe(recipe);
  if (t.dims.size() < 2) return TensorType::F32;
  TensorType type = is_embedding_or_head(t.name) ? r.embedding : r.matrices;
  while (type != TensorType::F16 && row_bytes(static_cast<uint32_t>(type), t.row_length()) == 0) {
    type = fallback(type);
  }
  return type;
}

bool stores_packed(const TensorInfo& t, TensorType type) {
  // The embedding table is read a row at a time (and is the head of tied models, bound from
  // the same bytes): it keeps the plain layout.
  return t.name != "token_embd.weight" && nbl::packed_layout_allowed(type, t.dims);
}

namespace detail {

QuantizeResult quantize_model_to(const std::string& in, const std::string& out,
                                 const std::string& recipe, const QuantizeOptions& options,
                                 bool gguf) {
  // Recipe first: a typo should not cost a model load.
  if (gguf && !is_gguf_recipe(recipe)) {
    bool nibble_name = false;
    for (const RecipeInfo& r : nibble_recipes()) nibble_name = nibble_name || recipe == r.name;
    if (nibble_name) {
      throw std::invalid_argument("recipe '" + recipe + "' writes nibble's own format; give OUT "
                                  "another extension (e.g. .q4), or use a GGUF recipe (Q4_0, Q8_0, …) for .gguf");
    }
    gguf_recipe_file_type(recipe);  // throws: unknown, listing the GGUF recipes
  }
  if (!gguf) {
    if (is_gguf_recipe(recipe)) {
      throw std::invalid_argument("recipe '" + recipe + "' is a GGUF type: OUT must end in .gguf "
                                  "(nibble files take q8, q4, q4-g128, …)");
    }
    find_recipe(recipe);
  }

  // What the recipe and options need, checked before anything is loaded.
  const bool calibrated = !options.calib.text_path.empty();
  if (!calibrated && (options.awq || options.gptq)) {
    throw std::invalid_argument(std::string(options.awq ? "AWQ" : "GPTQ") +
                                " needs a calibration text (--calib FILE)");
  }
  const bool static_act = !gguf && recipe == "q8a8";
  const bool outliers = !gguf && recipe == "q8o";
  const bool allocate = !gguf && recipe == "auto";
  if (allocate != (options.target_bpw > 0 || options.target_size > 0)) {
    throw std::invalid_argument(allocate ? "recipe 'auto' needs a budget (--target-bpw B or --target-size BYTES)"
                                         : "a size target (--target-bpw, --target-size) needs recipe 'auto'");
  }
  if (options.target_bpw > 0 && options.target_size > 0) {
    throw std::invalid_argument("give --target-bpw or --target-size, not both");
  }
  if ((static_act || outliers || allocate) && !calibrated) {
    throw std::invalid_argument("recipe '" + recipe + "' is calibrated: it needs a calibration text "
                                "(--calib FILE)");
  }
  const ModelFile src = open_quant_source(in, options.tokenizer_path);
  QuantizeResult res;
  res.container = gguf ? "gguf" : "nibble";
  res.recipe = recipe;
  res.measured = options.measure;

  Metadata meta = output_metadata(src);
  if (gguf) {
    meta.set_uint("general.file_type", gguf_recipe_file_type(recipe));
    meta.set_uint("general.quantization_version", 2);
    if (!meta.has("general.name")) meta.set_string("general.name", "nibble " + recipe);
  } else {
    meta.set_string("nibble.quantization.recipe", recipe);
    meta.set_string("nibble.source.file", fs::path(in).filename().string().empty()
                                              ? fs::path(in).parent_path().filename().string()
                                              : fs::path(in).filename().string());
    meta.set_string("nibble.source.sha256", source_sha256(in));
    meta.set_string("nibble.tool.version", kToolVersion);
  }

  // Types and layouts are known before any data: the writer lays out the file from them.
  std::vector<TensorType> types;
  std::vector<uint32_t> layouts;
  if (gguf) types = gguf_recipe_types(recipe, src.tensors, gguf_mix_info(src));
  for (size_t k = 0; k < src.tensors.size(); ++k) {
    const TensorInfo& t = src.tensors[k];
    if (!gguf) types.push_back(recipe_tensor_type(recipe, t));
    layouts.push_back(!gguf && stores_packed(t, types[k]) ? nbl::kLayoutPacked : nbl::kLayoutPlain);
  }
  res.tensors.resize(src.tensors.size());

  // Calibrated methods: the full-precision model runs over the calibration text, then the
  // methods rewrite float copies of the weights, which the quantizers read instead of src.
  CalibrationData cal;
  ModelFile rewritten;
  const ModelFile* qsrc = &src;
  std::vector<double> rtn_err(src.tensors.size(), -1.0);
  // Index k counts qsrc's tensors (src's, plus q8o's outlier parts once they exist).
  auto linear_stats = [&](size_t k) -> const InputStats* {
    const InputStats* st = calibrated ? cal.for_tensor(qsrc->tensors[k].name) : nullptr;
    const TensorType t = types[k];
    const bool integer = t != TensorType::F32 && t != TensorType::F16 && t != TensorType::BF16;
    return st && integer && !st->gram.empty() &&
                   static_cast<int64_t>(qsrc->tensors[k].row_length()) == st->dim
               ? st
               : nullptr;
  };
  if (calibrated) {
    CalibrationOptions co = options.calib;
    co.gram = options.awq || options.gptq || options.measure;  // q8a8, q8o, auto: max |x| only
    cal = calibrate(src, co);
    res.calib_seconds = cal.seconds;
    res.calib_bytes = cal.bytes;
    std::map<std::string, TensorType> type_by_name;
    for (size_t k = 0; k < src.tensors.size(); ++k) type_by_name[src.tensors[k].name] = types[k];
    const TypeOfTensor type_of = [&](const std::string& name) {
      const auto it = type_by_name.find(name);
      return it == type_by_name.end() ? TensorType::F32 : it->second;
    };
    if (options.measure) {
      for (size_t k = 0; k < src.tensors.size(); ++k) {
        const InputStats* st = linear_stats(k);
        if (!st) continue;
        const FloatTensor w = load_float_tensor(src, src.tensors[k].name);
        rtn_err[k] = relative_output_error(w.v.data(), w.rows, w.cols, types[k], nullptr, st->gram.data());
      }
    }
    std::string methods;
    if (allocate) {
      SensitivityOptions so;
      so.candidates = default_allocation_candidates();
      so.n_sequences = options.sensitivity_sequences;
      so.n_threads = options.calib.n_threads;
      res.sensitivity = measure_sensitivity(src, cal, so);
      allocate_types(src, out, meta, options, types, layouts, res);
      methods += "auto";
    }
    FloatTensors fw;
    if (static_act) {
      const SmoothReport sr = apply_smoothquant(src, cal, fw, options.smooth_alpha);
      char buf[96];
      std::snprintf(buf, sizeof buf, "smoothquant(alpha %.2f, max|x| %.1f -> %.1f)+act-%s",
                    static_cast<double>(options.smooth_alpha), static_cast<double>(sr.max_abs_before),
                    static_cast<double>(sr.max_abs_after), to_string(options.act_calib).c_str());
      methods += buf;
    }
    if (options.awq) {
      AwqOptions ao = options.awq_options;
      // GPTQ compensates the rounding of every weight; a clipped weight would be a moved target.
      ao.clip = ao.clip && !options.gptq;
      res.awq = apply_awq(src, cal, fw, type_of, ao);
      methods += methods.empty() ? "awq" : "+awq";
    }
    if (static_act) {
      // The scales are set on what the quantized layers will read: the smoothed model's inputs,
      // from a second pass that collects their histograms.
      CalibrationOptions ho = options.calib;
      ho.gram = false;
      ho.histograms = true;
      const CalibrationData h = calibrate(with_float_tensors(src, fw), ho);
      res.calib_seconds += h.seconds;
      for (size_t k = 0; k < src.tensors.size(); ++k) {
        const InputStats* st = h.for_tensor(src.tensors[k].name);
        if (!st || !st->hist || types[k] == TensorType::F32 || types[k] == TensorType::F16) continue;
        const float threshold = choose_threshold(*st->hist, options.act_calib);
        const float step = threshold > 0.0f ? threshold / 127.0f : 1.0f;
        meta.set_float("nibble.act_scale." + src.tensors[k].name, step);
        res.act_scales.emplace_back(src.tensors[k].name, step);
      }
    }
    // q8o: input channels whose calibration |x| exceeds the threshold leave the int8 product;
    // their weight columns go to an F16 tensor "NAME.outliers" right after NAME.
    std::vector<std::pair<std::string, FloatTensor>> outlier_parts;
    std::vector<std::pair<std::string, std::vector<int32_t>>> outlier_cols;
    int64_t n_outlier_cols = 0;
    if (outliers) {
      for (size_t k = 0; k < src.tensors.size(); ++k) {
        const TensorInfo& t = src.tensors[k];
        const InputStats* st = cal.for_tensor(t.name);
        if (!st || types[k] == TensorType::F32 || types[k] == TensorType::F16) continue;
        std::vector<int32_t> cols;
        for (int64_t j = 0; j < st->dim; ++j) {
          if (st->max_abs[j] > options.outlier_threshold) cols.push_back(static_cast<int32_t>(j));
        }
        if (cols.empty()) continue;
        FloatTensor& w = float_tensor(fw, src, t.name);
        FloatTensor part;
        part.rows = w.rows;
        part.cols = static_cast<int64_t>(cols.size());
        part.v.resize(static_cast<size_t>(part.rows * part.cols));
        for (int64_t r = 0; r < w.rows; ++r) {
          for (size_t c = 0; c < cols.size(); ++c) {
            part.row(r)[c] = w.row(r)[cols[c]];
            w.row(r)[cols[c]] = 0.0f;
          }
        }
        n_outlier_cols += part.cols;
        meta.set_int_array("nibble.outlier_cols." + t.name, cols);
        outlier_parts.emplace_back(t.name, std::move(part));
        outlier_cols.emplace_back(t.name, std::move(cols));
      }
      char buf[96];
      std::snprintf(buf, sizeof buf, "outliers(|x| > %g: %lld input channels in F16)",
                    static_cast<double>(options.outlier_threshold), static_cast<long long>(n_outlier_cols));
      methods += methods.empty() ? buf : std::string("+") + buf;
    }
    if (options.gptq) methods += methods.empty() ? "gptq" : "+gptq";
    rewritten = with_float_tensors(src, std::move(fw));
    for (auto& [name, part] : outlier_parts) add_float_tensor_after(rewritten, name, name + ".outliers", std::move(part));
    qsrc = &rewritten;
    res.outlier_cols = std::move(outlier_cols);
    // Per-tensor vectors follow qsrc's tensors from here on.
    if (!outlier_parts.empty()) {
      std::map<std::string, size_t> at;
      for (size_t k = 0; k < src.tensors.size(); ++k) at[src.tensors[k].name] = k;
      std::vector<TensorType> t2;
      std::vector<uint32_t> l2;
      std::vector<double> e2;
      for (const TensorInfo& t : qsrc->tensors) {
        const auto it = at.find(t.name);
        t2.push_back(it == at.end() ? TensorType::F16 : types[it->second]);
        l2.push_back(it == at.end() ? nbl::kLayoutPlain : layouts[it->second]);
        e2.push_back(it == at.end() ? -1.0 : rtn_err[it->second]);
      }
      types = std::move(t2);
      layouts = std::move(l2);
      rtn_err = std::move(e2);
      res.tensors.assign(qsrc->tensors.size(), TensorQuantStats{});
    }
    res.calibration = (methods.empty() ? std::string("calibrated") : methods) + " on " +
                      fs::path(options.calib.text_path).filename().string() + ", " +
                      std::to_string(cal.sequences.size()) + " x " + std::to_string(cal.n_ctx) +
                      " tokens, seed " + std::to_string(options.calib.seed);
    meta.set_string("nibble.quantization.calibration", res.calibration);
  }

  // Produces tensor k's bytes as they go into the file.
  std::vector<uint8_t> plain;
  auto produce = [&](size_t k, const std::function<void(const void*, size_t)>& sink) {
    const TensorInfo& t = qsrc->tensors[k];
    TensorQuantStats& st = res.tensors[k];
    const InputStats* ls = linear_stats(k);
    if (options.gptq && ls && gptq_supports(types[k])) {
      const FloatTensor w = load_float_tensor(*qsrc, t.name);
      std::vector<uint8_t> rows(static_cast<size_t>(w.rows) * row_bytes(static_cast<uint32_t>(types[k]), w.cols));
      const auto g0 = std::chrono::steady_clock::now();
      GptqOptions go = options.gptq_options;
      go.compute_rtn_loss = options.measure;  // a second quantizer pass, for the report only
      const GptqReport g = gptq_quantize(types[k], w.v.data(), w.rows, w.cols, ls->gram.data(), go, rows.data());
      res.gptq_loss_rtn += g.rtn_loss;
      res.gptq_loss += g.gptq_loss;
      ++res.gptq_tensors;
      res.gptq_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - g0).count();
      quantize_tensor(in, t, types[k], options.measure, plain, st, &rows);
    } else {
      quantize_tensor(in, t, types[k], options.measure, plain, st);
    }
    if (options.measure && linear_stats(k)) {
      const FloatTensor w = load_float_tensor(*qsrc, t.name);
      st.out_err_rtn = rtn_err[k];
      st.out_err = relative_output_error(w.v.data(), w.rows, w.cols, types[k], plain.data(),
                                         linear_stats(k)->gram.data());
    }
    st.layout = layouts[k];
    if (layouts[k] == nbl::kLayoutPacked) {
      WeightMatrix w;
      w.type = types[k];
      w.data = plain.data();
      w.cols = static_cast<int64_t>(t.dims[0]);
      w.rows = static_cast<int64_t>(t.dims[1]);
      w.row_bytes = row_bytes(static_cast<uint32_t>(w.type), t.dims[0]);
      const PackedWeight p = repack_packed4(w);
      const uint64_t want = nbl::tensor_bytes(static_cast<uint32_t>(w.type), nbl::kLayoutPacked, t.dims, nullptr);
      if (p.view.layout != kLayoutPacked4 || p.storage_bytes != want) {
        throw std::logic_error("tensor '" + t.name + "': the kernels' packed layout (" +
                               std::to_string(p.storage_bytes) + " bytes) disagrees with "
                               "docs/format.md's (" + std::to_string(want) + ")");
      }
      st.bytes = p.storage_bytes;
      sink(p.storage.get(), p.storage_bytes);
    } else {
      st.bytes = plain.size();
      sink(plain.data(), plain.size());
    }
    if (k < src.tensors.size() && qsrc->tensors[k].name == src.tensors[k].name) {
      res.src_bytes += src.tensors[k].nbytes;
    }
    res.tensor_bytes += st.bytes;
    res.n_params += st.n_elements;
    ++res.n_tensors;
  };

  if (gguf) {
    std::vector<GgufTensorDesc> descs;
    for (size_t k = 0; k < qsrc->tensors.size(); ++k) descs.push_back({qsrc->tensors[k].name, types[k], qsrc->tensors[k].dims});
    write_gguf_streamed(out, meta, descs, produce);
  } else {
    std::vector<NibbleTensorDesc> descs;
    for (size_t k = 0; k < qsrc->tensors.size(); ++k) {
      descs.push_back({qsrc->tensors[k].name, types[k], layouts[k], qsrc->tensors[k].dims});
    }
    write_nibble_streamed(out, meta, descs, produce);
  }
  std::error_code ec;
  res.file_bytes = fs::file_size(out, ec);
  if (options.measure) add_totals(res);
  return res;
}

}  // namespace detail

QuantizeResult quantize_model(const std::string& in, const std::string& out,
                              const std::string& recipe, const QuantizeOptions& options) {
  return detail::quantize_model_to(in, out, recipe, options, is_gguf_output(out));
}

ModelFile quantize_in_memory(const ModelFile& src, const std::string& recipe) {
  ModelFile mf;
  mf.path = src.path + " (" + recipe + ", in memory)";
  mf.format = "nibble";
  mf.meta = output_metadata(src);
  mf.meta.set_string("nibble.quantization.recipe", recipe);
  for (const TensorInfo& t : src.tensors) {
    const TensorType type = recipe_tensor_type(recipe, t);
    std::vector<uint8_t> bytes;
    TensorQuantStats st;
    quantize_tensor(src.path, t, type, false, bytes, st);
    TensorInfo q;
    q.name = t.name;
    q.type = type;
    q.dims = t.dims;
    q.nbytes = bytes.size();
    q.data = bytes.data();  // the heap block moves with the vector into owned_buffers
    mf.owned_buffers.push_back(std::move(bytes));
    mf.tensors.push_back(std::move(q));
  }
  return mf;
}

}  // namespace nibble
