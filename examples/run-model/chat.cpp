#include "chat.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace chat {
namespace {

// Set by SIGINT. A signal handler can only talk to the program through a flag of static
// storage; this is that flag, and nothing else in the tool is global.
volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void on_sigint(int) { g_interrupted = 1; }

struct Message {
  std::string role, content;
};

int fail(const std::string& msg) {
  std::fprintf(stderr, "run-model: %s\n", msg.c_str());
  return 1;
}

// The conversation and what the context holds of it.
class Conversation {
 public:
  Conversation(const Options& o, nibble_model* model, nibble_context* ctx) : o_(o), model_(model), ctx_(ctx) {
    if (!o.system_prompt.empty()) messages_.push_back({"system", o.system_prompt});
  }

  // One user turn: formats the conversation, evaluates what the context does not hold yet and
  // streams the answer. Returns false on an error that ends the chat.
  bool turn(const std::string& user_text) {
    messages_.push_back({"user", user_text});
    std::string prompt;
    std::vector<int32_t> tokens;
    if (!prepare(prompt, tokens)) {
      messages_.pop_back();
      return true;  // reported; the user may try a shorter message
    }
    Sink sink{StopFilter(o_.stop), {}};
    nibble_generate_stats st{};
    const nibble_status s = nibble_generate_tokens(ctx_, tokens.data(), static_cast<int32_t>(tokens.size()),
                                                   o_.n_predict, &o_.sampler, on_piece, &sink, &st);
    const std::string tail = sink.filter.flush();
    std::fwrite(tail.data(), 1, tail.size(), stdout);
    std::printf("\n");
    std::fflush(stdout);
    if (s != NIBBLE_OK && s != NIBBLE_ERR_ABORTED) {
      fail(nibble_context_last_error(ctx_));
      return false;
    }
    std::string reply = sink.raw;
    if (sink.filter.stopped()) {
      size_t cut = reply.size();
      for (const std::string& stop : o_.stop) cut = std::min(cut, reply.find(stop));
      reply.resize(cut);
    }
    messages_.push_back({"assistant", reply});
    // Only after an answer that ended on its end-of-turn token does the context hold exactly
    // prompt + answer; after an interruption the next turn starts from a clean context.
    cached_ = st.hit_end_of_generation ? prompt + sink.raw : std::string();
    if (g_interrupted) std::fprintf(stderr, "[interrupted]\n");
    if (st.hit_context_limit) std::fprintf(stderr, "[the context is full]\n");
    std::fprintf(stderr, "[prompt %d tokens, %.1f t/s; answer %d tokens, %.1f t/s]\n", st.n_prompt,
                 st.n_prompt / std::max(st.prompt_seconds, 1e-9), st.n_generated,
                 st.n_generated > 0 ? st.n_generated / std::max(st.gen_seconds, 1e-9) : 0.0);
    return true;
  }

 private:
  struct Sink {
    StopFilter filter;
    std::string raw;  // everything generated, stop strings included
  };

  static int on_piece(const char* text, size_t len, void* user) {
    auto& sink = *static_cast<Sink*>(user);
    if (g_interrupted) return 0;
    sink.raw.append(text, len);
    const std::string out = sink.filter.feed(std::string(text, len));
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    return sink.filter.stopped() ? 0 : 1;
  }

  std::string format() const {
    std::vector<nibble_chat_message> msgs;
    for (const Message& m : messages_) msgs.push_back({m.role.c_str(), m.content.c_str()});
    std::string text(4096, '\0');
    int32_t n = 0;
    const char* tmpl = o_.template_name.empty() ? nullptr : o_.template_name.c_str();
    nibble_status s = nibble_chat_apply(model_, tmpl, msgs.data(), msgs.size(), 1, text.data(),
                                        static_cast<int32_t>(text.size()), &n);
    if (s == NIBBLE_ERR_BUFFER_TOO_SMALL) {
      text.resize(static_cast<size_t>(n) + 1);
      s = nibble_chat_apply(model_, tmpl, msgs.data(), msgs.size(), 1, text.data(),
                            static_cast<int32_t>(text.size()), &n);
    }
    if (s != NIBBLE_OK) throw std::runtime_error(nibble_last_error());
    text.resize(static_cast<size_t>(n));
    return text;
  }

  std::vector<int32_t> tokenize(const std::string& text, bool add_special) const {
    std::vector<int32_t> ids(text.size() + 8);
    int32_t n = 0;
    nibble_status s = nibble_tokenize(model_, text.data(), text.size(), add_special, 1, ids.data(),
                                      static_cast<int32_t>(ids.size()), &n);
    if (s == NIBBLE_ERR_BUFFER_TOO_SMALL) {
      ids.resize(static_cast<size_t>(n));
      s = nibble_tokenize(model_, text.data(), text.size(), add_special, 1, ids.data(), n, &n);
    }
    if (s != NIBBLE_OK) throw std::runtime_error(nibble_last_error());
    ids.resize(static_cast<size_t>(n));
    return ids;
  }

