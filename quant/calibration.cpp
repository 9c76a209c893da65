#include "quant/calibration.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "kernels/quantize.h"
#include "quant/linalg.h"
#include "tokenizer/tokenizer.h"

namespace nibble {
namespace {

// Accumulates every observed input into its record (created on first sight).
class StatsCollector final : public ActivationObserver {
 public:
  StatsCollector(CalibrationData& data, bool gram, bool hist) : data_(data), gram_(gram), hist_(hist) {}

  void observe(int64_t layer, LinearSite site, const float* x, int64_t n, int64_t dim) override {
    InputStats* s = data_.find(layer, site);
    if (!s) {
      InputStats fresh;
      fresh.layer = layer;
      fresh.site = site;
      fresh.dim = dim;
      fresh.sum_abs.assign(dim, 0.0);
      fresh.max_abs.assign(dim, 0.0f);
      if (gram_) fresh.gram.assign(static_cast<size_t>(dim * dim), 0.0f);
      if (hist_) fresh.hist.emplace();
      data_.inputs.push_back(std::move(fresh));
      s = &data_.inputs.back();
    }
    if (s->dim != dim) throw std::logic_error("calibration: an input changed its width");
    // Channels are independent: split them over threads, rows in order (deterministic sums).
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < dim; ++j) {
      double sum = 0;
      float mx = s->max_abs[j];
      for (int64_t r = 0; r < n; ++r) {
        const float a = std::fabs(x[r * dim + j]);
        sum += a;
        mx = std::max(mx, a);
      }
      s->sum_abs[j] += sum;
      s->max_abs[j] = mx;
    }
    if (gram_) linalg::accumulate_gram(x, n, dim, dim, s->gram.data());
    if (hist_) s->hist->add(x, n * dim);
    s->n_tokens += n;
  }

 private:
  CalibrationData& data_;
  bool gram_, hist_;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path + ": cannot open the calibration text");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw FileError(path + ": read error");
  return ss.str();
}

}  // namespace

std::vector<float> InputStats::mean_abs() const {
  std::vector<float> m(sum_abs.size());
  for (size_t j = 0; j < m.size(); ++j) {
    m[j] = n_tokens > 0 ? static_cast<float>(sum_abs[j] / static_cast<double>(n_tokens)) : 0.0f;
  }
  return m;
}

void InputStats::rescale(const std::vector<float>& s) {
  if (static_cast<int64_t>(s.size()) != dim) throw std::invalid_argument("rescale: width differs");
  for (int64_t j = 0; j < dim; ++j) {
    sum_abs[j] /= s[j];
    max_abs[j] /= s[j];
  }
  if (gram.empty()) return;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < dim; ++i) {
    for (int64_t j = 0; j < dim; ++j) gram[i * dim + j] /= s[i] * s[j];
  }
}

float InputStats::abs_max() const {
  float m = 0;
  for (float v : max_abs) m = std::max(m, v);
  return m;
}

InputStats* CalibrationData::find(int64_t layer, LinearSite site) {
  for (InputStats& s : inputs) {
    if (s.layer == layer && s.site == site) return &s;
  }
  return nullptr;
}

const InputStats* CalibrationData::find(int64_t layer, LinearSite site) const {
  return const_cast<CalibrationData*>(this)->find(layer, site);
}

bool tensor_input_site(const std::string& name, int64_t* layer, LinearSite* site) {
  if (name == "output.weight") {
    *layer = -1;
    *site = LinearSite::kHead;
    return true;
  }
  if (name.rfind("blk.", 0) != 0) return false;
  const size_t dot = name.find('.', 4);
  if (dot == std::string::npos || dot == 4) return false;
  int64_t l = 0;
  for (size_t i = 4; i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    l = l * 10 + (name[i] - '0');
  }
  const std::string rest = name.substr(dot + 1);
  if (rest == "attn_q.weight" || rest == "attn_k.weight" || rest == "attn_v.weight") {
    *site = LinearSite::kAttnIn;
  } else if (rest == "attn_output.weight") {
    *site = LinearSite::kAttnOut;
  } else if (rest == "ffn_gate.weight" || rest == "ffn_up.weight") {
    *site = LinearSite::kFfnIn;
  } else if (rest == "ffn_down.weight") {
    *site = LinearSite::kFfnDown;
  } else {
    return false;
  }
  *layer = l;
  return true;
}

const InputStats* CalibrationData::for_tensor(const std::string& name) const {
  int64_t layer = 0;
  LinearSite site{};
  return tensor_input_site(name, &layer, &site) ? find(layer, site) : nullptr;
}

