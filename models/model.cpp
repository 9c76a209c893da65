#include "models/model.h"

#include <functional>
#include <map>

namespace nibble {

std::unique_ptr<Model> make_llama(const ModelFile& file);
std::unique_ptr<Model> make_gemma3(const ModelFile& file);

namespace {

using Factory = std::function<std::unique_ptr<Model>(const ModelFile&)>;

// The family registry: a new family is one file plus one line here.
const std::map<std::string, Factory>& registry() {
  static const std::map<std::string, Factory> families = {
      {"llama", make_llama},
      {"gemma3", make_gemma3},
  };
  return families;
}

}  // namespace

KvCache::KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim)
    : n_ctx_(n_ctx),
      n_head_kv_(n_head_kv),
      head_dim_(head_dim),
      k_(static_cast<size_t>(n_layer * n_head_kv * n_ctx * head_dim)),
      v_(static_cast<size_t>(n_layer * n_head_kv * n_ctx * head_dim)) {}

ForwardScratch::ForwardScratch(const ModelConfig& c, int64_t max_tokens_, int n_threads)
    : max_tokens(max_tokens_),
      x(max_tokens_ * c.n_embd),
      xb(max_tokens_ * std::max(c.n_embd, c.q_dim())),
      xb2(max_tokens_ * c.n_embd),
      q(max_tokens_ * c.q_dim()),
      k(max_tokens_ * c.kv_dim()),
      v(max_tokens_ * c.kv_dim()),
      att(max_tokens_ * c.q_dim()),
      hb(max_tokens_ * c.n_ff),
      hb2(max_tokens_ * c.n_ff),
      attn(c.n_head_kv > 0 ? static_cast<size_t>(n_threads) *
                                 attention_batch_scratch_floats(c.n_head / c.n_head_kv, c.head_dim)
                           : 0) {
  ws.n_threads = n_threads;
}

std::unique_ptr<Model> load_model(const ModelFile& file) {
  const std::string arch = file.architecture();
  if (arch.empty()) {
    throw FileError(file.path + ": no general.architecture in metadata (a vocabulary-only file?)");
  }
  const auto it = registry().find(arch);
  if (it == registry().end()) {
    std::string known;
    for (const auto& [name, f] : registry()) known += (known.empty() ? "" : ", ") + name;
    throw FileError(file.path + ": architecture '" + arch + "' is not supported (supported: " +
                    known + ")");
  }
  return it->second(file);
}

std::vector<std::string> supported_architectures() {
  std::vector<std::string> names;
  for (const auto& [name, f] : registry()) names.push_back(name);
  return names;
}

}  // namespace nibble
