#include "runtime/session.h"

#include <unistd.h>

#include <algorithm>
#include <string>

#include "kernels/amx_matmul.h"
#include "kernels/onednn_matmul.h"
#include "runtime/threads.h"

namespace nibble {
namespace {

// The context size, checked before the KV cache and scratch are sized from it: by default it is
// the file's context_length, which a corrupt or crafted file can set to anything (negative, or
// 2^40, which would ask for petabytes). A cache larger than the machine's memory is refused
// with a message rather than attempted.
int64_t checked_context(const Model& model, int64_t requested) {
  const ModelConfig& c = model.config();
  const int64_t n_ctx = requested > 0 ? requested : c.n_ctx_train;
  if (n_ctx <= 0) {
    throw std::invalid_argument("context size must be positive (the model states " +
                                std::to_string(c.n_ctx_train) + ")");
  }
  uint64_t bytes = 0;  // K and V: 2 x n_layer x n_ctx x kv_dim floats
  const bool overflow =
      __builtin_mul_overflow(static_cast<uint64_t>(n_ctx), 2 * sizeof(float), &bytes) ||
      __builtin_mul_overflow(bytes, static_cast<uint64_t>(c.n_layer), &bytes) ||
      __builtin_mul_overflow(bytes, static_cast<uint64_t>(c.kv_dim()), &bytes);
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const uint64_t ram = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * page : UINT64_MAX;
  if (overflow || bytes > ram) {
    throw std::invalid_argument(
        "a context of " + std::to_string(n_ctx) + " tokens needs " +
        (overflow ? std::string("more") : std::to_string(bytes >> 20) + " MiB") +
        " of KV cache, more than this machine's " + std::to_string(ram >> 20) +
        " MiB of memory; use a smaller context (-c)");
  }
  return n_ctx;
}

}  // namespace

Session::Session(const Model& model, const SessionOptions& o)
    : model_(model),
      n_ctx_(checked_context(model, o.n_ctx)),
      n_threads_(o.n_threads > 0 ? o.n_threads : default_thread_count()),
      n_batch_(std::clamp<int64_t>(o.n_batch, 1, std::max<int64_t>(1, n_ctx_))),
      kv_(model.config().n_layer, n_ctx_, model.config().n_head_kv, model.config().head_dim),
      scratch_(model.config(), n_batch_, n_threads_),
      logits_(model.config().n_vocab) {
  if (n_ctx_ <= 0) throw std::invalid_argument("context size must be positive");
  set_gemm(o.gemm);
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

void Session::set_gemm(const std::string& requested) {
  // "auto": the tile unit where the CPU has one: there it beats the int8 GEMM from
  // AmxMatmul::min_rows() rows on, without a copy of the weights.
  const std::string name =
      requested == "auto" ? (AmxMatmul::available() ? "amx" : "nibble") : requested;
  if (name == gemm()) return;
  if (name == "nibble") {
    scratch_.ws.prompt.reset();
  } else if (name == "amx") {
    scratch_.ws.prompt = std::make_shared<AmxMatmul>();
  } else if (name == "onednn") {
    scratch_.ws.prompt = std::make_shared<OneDnnMatmul>();
  } else {
    throw std::invalid_argument("unknown matmul '" + name + "' (known: auto, nibble, amx, onednn)");
  }
}

std::string Session::gemm() const {
  return scratch_.ws.prompt ? scratch_.ws.prompt->name() : "nibble";
}

}  // namespace nibble
