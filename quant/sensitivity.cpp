#include "quant/sensitivity.h"

#include <omp.h>

#include <stdexcept>

#include "kernels/quantize.h"
#include "quant/float_weights.h"
#include "runtime/perplexity.h"

namespace nibble {
namespace {

// Log-probabilities of every position of every sequence, as floats (memory: tokens × vocab).
class ModelRunner {
 public:
  ModelRunner(const CalibrationData& cal, int64_t n_sequences, int n_threads)
      : cal_(cal), n_seq_(std::min<int64_t>(n_sequences, static_cast<int64_t>(cal.sequences.size()))),
        n_threads_(n_threads > 0 ? n_threads : omp_get_max_threads()) {}

  int64_t n_sequences() const { return n_seq_; }

  // Calls f(sequence, position, logits) for every position.
  template <typename F>
  void run(const ModelFile& file, F&& f) const {
    const std::unique_ptr<Model> model = load_model(file);
    const ModelConfig& c = model->config();
    const int64_t n_ctx = cal_.n_ctx;
    KvCache kv(c.n_layer, n_ctx, c.n_head_kv, c.head_dim);
    ForwardScratch s(c, n_ctx, n_threads_);
    std::vector<float> logits(static_cast<size_t>(n_ctx * c.n_vocab));
    for (int64_t q = 0; q < n_seq_; ++q) {
      model->forward(cal_.sequences[q].data(), n_ctx, 0, kv, s, logits.data(), true);
      for (int64_t p = 0; p < n_ctx; ++p) f(q, p, logits.data() + p * c.n_vocab, c.n_vocab);
    }
  }

 private:
  const CalibrationData& cal_;
  int64_t n_seq_;
  int n_threads_;
};

}  // namespace

std::vector<TensorType> default_allocation_candidates() {
  // K-quants dominate the other formats of the same size in error; Q4_0 stays for its faster
  // kernels, F16 (16 bits) is never worth it against Q8_0 on these models and costs a pass.
  return {TensorType::Q3_K, TensorType::Q4_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K,
          TensorType::Q8_0};
}

std::vector<TensorSensitivity> measure_sensitivity(const ModelFile& model, const CalibrationData& cal,
                                                   const SensitivityOptions& o) {
  if (o.candidates.empty()) throw std::invalid_argument("bit allocation needs candidate types");
  const ModelRunner runner(cal, o.n_sequences, o.n_threads);
  const int64_t n_ctx = cal.n_ctx;
  // The reference distributions, once.
  std::vector<std::vector<double>> ref(static_cast<size_t>(runner.n_sequences() * n_ctx));
  runner.run(model, [&](int64_t q, int64_t p, const float* logits, int64_t n_vocab) {
    log_softmax(logits, n_vocab, ref[q * n_ctx + p]);
  });

  std::vector<TensorSensitivity> out;
  std::vector<double> lp;
  for (const TensorInfo& t : model.tensors) {
    if (t.dims.size() != 2) continue;
    const FloatTensor w = load_float_tensor(model, t.name);
    TensorSensitivity ts;
    ts.name = t.name;
    for (TensorType type : o.candidates) {
      const uint64_t rb = row_bytes(static_cast<uint32_t>(type), static_cast<uint64_t>(w.cols));
      if (rb == 0) continue;
      FloatTensors one;
      FloatTensor& q = one[t.name];
      q.rows = w.rows;
      q.cols = w.cols;
      q.v.resize(w.v.size());
#pragma omp parallel
      {
        std::vector<uint8_t> buf(rb);
#pragma omp for schedule(static)
        for (int64_t r = 0; r < w.rows; ++r) {
          quantize_row(type, w.row(r), w.cols, buf.data());
          dequantize_row(type, buf.data(), w.cols, q.row(r));
        }
      }
      double kl = 0;
      runner.run(with_float_tensors(model, one), [&](int64_t s, int64_t p, const float* logits, int64_t n_vocab) {
        log_softmax(logits, n_vocab, lp);
        kl += kl_divergence(ref[s * n_ctx + p], lp);
      });
      ts.candidates.push_back({type, rb * static_cast<uint64_t>(w.rows),
                               kl / static_cast<double>(runner.n_sequences() * n_ctx)});
    }
    if (ts.candidates.empty()) {
      throw std::invalid_argument("tensor '" + t.name + "': no candidate type fits its rows of " +
                                  std::to_string(w.cols));
    }
    out.push_back(std::move(ts));
  }
  return out;
}

}  // namespace nibble