double output_error(const float* E, int64_t rows, int64_t d, const float* H) {
  if (rows <= 0 || d <= 0) return 0;
  std::vector<float> T(static_cast<size_t>(rows * d));
  linalg::gemm(false, false, rows, d, d, 1.0f, E, d, H, d, 0.0f, T.data(), d);
  double s = 0;
  for (int64_t i = 0; i < rows * d; ++i) s += static_cast<double>(E[i]) * T[i];
  return s;
}

double relative_output_error(const float* w, int64_t rows, int64_t cols, TensorType type,
                             const uint8_t* quantized, const float* H, int64_t max_rows) {
  const int64_t n = std::min(rows, std::max<int64_t>(1, max_rows));
  const uint64_t rb = row_bytes(static_cast<uint32_t>(type), static_cast<uint64_t>(cols));
  if (rb == 0) throw std::invalid_argument("relative_output_error: rows are not whole blocks");
  std::vector<float> W(static_cast<size_t>(n * cols)), E(W.size());
#pragma omp parallel
  {
    std::vector<uint8_t> buf(rb);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = i * rows / n;
      const float* src = w + r * cols;
      float* e = E.data() + i * cols;
      std::copy(src, src + cols, W.data() + i * cols);
      const uint8_t* q = quantized ? quantized + r * rb : buf.data();
      if (!quantized) quantize_row(type, src, cols, buf.data());
      dequantize_row(type, q, cols, e);
      for (int64_t j = 0; j < cols; ++j) e[j] -= src[j];
    }
  }
  const double ref = output_error(W.data(), n, cols, H);
  return ref > 0 ? output_error(E.data(), n, cols, H) / ref : 0.0;
}

std::vector<std::vector<int32_t>> draw_sequences(const std::vector<int32_t>& tokens, int64_t n,
                                                 int64_t n_ctx, uint64_t seed, int32_t bos) {
  const auto total = static_cast<int64_t>(tokens.size());
  if (n_ctx <= 0 || total < n_ctx) {
    throw std::invalid_argument("the calibration text has " + std::to_string(total) +
                                " tokens, fewer than one sequence of " + std::to_string(n_ctx));
  }
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> start(0, total - n_ctx);
  std::vector<std::vector<int32_t>> seqs;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t s = start(rng);
    seqs.emplace_back(tokens.begin() + s, tokens.begin() + s + n_ctx);
    if (bos >= 0) seqs.back()[0] = bos;
  }
  return seqs;
}

CalibrationData calibrate(const ModelFile& file, const CalibrationOptions& o) {
  if (o.text_path.empty()) throw std::invalid_argument("calibration needs a text (--calib FILE)");
  if (o.n_chunks <= 0) throw std::invalid_argument("calibration needs at least one sequence");
  if (o.n_ctx < 0) throw std::invalid_argument("calibration context must be positive");
  const auto t0 = std::chrono::steady_clock::now();
  const std::unique_ptr<Model> model = load_model(file);
  const ModelConfig& c = model->config();
  const std::unique_ptr<Tokenizer> tok = make_tokenizer(read_vocabulary(file.meta, file.path), file.path);

  CalibrationData data;
  data.config = c;
  data.n_ctx = o.n_ctx > 0 ? o.n_ctx : std::min<int64_t>(512, c.n_ctx_train > 0 ? c.n_ctx_train : 512);
  const std::vector<int32_t> tokens = tok->encode(read_text(o.text_path), false);
  try {
    data.sequences = draw_sequences(tokens, o.n_chunks, data.n_ctx, o.seed, tok->add_bos() ? tok->bos() : -1);
  } catch (const std::invalid_argument& e) {
    throw FileError(o.text_path + ": " + e.what());
  }
  // 4 layer inputs per block plus the head; reserved so records never move while observed.
  data.inputs.reserve(static_cast<size_t>(4 * c.n_layer + 1));

  const int n_threads = o.n_threads > 0 ? o.n_threads : omp_get_max_threads();
  KvCache kv(c.n_layer, data.n_ctx, c.n_head_kv, c.head_dim);
  ForwardScratch scratch(c, data.n_ctx, n_threads);
  StatsCollector collector(data, o.gram, o.histograms);
  scratch.observer = &collector;
  std::vector<float> logits(static_cast<size_t>(data.n_ctx * c.n_vocab));
  for (const std::vector<int32_t>& seq : data.sequences) {
    model->forward(seq.data(), data.n_ctx, 0, kv, scratch, logits.data(), true);
  }
  for (InputStats& s : data.inputs) {
    if (!s.gram.empty()) linalg::symmetrize(s.gram.data(), s.dim);
  }
  for (const InputStats& s : data.inputs) {
    data.bytes += s.sum_abs.size() * sizeof(double) + (s.max_abs.size() + s.gram.size()) * sizeof(float);
  }
  data.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return data;
}

}  // namespace nibble
