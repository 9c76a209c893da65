// A conversation's state over one model: the KV cache and scratch buffers, allocated once, and
// the evaluation of token batches appended to the context.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/model.h"

namespace nibble {

// The context cannot hold the tokens asked for.
class ContextFullError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SessionOptions {
  int64_t n_ctx = 0;      // 0: the model's trained context length
  int n_threads = 0;      // 0: the machine's physical cores
  int64_t n_batch = 512;  // tokens per forward pass when evaluating a prompt
  std::string gemm = "auto";  // the prompt matmul, as set_gemm
};

class Session {
 public:
  Session(const Model& model, const SessionOptions& options);

  // Appends tokens at the end of the context, evaluating them in batches of n_batch, and
  // returns the logits of the last one (n_vocab floats, valid until the next call).
  // Throws ContextFullError (nothing evaluated) when they do not fit.
  const float* eval(const int32_t* tokens, int64_t n);
  const float* eval(const std::vector<int32_t>& tokens) { return eval(tokens.data(), tokens.size()); }

  // As eval(), but writes the logits of every token to out (n × n_vocab).
  void eval_all_logits(const int32_t* tokens, int64_t n, float* out);

  // Forgets the context (the cache is reused, nothing is freed).
  void reset() { n_past_ = 0; }

  // Which matmul prompt evaluation uses: "nibble" (nibble's int8 GEMM), "amx" (nibble's AMX
  // tile kernel, kernels/amx_matmul.h: bf16 tiles decoded from the quantised weights per call,
  // 1.6–1.8× the int8 GEMM on pp512 where the CPU has AMX), "onednn" (oneDNN's bf16 primitive,
  // kernels/onednn_matmul.h, which keeps a bf16 copy of the weights, 2 bytes each, made on the
  // first prompt) or "auto" (the default: amx where AmxMatmul::available(), else nibble).
  // Decode, float weights and prompts shorter than the chosen matmul's min_rows() always use
  // nibble's kernels. Throws std::invalid_argument for an unknown name and std::runtime_error
  // when the CPU or this build lacks the one named. gemm() names the matmul in use ("nibble",
  // "amx" or "onednn").
  void set_gemm(const std::string& name);
  std::string gemm() const;

  const Model& model() const { return model_; }
  int64_t n_past() const { return n_past_; }
  int64_t n_ctx() const { return n_ctx_; }
  int n_threads() const { return n_threads_; }
  int64_t n_vocab() const { return model_.config().n_vocab; }
  const std::vector<float>& last_logits() const { return logits_; }
  uint64_t kv_bytes() const { return kv_.bytes(); }

 private:
  void check_fits(int64_t n) const;

  const Model& model_;
  int64_t n_ctx_;
  int n_threads_;
  int64_t n_batch_;
  KvCache kv_;
  ForwardScratch scratch_;
  std::vector<float> logits_;
  int64_t n_past_ = 0;
};

}  // namespace nibble