  // Tokens to evaluate for the current conversation: only what follows the cached text when the
  // context holds a prefix of it, else the whole conversation from an empty context. When it
  // does not fit (with room for an answer), the oldest turns go first (the system prompt stays).
  bool prepare(std::string& prompt, std::vector<int32_t>& tokens) {
    const int32_t n_ctx = nibble_context_size(ctx_);
    const int32_t room = std::min<int32_t>(o_.n_predict > 0 ? o_.n_predict : 256, n_ctx / 4);
    bool dropped = false;
    for (;;) {
      prompt = format();
      const bool reuse = !cached_.empty() && nibble_context_used(ctx_) > 0 &&
                         prompt.compare(0, cached_.size(), cached_) == 0;
      if (!reuse) {
        nibble_context_reset(ctx_);
        cached_.clear();
      }
      tokens = tokenize(prompt.substr(cached_.size()), nibble_context_used(ctx_) == 0);
      if (nibble_context_used(ctx_) + static_cast<int32_t>(tokens.size()) + room <= n_ctx) break;
      // Too long: drop the oldest exchange after the system prompt and start over.
      const size_t first = !messages_.empty() && messages_[0].role == "system" ? 1 : 0;
      if (messages_.size() - first <= 1) {
        fail("the message does not fit in the context of " + std::to_string(n_ctx) + " tokens; raise -c");
        return false;
      }
      size_t end = first + 1;
      while (end < messages_.size() - 1 && messages_[end].role != "user") ++end;
      messages_.erase(messages_.begin() + static_cast<std::ptrdiff_t>(first),
                      messages_.begin() + static_cast<std::ptrdiff_t>(end));
      cached_.clear();
      dropped = true;
    }
    if (dropped) std::fprintf(stderr, "[context full: dropped the oldest turns, re-reading the conversation]\n");
    return true;
  }

  const Options& o_;
  nibble_model* model_;
  nibble_context* ctx_;
  std::vector<Message> messages_;
  std::string cached_;  // the text the context's tokens stand for
};

}  // namespace

StopFilter::StopFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
}

std::string StopFilter::feed(const std::string& text) {
  if (stopped_) return {};
  held_ += text;
  size_t cut = std::string::npos;
  for (const std::string& s : stops_) cut = std::min(cut, held_.find(s));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, cut);
    held_.clear();
    return out;
  }
  // Keep the longest tail of held_ that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const std::string& s : stops_) {
    for (size_t k = std::min(s.size() - 1, held_.size()); k > keep; --k) {
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopFilter::flush() {
  std::string out = stopped_ ? std::string() : held_;
  held_.clear();
  return out;
}

int run(const Options& o, nibble_model* model) {
  const char* format = nibble_chat_format(model, o.template_name.empty() ? nullptr : o.template_name.c_str());
  if (!format) return fail(nibble_last_error());
  nibble_context_params cp = nibble_context_default_params();
  cp.n_ctx = o.n_ctx;
  cp.n_batch = o.n_batch;
  cp.n_threads = o.n_threads;
  nibble_context* ctx = nullptr;
  if (nibble_context_create(model, &cp, &ctx) != NIBBLE_OK) return fail(nibble_last_error());
  std::fprintf(stderr, "chat format %s, context %d, threads %d, isa %s, seed %llu\n", format,
               nibble_context_size(ctx), nibble_context_threads(ctx), nibble_isa(),
               static_cast<unsigned long long>(o.sampler.seed));

  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: Ctrl-C at the prompt interrupts the read
  struct sigaction old {};
  sigaction(SIGINT, &sa, &old);

  int rc = 0;
  try {
    Conversation conv(o, model, ctx);
    if (!o.scripted.empty()) {
      for (const std::string& text : o.scripted) {
        std::printf("> %s\n", text.c_str());
        if (!conv.turn(text)) {
          rc = 1;
          break;
        }
      }
    } else {
      std::fprintf(stderr, "Type a message and press Enter; Ctrl-C stops an answer, Ctrl-D (or Ctrl-C here) ends.\n");
      for (;;) {
        g_interrupted = 0;
        std::fprintf(stderr, "\n> ");
        std::string line;
        if (!std::getline(std::cin, line) || g_interrupted) break;
        if (line.empty()) continue;
        if (!conv.turn(line)) {
          rc = 1;
          break;
        }
      }
      std::fprintf(stderr, "\n");
    }
  } catch (const std::exception& e) {
    rc = fail(e.what());
  }
  sigaction(SIGINT, &old, nullptr);
  nibble_context_free(ctx);
  return rc;
}

}  // namespace chat
