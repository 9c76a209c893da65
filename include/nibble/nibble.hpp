// A thin C++ layer over nibble.h: RAII handles and exceptions instead of statuses. Header-only,
// so it adds nothing to the library's ABI: everything still crosses the C boundary.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "nibble/nibble.h"

namespace nibble {

class Error : public std::runtime_error {
 public:
  Error(nibble_status status, const std::string& msg) : std::runtime_error(msg), status_(status) {}
  nibble_status status() const { return status_; }

 private:
  nibble_status status_;
};

namespace detail {
// Takes the status first and fetches the message only on failure: the message must be read
// after the call that set it (argument evaluation order is unspecified).
inline void check(nibble_status s, const char* (*message)(const void*), const void* handle) {
  if (s != NIBBLE_OK) throw Error(s, message(handle));
}
inline const char* thread_error(const void*) { return nibble_last_error(); }
inline const char* context_error(const void* c) {
  return nibble_context_last_error(static_cast<const nibble_context*>(c));
}
}  // namespace detail

class Model {
 public:
  explicit Model(const std::string& path, nibble_model_params params = nibble_model_default_params()) {
    nibble_model* m = nullptr;
    detail::check(nibble_model_load(path.c_str(), &params, &m), detail::thread_error, nullptr);
    m_.reset(m);
  }
  nibble_model* get() const { return m_.get(); }

  nibble_model_info info() const {
    nibble_model_info i{};
    detail::check(nibble_model_get_info(m_.get(), &i), detail::thread_error, nullptr);
    return i;
  }

  std::vector<int32_t> tokenize(std::string_view text, bool add_special = true,
                                bool parse_special = false) const {
    std::vector<int32_t> ids(text.size() + 4);
    int32_t n = 0;
    nibble_status s = nibble_tokenize(m_.get(), text.data(), text.size(), add_special,
                                      parse_special, ids.data(), static_cast<int32_t>(ids.size()), &n);
    if (s == NIBBLE_ERR_BUFFER_TOO_SMALL) {
      ids.resize(n);
      s = nibble_tokenize(m_.get(), text.data(), text.size(), add_special, parse_special,
                          ids.data(), n, &n);
    }
    detail::check(s, detail::thread_error, nullptr);
    ids.resize(n);
    return ids;
  }

  std::string piece(int32_t token) const {
    char buf[256];
    int32_t n = 0;
    detail::check(nibble_token_to_piece(m_.get(), token, buf, sizeof buf, &n), detail::thread_error, nullptr);
    return std::string(buf, n);
  }

 private:
  struct Free {
    void operator()(nibble_model* m) const { nibble_model_free(m); }
  };
  std::unique_ptr<nibble_model, Free> m_;
};

class Context {
 public:
  explicit Context(const Model& model,
                   nibble_context_params params = nibble_context_default_params()) {
    nibble_context* c = nullptr;
    detail::check(nibble_context_create(model.get(), &params, &c), detail::thread_error, nullptr);
    c_.reset(c);
  }
  nibble_context* get() const { return c_.get(); }

  void eval(const std::vector<int32_t>& tokens) {
    detail::check(nibble_eval(c_.get(), tokens.data(), static_cast<int32_t>(tokens.size())),
                  detail::context_error, c_.get());
  }
  const float* logits() const { return nibble_get_logits(c_.get()); }
  void reset() { nibble_context_reset(c_.get()); }
  int32_t size() const { return nibble_context_size(c_.get()); }
  int32_t used() const { return nibble_context_used(c_.get()); }

  // Streams pieces to on_piece (return false to stop). Stopping is not an error here.
  nibble_generate_stats generate(const std::string& prompt, int32_t n_predict,
                                 const nibble_sampler_params& sampler,
                                 const std::function<bool(std::string_view)>& on_piece) {
    nibble_generate_stats st{};
    auto trampoline = [](const char* text, size_t len, void* user) -> int {
      return (*static_cast<const std::function<bool(std::string_view)>*>(user))(
                 std::string_view(text, len))
                 ? 1
                 : 0;
    };
    const nibble_status s = nibble_generate(c_.get(), prompt.c_str(), n_predict, &sampler,
                                            trampoline, const_cast<void*>(static_cast<const void*>(&on_piece)), &st);
    if (s != NIBBLE_ERR_ABORTED) detail::check(s, detail::context_error, c_.get());
    return st;
  }

 private:
  struct Free {
    void operator()(nibble_context* c) const { nibble_context_free(c); }
  };
  std::unique_ptr<nibble_context, Free> c_;
};

}  // namespace nibble
