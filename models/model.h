// What every model family provides: its hyperparameters and a forward pass over a batch of
// tokens that appends to a KV cache and writes logits. Families know architectures, nothing
// about files beyond reading tensors and keys by name from a ModelFile.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "loaders/model_file.h"

namespace nibble {

struct ModelConfig {
  std::string arch;          // general.architecture
  std::string name;          // general.name, if any
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;      // key/value length per head
  int64_t n_ff = 0;
  int64_t n_ctx_train = 0;   // context_length as the file states it
  float norm_eps = 1e-5f;
  float rope_base = 10000.0f;
  float rope_freq_scale = 1.0f;
  int64_t rope_dim = 0;
  RopeStyle rope_style = RopeStyle::kAdjacent;

  // Interleaved sliding-window (local) and global layers (Gemma 3). With n_swa > 0, layer il
  // is local iff il % swa_pattern < swa_pattern − 1 (swa_pattern 0: every layer local, 1: none):
  // it attends to the last n_swa positions only, with rope base rope_base_swa and no scaling.
  int64_t n_swa = 0;                 // window in positions; 0: no local layers
  int64_t swa_pattern = 0;
  float rope_base_swa = 10000.0f;
  float final_logit_softcap = 0.0f;  // logits = c·tanh(logits / c) when c > 0

  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
  bool is_swa_layer(int64_t il) const {
    return n_swa > 0 && (swa_pattern == 0 || il % swa_pattern < swa_pattern - 1);
  }
};

// Keys and values of every layer for n_ctx positions, F32, head-major:
//   [layer][kv head][pos][head_dim]
// Attention walks one kv head's positions in order, and contiguous rows are one stream for the
// hardware prefetchers (token-major rows, a head's 256 bytes every 1 KiB for TinyLlama, were read
// from DRAM at ~8 GB/s by decode at long contexts).
class KvCache {
 public:
  KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim);
  float* k(int64_t layer, int64_t head, int64_t pos) { return &k_[offset(layer, head, pos)]; }
  float* v(int64_t layer, int64_t head, int64_t pos) { return &v_[offset(layer, head, pos)]; }
  int64_t n_ctx() const { return n_ctx_; }
  uint64_t bytes() const { return (k_.size() + v_.size()) * sizeof(float); }

 private:
  size_t offset(int64_t layer, int64_t head, int64_t pos) const {
    return static_cast<size_t>(((layer * n_head_kv_ + head) * n_ctx_ + pos) * head_dim_);
  }
  int64_t n_ctx_, n_head_kv_, head_dim_;
  std::vector<float> k_, v_;
};

// The inputs of a block's linear layers, as the quantizer's calibration pass (quant/calibration.h)
// sees them: q/k/v share kAttnIn and gate/up share kFfnIn; kHead is the normed input of the
// output head (layer −1).
enum class LinearSite { kAttnIn, kAttnOut, kFfnIn, kFfnDown, kHead };

// Watches those inputs during forward(): n rows of dim floats, valid during the call only.
class ActivationObserver {
 public:
  virtual ~ActivationObserver() = default;
  virtual void observe(int64_t layer, LinearSite site, const float* x, int64_t n, int64_t dim) = 0;
};

// Activation buffers for batches of up to max_tokens tokens, allocated once per session.
struct ForwardScratch {
  ForwardScratch(const ModelConfig& c, int64_t max_tokens, int n_threads);
  int64_t max_tokens;
  std::vector<float> x, xb, xb2, q, k, v, att, hb, hb2;
  std::vector<float> attn;  // n_threads × attention_batch_scratch_floats
  // Rope angles of the positions of one forward call: its first layer computes them, the other
  // layers reuse them (two tables: Gemma 3's local and global layers rotate with two bases).
  struct RopeAngles {
    int64_t rot_dim = 0, pos0 = -1, n = 0;
    float base = 0.0f, freq_scale = 0.0f;
    std::vector<float> cos, sin;  // n × rot_dim/2
  };
  std::array<RopeAngles, 2> rope_angles;
  int next_rope_angles = 0;
  MatmulWorkspace ws;
  ActivationObserver* observer = nullptr;  // not owned; null outside calibration

  void observe(int64_t layer, LinearSite site, const float* in, int64_t n, int64_t dim) {
    if (observer) observer->observe(layer, site, in, n, dim);
  }
};

class Model {
 public:
  virtual ~Model() = default;
  const ModelConfig& config() const { return config_; }

  // Evaluates tokens[0..n) at positions pos0..pos0+n−1 (n ≤ scratch.max_tokens, pos0+n ≤
  // kv.n_ctx()), appending their keys/values to kv. Writes logits for every token
  // (logits: n × n_vocab) when all_logits, else only for the last one (n_vocab floats).
  virtual void forward(const int32_t* tokens, int64_t n, int64_t pos0, KvCache& kv,
                       ForwardScratch& scratch, float* logits, bool all_logits) const = 0;

 protected:
  ModelConfig config_;
};

// Builds the family named by the file's general.architecture. Throws FileError naming the file
// for an unknown architecture, missing tensors, wrong shapes or weight types nibble cannot run.
std::unique_ptr<Model> load_model(const ModelFile& file);

// Architectures load_model() knows.
std::vector<std::string> supported_architectures();

}  // namespace nibble
