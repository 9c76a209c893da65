#include "runtime/session.h"

#include <algorithm>
#include <string>

#include "runtime/threads.h"

namespace nibble {

Session::Session(const Model& model, const SessionOptions& o)
    : model_(model),
      n_ctx_(o.n_ctx > 0 ? o.n_ctx : model.config().n_ctx_train),
      n_threads_(o.n_threads > 0 ? o.n_threads : default_thread_count()),
      n_batch_(std::clamp<int64_t>(o.n_batch, 1, std::max<int64_t>(1, n_ctx_))),
      kv_(model.config().n_layer, n_ctx_, model.config().kv_dim()),
      scratch_(model.config(), n_batch_, n_threads_, n_ctx_),
      logits_(model.config().n_vocab) {
  if (n_ctx_ <= 0) throw std::invalid_argument("context size must be positive");
}

void Session::check_fits(int64_t n) const {
  if (n < 0 || n_past_ + n > n_ctx_) {
    throw ContextFullError("context full: " + std::to_string(n_past_) + " + " +
                           std::to_string(n) + " tokens exceed the context of " +
                           std::to_string(n_ctx_) + " (raise -c)");
  }
}

const float* Session::eval(const int32_t* tokens, int64_t n) {
  check_fits(n);
  for (int64_t done = 0; done < n; done += n_batch_) {
    const int64_t m = std::min(n_batch_, n - done);
    model_.forward(tokens + done, m, n_past_, kv_, scratch_, logits_.data(), false);
    n_past_ += m;
  }
  return logits_.data();
}

void Session::eval_all_logits(const int32_t* tokens, int64_t n, float* out) {
  check_fits(n);
  const int64_t V = n_vocab();
  for (int64_t done = 0; done < n; done += n_batch_) {
    const int64_t m = std::min(n_batch_, n - done);
    model_.forward(tokens + done, m, n_past_, kv_, scratch_, out + done * V, true);
    n_past_ += m;
  }
  if (n > 0) std::copy_n(out + (n - 1) * V, V, logits_.data());
}

}  // namespace nibble
