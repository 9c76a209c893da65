// The C boundary: every exception stops here and becomes a status plus a message.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "include/nibble/nibble.h"
#include "kernels/dispatch.h"
#include "loaders/mapped_file.h"
#include "quant/gguf_quantize.h"
#include "quant/nibble_quantize.h"
#include "runtime/chat_format.h"
#include "runtime/generate.h"
#include "runtime/loaded_model.h"
#include "runtime/perplexity.h"
#include "runtime/sampler.h"
#include "runtime/session.h"

struct nibble_model {
  std::unique_ptr<nibble::LoadedModel> m;
  nibble_log_fn log = nullptr;
  void* log_user = nullptr;
};

struct nibble_sampler {
  nibble::Sampler s;
};

struct nibble_context {
  nibble_model* model = nullptr;
  std::unique_ptr<nibble::Session> session;
  std::string error;
};

namespace {

// Per-thread, like errno: a load that fails has no handle to hang its message on.
thread_local std::string g_last_error;

nibble_status fail(nibble_status s, std::string msg, nibble_context* ctx = nullptr) {
  if (ctx) ctx->error = msg;
  g_last_error = std::move(msg);
  return s;
}

// Runs f, mapping exceptions onto statuses.
template <typename F>
nibble_status guarded(nibble_context* ctx, F&& f) {
  try {
    return f();
  } catch (const nibble::ContextFullError& e) {
    return fail(NIBBLE_ERR_CONTEXT_FULL, e.what(), ctx);
  } catch (const nibble::LoadCancelled& e) {
    return fail(NIBBLE_ERR_ABORTED, e.what(), ctx);
  } catch (const nibble::FileError& e) {
    return fail(NIBBLE_ERR_FILE, e.what(), ctx);
  } catch (const std::invalid_argument& e) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, e.what(), ctx);
  } catch (const std::out_of_range& e) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, e.what(), ctx);
  } catch (const std::bad_alloc&) {
    return fail(NIBBLE_ERR_INTERNAL, "out of memory", ctx);
  } catch (const std::exception& e) {
    return fail(NIBBLE_ERR_INTERNAL, e.what(), ctx);
  } catch (...) {
    return fail(NIBBLE_ERR_INTERNAL, "unknown error", ctx);
  }
}

void log_msg(const nibble_model* m, nibble_log_level level, const std::string& msg) {
  if (m && m->log) {
    m->log(level, msg.c_str(), m->log_user);
  } else {
    std::cerr << (level == NIBBLE_LOG_WARN ? "warning: " : "") << msg << "\n";
  }
}

}  // namespace

extern "C" {

const char* nibble_version(void) { return "0.1.0"; }
const char* nibble_last_error(void) { return g_last_error.c_str(); }

const char* nibble_isa(void) {
  thread_local std::string isa;
  try {
    isa = nibble::active_isa();
  } catch (...) {
    isa = "unknown";
  }
  return isa.c_str();
}

nibble_model_params nibble_model_default_params(void) {
  nibble_model_params p{};
  p.use_mmap = 1;
  return p;
}

nibble_context_params nibble_context_default_params(void) {
  nibble_context_params p{};
  p.n_batch = 512;
  return p;
}

nibble_sampler_params nibble_sampler_default_params(void) {
  const nibble::SamplerParams d;
  nibble_sampler_params p{};
  p.temperature = d.temperature;
  p.top_k = d.top_k;
  p.top_p = d.top_p;
  p.min_p = d.min_p;
  p.repeat_penalty = d.repeat_penalty;
  p.repeat_last_n = d.repeat_last_n;
  p.seed = d.seed;
  return p;
}

nibble_status nibble_model_load(const char* path, const nibble_model_params* params,
                                nibble_model** out) {
  if (!out) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_model_load: out is NULL");
  *out = nullptr;
  if (!path) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_model_load: path is NULL");
  return guarded(nullptr, [&] {
    nibble::apply_isa_from_env();
    const nibble_model_params p = params ? *params : nibble_model_default_params();
    nibble::LoadOptions o;
    if (p.tokenizer_path) o.tokenizer_path = p.tokenizer_path;
    o.use_mmap = p.use_mmap != 0;
    o.vocab_only = p.vocab_only != 0;
    if (p.progress) {
      o.progress = [&p](float f) { return p.progress(f, p.progress_user) != 0; };
    }
    auto m = std::make_unique<nibble_model>();
    m->log = p.log;
    m->log_user = p.log_user;
    m->m = nibble::load_model_and_tokenizer(path, o);
    *out = m.release();
    return NIBBLE_OK;
  });
}

void nibble_model_free(nibble_model* model) { delete model; }

nibble_status nibble_model_get_info(const nibble_model* model, nibble_model_info* out) {
  if (!model || !out) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_model_get_info: NULL argument");
  *out = nibble_model_info{};
  out->file_bytes = model->m->file.mapping ? model->m->file.mapping->size() : 0;
  out->n_vocab = model->m->tokenizer->n_vocab();
  for (const nibble::TensorInfo& t : model->m->file.tensors) {
    out->n_params += t.n_elements();
    out->tensor_bytes += t.nbytes;
  }
  if (!model->m->model) {
    out->architecture = "";
    out->name = "";
    return NIBBLE_OK;
  }
  const nibble::ModelConfig& c = model->m->model->config();
  out->architecture = c.arch.c_str();
  out->name = c.name.c_str();
  out->n_vocab = static_cast<int32_t>(c.n_vocab);
  out->n_embd = static_cast<int32_t>(c.n_embd);
  out->n_layer = static_cast<int32_t>(c.n_layer);
  out->n_head = static_cast<int32_t>(c.n_head);
  out->n_head_kv = static_cast<int32_t>(c.n_head_kv);
  out->n_ff = static_cast<int32_t>(c.n_ff);
  out->n_ctx_train = static_cast<int32_t>(c.n_ctx_train);
  return NIBBLE_OK;
}

nibble_status nibble_tokenize(const nibble_model* model, const char* text, size_t len,
                              int add_special, int parse_special, int32_t* tokens,
                              int32_t capacity, int32_t* n_out) {
  if (!model || (!text && len) || !n_out || capacity < 0 || (!tokens && capacity > 0)) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_tokenize: invalid argument");
  }
  return guarded(nullptr, [&] {
    const auto ids = model->m->tokenizer->encode(std::string_view(text ? text : "", len),
                                                 add_special != 0, parse_special != 0);
    *n_out = static_cast<int32_t>(ids.size());
    if (static_cast<int64_t>(ids.size()) > capacity) {
      return fail(NIBBLE_ERR_BUFFER_TOO_SMALL,
                  "nibble_tokenize: " + std::to_string(ids.size()) + " tokens, capacity " +
                      std::to_string(capacity));
    }
    std::copy(ids.begin(), ids.end(), tokens);
    return NIBBLE_OK;
  });
}

nibble_status nibble_token_to_piece(const nibble_model* model, int32_t token, char* buf,
                                    int32_t capacity, int32_t* n_out) {
  if (!model || !n_out || capacity < 0 || (!buf && capacity > 0)) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_token_to_piece: invalid argument");
  }
  if (token < 0 || token >= model->m->tokenizer->n_vocab()) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT,
                "nibble_token_to_piece: token " + std::to_string(token) + " out of range");
  }
  return guarded(nullptr, [&] {
    const std::string piece = model->m->tokenizer->decode_piece(token);
    *n_out = static_cast<int32_t>(piece.size());
    if (static_cast<int64_t>(piece.size()) > capacity) {
      return fail(NIBBLE_ERR_BUFFER_TOO_SMALL, "nibble_token_to_piece: buffer too small");
    }
    std::memcpy(buf, piece.data(), piece.size());
    return NIBBLE_OK;
  });
}

nibble_status nibble_detokenize(const nibble_model* model, const int32_t* tokens,
                                int32_t n_tokens, char* buf, int32_t capacity, int32_t* n_out) {
  if (!model || !n_out || n_tokens < 0 || (!tokens && n_tokens > 0) || capacity < 0 ||
      (!buf && capacity > 0)) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_detokenize: invalid argument");
  }
  return guarded(nullptr, [&] {
    const nibble::Tokenizer& tok = *model->m->tokenizer;
    for (int32_t i = 0; i < n_tokens; ++i) {
      if (tokens[i] < 0 || tokens[i] >= tok.n_vocab()) {
        return fail(NIBBLE_ERR_INVALID_ARGUMENT,
                    "nibble_detokenize: token " + std::to_string(tokens[i]) + " out of range");
      }
    }
    const std::string text = tok.decode(std::vector<int32_t>(tokens, tokens + n_tokens));
    *n_out = static_cast<int32_t>(text.size());
    if (static_cast<int64_t>(text.size()) > capacity) {
      return fail(NIBBLE_ERR_BUFFER_TOO_SMALL, "nibble_detokenize: buffer too small");
    }
    std::memcpy(buf, text.data(), text.size());
    return NIBBLE_OK;
  });
}

int32_t nibble_token_bos(const nibble_model* model) { return model ? model->m->tokenizer->bos() : -1; }
int32_t nibble_token_eos(const nibble_model* model) { return model ? model->m->tokenizer->eos() : -1; }
int nibble_token_is_end_of_generation(const nibble_model* model, int32_t token) {
  return model && model->m->tokenizer->is_end_of_generation(token) ? 1 : 0;
}

nibble_status nibble_context_create(nibble_model* model, const nibble_context_params* params,
                                    nibble_context** out) {
  if (!out) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_context_create: out is NULL");
  *out = nullptr;
  if (!model) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_context_create: model is NULL");
  if (!model->m->model) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT,
                "nibble_context_create: the model was loaded vocabulary-only");
  }
  const nibble_context_params p = params ? *params : nibble_context_default_params();
  if (p.n_ctx < 0 || p.n_threads < 0 || p.n_batch < 0) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_context_create: negative size");
  }
  return guarded(nullptr, [&] {
    const nibble::ModelConfig& c = model->m->model->config();
    if (p.n_ctx > c.n_ctx_train) {
      log_msg(model, NIBBLE_LOG_WARN,
              "context " + std::to_string(p.n_ctx) + " is larger than the " +
                  std::to_string(c.n_ctx_train) +
                  " tokens the model states it was trained on; quality may drop past that");
    }
    nibble::SessionOptions so;
    so.n_ctx = p.n_ctx;
    so.n_threads = p.n_threads;
    so.n_batch = p.n_batch > 0 ? p.n_batch : 512;
    auto ctx = std::make_unique<nibble_context>();
    ctx->model = model;
    ctx->session = std::make_unique<nibble::Session>(*model->m->model, so);
    *out = ctx.release();
    return NIBBLE_OK;
  });
}

void nibble_context_free(nibble_context* ctx) { delete ctx; }
const char* nibble_context_last_error(const nibble_context* ctx) {
  return ctx ? ctx->error.c_str() : "context is NULL";
}
int32_t nibble_context_size(const nibble_context* ctx) {
  return ctx ? static_cast<int32_t>(ctx->session->n_ctx()) : 0;
}
int32_t nibble_context_used(const nibble_context* ctx) {
  return ctx ? static_cast<int32_t>(ctx->session->n_past()) : 0;
}
int32_t nibble_context_threads(const nibble_context* ctx) {
  return ctx ? ctx->session->n_threads() : 0;
}

nibble_status nibble_context_set_gemm(nibble_context* ctx, const char* name) {
  if (!ctx || !name) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_context_set_gemm: ctx or name is NULL", ctx);
  return guarded(ctx, [&] {
    ctx->session->set_gemm(name);
    return NIBBLE_OK;
  });
}

const char* nibble_context_gemm(const nibble_context* ctx) {
  if (!ctx) return "";
  const std::string gemm = ctx->session->gemm();
  for (const char* name : {"amx", "onednn"})
    if (gemm == name) return name;
  return "nibble";
}

nibble_status nibble_context_reset(nibble_context* ctx) {
  if (!ctx) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_context_reset: ctx is NULL");
  ctx->session->reset();
  return NIBBLE_OK;
}

nibble_status nibble_eval(nibble_context* ctx, const int32_t* tokens, int32_t n) {
  if (!ctx || n < 0 || (!tokens && n > 0)) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_eval: invalid argument", ctx);
  }
  return guarded(ctx, [&] {
    const int32_t vocab = static_cast<int32_t>(ctx->session->n_vocab());
    for (int32_t i = 0; i < n; ++i) {
      if (tokens[i] < 0 || tokens[i] >= vocab) {
        return fail(NIBBLE_ERR_INVALID_ARGUMENT,
                    "nibble_eval: token " + std::to_string(tokens[i]) + " out of range", ctx);
      }
    }
    ctx->session->eval(tokens, n);
    return NIBBLE_OK;
  });
}

const float* nibble_get_logits(const nibble_context* ctx) {
  if (!ctx || ctx->session->n_past() == 0) return nullptr;
  return ctx->session->last_logits().data();
}

namespace {
nibble::SamplerParams to_internal(const nibble_sampler_params& sp) {
  nibble::SamplerParams p;
  p.temperature = sp.temperature;
  p.top_k = sp.top_k;
  p.top_p = sp.top_p;
  p.min_p = sp.min_p;
  p.repeat_penalty = sp.repeat_penalty;
  p.repeat_last_n = sp.repeat_last_n;
  p.seed = sp.seed;
  return p;
}
}  // namespace

nibble_status nibble_sampler_create(const nibble_sampler_params* params, nibble_sampler** out) {
  if (!out) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_sampler_create: out is NULL");
  *out = nullptr;
  return guarded(nullptr, [&] {
    const nibble_sampler_params sp = params ? *params : nibble_sampler_default_params();
    *out = new nibble_sampler{nibble::Sampler(to_internal(sp))};
    return NIBBLE_OK;
  });
}

void nibble_sampler_free(nibble_sampler* sampler) { delete sampler; }

nibble_status nibble_sampler_sample(nibble_sampler* sampler, const nibble_context* ctx,
                                    int32_t* token) {
  if (!sampler || !ctx || !token) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_sampler_sample: NULL argument");
  }
  if (ctx->session->n_past() == 0) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_sampler_sample: nothing evaluated yet");
  }
  return guarded(nullptr, [&] {
    *token = sampler->s.sample(ctx->session->last_logits().data(), ctx->session->n_vocab());
    return NIBBLE_OK;
  });
}

void nibble_sampler_accept(nibble_sampler* sampler, int32_t token) {
  if (sampler) sampler->s.accept(token);
}

namespace {

nibble_status generate_after(nibble_context* ctx, const std::vector<int32_t>& ids, int32_t n_predict,
                             const nibble_sampler_params* sampler, nibble_piece_fn on_piece, void* user,
                             nibble_generate_stats* stats) {
  if (ids.empty()) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_generate: empty prompt", ctx);
  const nibble::Tokenizer& tok = *ctx->model->m->tokenizer;
  for (int32_t id : ids) {
    if (id < 0 || id >= tok.n_vocab()) {
      return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_generate: token " + std::to_string(id) + " out of range",
                  ctx);
    }
  }
  if (static_cast<int64_t>(ids.size()) + ctx->session->n_past() > ctx->session->n_ctx()) {
    return fail(NIBBLE_ERR_CONTEXT_FULL,
                "prompt of " + std::to_string(ids.size()) + " tokens does not fit in the context of " +
                    std::to_string(ctx->session->n_ctx()) + " (" + std::to_string(ctx->session->n_past()) +
                    " used); raise -c",
                ctx);
  }
  nibble::Sampler s(to_internal(sampler ? *sampler : nibble_sampler_default_params()));
  const auto st = nibble::generate(*ctx->session, tok, s, ids, n_predict, [&](std::string_view text) {
    return !on_piece || on_piece(text.data(), text.size(), user) != 0;
  });
  if (stats) {
    stats->n_prompt = static_cast<int32_t>(st.n_prompt);
    stats->n_generated = static_cast<int32_t>(st.n_generated);
    stats->prompt_seconds = st.prompt_seconds;
    stats->gen_seconds = st.gen_seconds;
    stats->hit_context_limit = st.hit_context_limit;
    stats->hit_end_of_generation = st.hit_end_of_generation;
    stats->aborted = st.aborted;
  }
  return st.aborted ? NIBBLE_ERR_ABORTED : NIBBLE_OK;
}

}  // namespace

nibble_status nibble_generate(nibble_context* ctx, const char* prompt, int32_t n_predict,
                              const nibble_sampler_params* sampler, nibble_piece_fn on_piece,
                              void* user, nibble_generate_stats* stats) {
  if (!ctx || !prompt) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_generate: NULL argument", ctx);
  }
  return guarded(ctx, [&] {
    // BOS only at the start of a conversation.
    const bool at_start = ctx->session->n_past() == 0;
    const std::vector<int32_t> ids = ctx->model->m->tokenizer->encode(prompt, at_start);
    return generate_after(ctx, ids, n_predict, sampler, on_piece, user, stats);
  });
}

nibble_status nibble_generate_tokens(nibble_context* ctx, const int32_t* tokens, int32_t n_tokens,
                                     int32_t n_predict, const nibble_sampler_params* sampler,
                                     nibble_piece_fn on_piece, void* user, nibble_generate_stats* stats) {
  if (!ctx || n_tokens < 0 || (!tokens && n_tokens > 0)) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_generate_tokens: invalid argument", ctx);
  }
  return guarded(ctx, [&] {
    return generate_after(ctx, std::vector<int32_t>(tokens, tokens + n_tokens), n_predict, sampler, on_piece,
                          user, stats);
  });
}

const char* nibble_chat_format(const nibble_model* model, const char* template_name) {
  if (!model) {
    fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_chat_format: NULL model");
    return nullptr;
  }
  const char* name = nullptr;
  guarded(nullptr, [&] {
    name = nibble::chat_format_name(
        nibble::choose_chat_format(model->m->tokenizer->vocab(), template_name ? template_name : ""));
    return NIBBLE_OK;
  });
  return name;
}

nibble_status nibble_chat_apply(const nibble_model* model, const char* template_name,
                                const nibble_chat_message* messages, size_t n_messages,
                                int add_generation_prompt, char* buf, int32_t capacity, int32_t* n_out) {
  if (!model || !n_out || capacity < 0 || (!buf && capacity > 0) || (!messages && n_messages > 0)) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_chat_apply: invalid argument");
  }
  return guarded(nullptr, [&] {
    std::vector<nibble::ChatMessage> msgs;
    for (size_t i = 0; i < n_messages; ++i) {
      if (!messages[i].role || !messages[i].content) {
        return fail(NIBBLE_ERR_INVALID_ARGUMENT,
                    "nibble_chat_apply: message " + std::to_string(i) + " has a NULL role or content");
      }
      msgs.push_back({messages[i].role, messages[i].content});
    }
    const nibble::ChatFormat f =
        nibble::choose_chat_format(model->m->tokenizer->vocab(), template_name ? template_name : "");
    const std::string text = nibble::format_chat(f, msgs, add_generation_prompt != 0);
    if (text.size() > static_cast<size_t>(INT32_MAX - 1)) {
      return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_chat_apply: conversation too long");
    }
    *n_out = static_cast<int32_t>(text.size());
    if (static_cast<int64_t>(text.size()) >= capacity) {
      return fail(NIBBLE_ERR_BUFFER_TOO_SMALL, "nibble_chat_apply: " + std::to_string(text.size() + 1) +
                                                   " bytes needed, capacity " + std::to_string(capacity));
    }
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    return NIBBLE_OK;
  });
}

nibble_perplexity_params nibble_perplexity_default_params(void) {
  nibble_perplexity_params p{};
  p.n_ctx = 512;
  p.n_chunks = -1;
  return p;
}

nibble_status nibble_perplexity(nibble_model* model, nibble_model* ref, const char* text,
                                size_t len, const nibble_perplexity_params* params,
                                nibble_perplexity_result* out) {
  if (!model || !out || (!text && len)) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_perplexity: NULL argument");
  }
  if (!model->m->model || (ref && !ref->m->model)) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_perplexity: model loaded vocabulary-only");
  }
  const nibble_perplexity_params p = params ? *params : nibble_perplexity_default_params();
  if (p.n_ctx <= 0 || p.n_threads < 0 || p.n_batch < 0) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_perplexity: bad sizes");
  }
  return guarded(nullptr, [&] {
    *out = nibble_perplexity_result{};
    for (const nibble_model* m : {static_cast<const nibble_model*>(model),
                                  static_cast<const nibble_model*>(ref)}) {
      if (m && p.n_ctx > m->m->model->config().n_ctx_train) {
        log_msg(m, NIBBLE_LOG_WARN,
                "context " + std::to_string(p.n_ctx) + " is larger than the " +
                    std::to_string(m->m->model->config().n_ctx_train) +
                    " tokens the model states it was trained on");
      }
    }
    nibble::SessionOptions so;
    so.n_ctx = p.n_ctx;
    so.n_threads = p.n_threads;
    so.n_batch = p.n_batch > 0 ? p.n_batch : p.n_ctx;
    nibble::Session session(*model->m->model, so);
    std::unique_ptr<nibble::Session> ref_session;
    if (ref) ref_session = std::make_unique<nibble::Session>(*ref->m->model, so);
    const char* gemm = p.gemm ? p.gemm : "auto";
    session.set_gemm(gemm);
    if (ref_session) ref_session->set_gemm(gemm);
    struct Stop {};
    nibble::PerplexityOptions po;
    po.n_ctx = p.n_ctx;
    po.max_chunks = p.n_chunks;
    if (p.save_logits) po.save_logits = p.save_logits;
    if (p.ref_logits) po.ref_logits = p.ref_logits;
    int32_t planned = 0;
    if (p.on_chunk) {
      po.on_chunk = [&](int64_t c, const nibble::PerplexityResult& r) {
        if (!p.on_chunk(static_cast<int32_t>(c), planned, r.ppl, p.user)) throw Stop{};
      };
    }
    const nibble::Tokenizer& tok = *model->m->tokenizer;
    const std::vector<int32_t> tokens = tok.encode(std::string_view(text ? text : "", len), true);
    planned = static_cast<int32_t>(
        nibble::plan_chunks(static_cast<int64_t>(tokens.size()), p.n_ctx, p.n_chunks).n_chunks);
    nibble::PerplexityResult r;
    try {
      r = nibble::evaluate_perplexity(session, tokens, tok.add_bos() ? tok.bos() : -1, po,
                                      ref_session.get());
    } catch (const Stop&) {
      return fail(NIBBLE_ERR_ABORTED, "perplexity stopped by the callback");
    }
    out->ppl = r.ppl;
    out->ppl_stderr = r.ppl_stderr;
    out->n_scored = r.n_scored;
    out->n_chunks = static_cast<int32_t>(r.n_chunks);
    out->tokens_per_s = r.tokens_per_s;
    out->has_ref = r.has_ref;
    if (r.has_ref) {
      out->ref_ppl = r.ref_ppl;
      out->ref_ppl_stderr = r.ref_ppl_stderr;
      out->ppl_ratio = r.ref_ppl > 0 ? r.ppl / r.ref_ppl : 0;
      out->delta_ppl = r.ppl - r.ref_ppl;
      out->kld_mean = r.kld_mean;
      out->kld_p90 = r.kld_p90;
      out->kld_p99 = r.kld_p99;
      out->kld_max = r.kld_max;
      out->top1_agreement = r.top1_agreement;
      out->dp_rms = r.dp_rms;
    }
    return NIBBLE_OK;
  });
}

nibble_status nibble_quantize(const char* in, const char* out, const char* recipe,
                              const char* tokenizer_path) {
  if (!in || !out || !recipe) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_quantize: NULL argument");
  nibble_quantize_params p = nibble_quantize_default_params();
  p.tokenizer_path = tokenizer_path;
  return nibble_quantize_model(in, out, recipe, &p, nullptr);
}

int nibble_quantize_recipe(int32_t i, const char** name, const char** description) {
  const auto& r = nibble::gguf_recipes();
  if (i < 0 || static_cast<size_t>(i) >= r.size()) return 0;
  if (name) *name = r[i].name;
  if (description) *description = r[i].description;
  return 1;
}

}  // extern "C"

// ---- Quantization with results, recipes, and file inspection (nibble's own format issue).

struct nibble_quantize_result {
  nibble::QuantizeResult r;
  std::vector<std::string> src_types, types;  // type names the C structs point at
};

struct nibble_file {
  nibble::ModelFile f;
  std::vector<std::string> types;  // per tensor
  std::vector<std::string> layouts;
  std::vector<std::pair<const std::string*, const nibble::MetaValue*>> meta;  // key order
};

namespace {

const char* meta_type_name(nibble::MetaType t) {
  static const char* const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                      "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < 13 ? names[i] : "unknown";
}

bool meta_signed(nibble::MetaType t) {
  using nibble::MetaType;
  return t == MetaType::I8 || t == MetaType::I16 || t == MetaType::I32 || t == MetaType::I64;
}

std::string number_text(double v, bool f64) {
  char buf[40];
  std::snprintf(buf, sizeof buf, f64 ? "%.17g" : "%.9g", v);
  return buf;
}

std::string meta_text(const nibble::MetaValue& v, int32_t max_elems) {
  using nibble::MetaType;
  switch (v.type) {
    case MetaType::String:
      return v.s;
    case MetaType::Bool:
      return v.u ? "true" : "false";
    case MetaType::F32:
    case MetaType::F64:
      return number_text(v.f, v.type == MetaType::F64);
    case MetaType::Array:
      break;
    default:
      return meta_signed(v.type) ? std::to_string(v.i) : std::to_string(v.u);
  }
  if (v.array_len > static_cast<uint64_t>(std::max<int32_t>(max_elems, 0)) ||
      v.elem_type == MetaType::Array) {
    return "[array of " + std::to_string(v.array_len) + " " + meta_type_name(v.elem_type) + "]";
  }
  std::string s = "[";
  for (uint64_t k = 0; k < v.array_len; ++k) {
    if (k) s += ", ";
    if (v.elem_type == MetaType::String) {
      s += k < v.strs.size() ? v.strs[k] : "";
    } else if (v.elem_type == MetaType::F32 || v.elem_type == MetaType::F64) {
      s += k < v.nums.size() ? number_text(v.nums[k], v.elem_type == MetaType::F64) : "";
    } else if (v.elem_type == MetaType::Bool) {
      s += k < v.ints.size() && v.ints[k] ? "true" : "false";
    } else {
      s += k < v.ints.size() ? (meta_signed(v.elem_type) ? std::to_string(v.ints[k])
                                                         : std::to_string(static_cast<uint64_t>(v.ints[k])))
                             : "";
    }
  }
  return s + "]";
}

void copy_dims(const std::vector<uint64_t>& dims, int32_t* n_dims, uint64_t* out) {
  *n_dims = static_cast<int32_t>(std::min<size_t>(dims.size(), 4));
  for (int32_t d = 0; d < 4; ++d) out[d] = d < *n_dims ? dims[d] : 1;
}

}  // namespace

extern "C" {

int nibble_quantize_recipe_info(int32_t i, const char** name, const char** extension,
                                const char** description) {
  const auto& r = nibble::all_recipes();
  if (i < 0 || static_cast<size_t>(i) >= r.size()) return 0;
  if (name) *name = r[i].name;
  if (extension) *extension = r[i].extension;
  if (description) *description = r[i].description;
  return 1;
}

nibble_quantize_params nibble_quantize_default_params(void) {
  nibble_quantize_params p{};
  return p;
}

nibble_status nibble_quantize_model(const char* in, const char* out, const char* recipe,
                                    const nibble_quantize_params* params,
                                    nibble_quantize_result** result) {
  if (result) *result = nullptr;
  if (!in || !out || !recipe) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_quantize_model: NULL argument");
  }
  return guarded(nullptr, [&] {
    const nibble_quantize_params p = params ? *params : nibble_quantize_default_params();
    nibble::QuantizeOptions o;
    if (p.tokenizer_path) o.tokenizer_path = p.tokenizer_path;
    o.measure = p.measure != 0;
    if (p.calib_path) {
      o.calib.text_path = p.calib_path;
      if (p.calib_chunks < 0 || p.calib_ctx < 0 || p.gptq_block < 0 || p.gptq_damp < 0) {
        throw std::invalid_argument("negative calibration parameter");
      }
      if (p.calib_chunks > 0) o.calib.n_chunks = p.calib_chunks;
      if (p.calib_ctx > 0) o.calib.n_ctx = p.calib_ctx;
      if (p.seed != 0) o.calib.seed = p.seed;
      if (p.n_threads > 0) o.calib.n_threads = p.n_threads;
    }
    if (p.smooth_alpha != 0.0f) o.smooth_alpha = p.smooth_alpha;
    if (p.act_calib) o.act_calib = nibble::parse_act_calib(p.act_calib);
    if (p.outlier_threshold < 0.0f) throw std::invalid_argument("the outlier threshold must be positive");
    if (p.outlier_threshold > 0.0f) o.outlier_threshold = p.outlier_threshold;
    if (p.target_bpw < 0 || p.sensitivity_sequences < 0) throw std::invalid_argument("negative size target");
    o.target_bpw = p.target_bpw;
    o.target_size = p.target_size;
    if (p.sensitivity_sequences > 0) o.sensitivity_sequences = p.sensitivity_sequences;
    o.awq = p.awq != 0;
    o.awq_options.clip = p.awq_no_clip == 0;
    o.gptq = p.gptq != 0;
    if ((p.act_order || p.gptq_damp > 0 || p.gptq_block > 0) && !o.gptq) {
      throw std::invalid_argument("--act-order, --damp and --gptq-block are GPTQ's: add --gptq");
    }
    if (p.gptq_damp > 0) o.gptq_options.damp = p.gptq_damp;
    if (p.gptq_block > 0) o.gptq_options.block = p.gptq_block;
    o.gptq_options.act_order = p.act_order != 0;
    auto res = std::make_unique<nibble_quantize_result>();
    res->r = nibble::quantize_model(in, out, recipe, o);
    for (const nibble::TensorQuantStats& t : res->r.tensors) {
      res->src_types.push_back(nibble::type_name(static_cast<uint32_t>(t.src_type)));
      res->types.push_back(nibble::type_name(static_cast<uint32_t>(t.type)));
    }
    if (result) *result = res.release();
    return NIBBLE_OK;
  });
}

nibble_status nibble_quantize_result_summary(const nibble_quantize_result* result,
                                             nibble_quantize_summary* out) {
  if (!result || !out) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_quantize_result_summary: NULL argument");
  const nibble::QuantizeResult& r = result->r;
  *out = nibble_quantize_summary{};
  out->container = r.container.c_str();
  out->recipe = r.recipe.c_str();
  out->n_tensors = static_cast<int64_t>(r.n_tensors);
  out->n_params = r.n_params;
  out->src_bytes = r.src_bytes;
  out->tensor_bytes = r.tensor_bytes;
  out->file_bytes = r.file_bytes;
  out->bits_per_weight = r.n_params ? 8.0 * static_cast<double>(r.tensor_bytes) / static_cast<double>(r.n_params) : 0;
  out->f16_bytes = 2 * r.n_params;
  out->compression_vs_f16 = r.tensor_bytes ? static_cast<double>(out->f16_bytes) / static_cast<double>(r.tensor_bytes) : 0;
  out->measured = r.measured;
  out->mse = r.mse;
  out->snr_db = r.snr_db;
  out->max_abs_err = r.max_abs_err;
  out->calibration = r.calibration.c_str();
  out->calib_seconds = r.calib_seconds;
  out->calib_bytes = r.calib_bytes;
  out->gptq_tensors = r.gptq_tensors;
  out->gptq_loss_rtn = r.gptq_loss_rtn;
  out->gptq_loss = r.gptq_loss;
  out->awq_seconds = r.awq.seconds;
  out->gptq_seconds = r.gptq_seconds;
  out->allocation = r.allocation_summary.c_str();
  return NIBBLE_OK;
}

int64_t nibble_quantize_result_tensor_count(const nibble_quantize_result* result) {
  return result ? static_cast<int64_t>(result->r.tensors.size()) : 0;
}

nibble_status nibble_quantize_result_tensor(const nibble_quantize_result* result, int64_t i,
                                            nibble_quantize_tensor* out) {
  if (!result || !out) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_quantize_result_tensor: NULL argument");
  if (i < 0 || static_cast<uint64_t>(i) >= result->r.tensors.size()) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_quantize_result_tensor: index out of range");
  }
  const nibble::TensorQuantStats& t = result->r.tensors[static_cast<size_t>(i)];
  *out = nibble_quantize_tensor{};
  out->name = t.name.c_str();
  out->src_type = result->src_types[static_cast<size_t>(i)].c_str();
  out->type = result->types[static_cast<size_t>(i)].c_str();
  out->layout = t.layout;
  copy_dims(t.dims, &out->n_dims, out->dims);
  out->n_elements = t.n_elements;
  out->bytes = t.bytes;
  out->copied = t.copied;
  out->mse = t.mse;
  out->snr_db = t.snr_db;
  out->cosine = t.cosine;
  out->max_abs_err = t.max_abs_err;
  out->out_err_rtn = t.out_err_rtn;
  out->out_err = t.out_err;
  return NIBBLE_OK;
}

int64_t nibble_quantize_result_awq_count(const nibble_quantize_result* result) {
  return result ? static_cast<int64_t>(result->r.awq.groups.size()) : 0;
}

nibble_status nibble_quantize_result_awq_group(const nibble_quantize_result* result, int64_t i,
                                               nibble_quantize_awq_group* out) {
  if (!result || !out) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_quantize_result_awq_group: NULL argument");
  if (i < 0 || static_cast<uint64_t>(i) >= result->r.awq.groups.size()) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_quantize_result_awq_group: index out of range");
  }
  const nibble::AwqGroupReport& g = result->r.awq.groups[static_cast<size_t>(i)];
  out->group = g.group.c_str();
  out->alpha = g.alpha;
  out->rel_err_rtn = g.rel_err_rtn;
  out->rel_err_awq = g.rel_err_awq;
  return NIBBLE_OK;
}

void nibble_quantize_result_free(nibble_quantize_result* result) { delete result; }

nibble_status nibble_file_open(const char* path, nibble_file** out) {
  if (!out) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_file_open: out is NULL");
  *out = nullptr;
  if (!path) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_file_open: path is NULL");
  return guarded(nullptr, [&] {
    auto f = std::make_unique<nibble_file>();
    f->f = nibble::open_model_file(path);
    for (const nibble::TensorInfo& t : f->f.tensors) {
      f->types.push_back(nibble::type_name(static_cast<uint32_t>(t.type)));
      f->layouts.push_back(t.layout == 0 ? "plain" : t.layout == 1 ? "packed4" : "layout " + std::to_string(t.layout));
    }
    for (const auto& [key, value] : f->f.meta.entries()) f->meta.emplace_back(&key, &value);
    *out = f.release();
    return NIBBLE_OK;
  });
}

void nibble_file_free(nibble_file* file) { delete file; }

nibble_status nibble_file_get_info(const nibble_file* file, nibble_file_info* out) {
  if (!file || !out) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_file_get_info: NULL argument");
  *out = nibble_file_info{};
  out->format = file->f.format.c_str();
  out->version_major = file->f.version;
  out->version_minor = file->f.version_minor;
  out->file_bytes = file->f.mapping ? file->f.mapping->size() : 0;
  out->n_tensors = static_cast<int64_t>(file->f.tensors.size());
  out->n_meta = static_cast<int64_t>(file->meta.size());
  return NIBBLE_OK;
}

nibble_status nibble_file_tensor(const nibble_file* file, int64_t i, nibble_tensor_info* out) {
  if (!file || !out) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_file_tensor: NULL argument");
  if (i < 0 || static_cast<uint64_t>(i) >= file->f.tensors.size()) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_file_tensor: index out of range");
  }
  const auto k = static_cast<size_t>(i);
  const nibble::TensorInfo& t = file->f.tensors[k];
  *out = nibble_tensor_info{};
  out->name = t.name.c_str();
  out->type = file->types[k].c_str();
  out->type_id = static_cast<uint32_t>(t.type);
  out->layout = t.layout;
  out->layout_name = file->layouts[k].c_str();
  copy_dims(t.dims, &out->n_dims, out->dims);
  out->n_elements = t.n_elements();
  out->offset = t.file_offset;
  out->bytes = t.nbytes;
  out->has_checksum = t.has_checksum;
  out->checksum = t.checksum;
  return NIBBLE_OK;
}

nibble_status nibble_file_meta(const nibble_file* file, int64_t i, nibble_meta_entry* out) {
  if (!file || !out) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_file_meta: NULL argument");
  if (i < 0 || static_cast<uint64_t>(i) >= file->meta.size()) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_file_meta: index out of range");
  }
  const auto& [key, v] = file->meta[static_cast<size_t>(i)];
  out->key = key->c_str();
  out->type = meta_type_name(v->type);
  const bool array = v->type == nibble::MetaType::Array;
  out->elem_type = array ? meta_type_name(v->elem_type) : "";
  out->array_len = array ? v->array_len : 0;
  return NIBBLE_OK;
}

nibble_status nibble_file_meta_text(const nibble_file* file, int64_t i, int32_t max_elems,
                                    char* buf, int32_t capacity, int32_t* n_out) {
  if (!file || !n_out || (!buf && capacity > 0)) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_file_meta_text: NULL argument");
  }
  if (i < 0 || static_cast<uint64_t>(i) >= file->meta.size()) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_file_meta_text: index out of range");
  }
  return guarded(nullptr, [&] {
    const std::string text = meta_text(*file->meta[static_cast<size_t>(i)].second, max_elems);
    if (text.size() >= static_cast<size_t>(INT32_MAX)) {
      return fail(NIBBLE_ERR_INTERNAL, "nibble_file_meta_text: value too long");
    }
    *n_out = static_cast<int32_t>(text.size());
    if (capacity <= *n_out) return fail(NIBBLE_ERR_BUFFER_TOO_SMALL, "nibble_file_meta_text: buffer too small");
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    return NIBBLE_OK;
  });
}

nibble_status nibble_file_verify(const nibble_file* file, int64_t* n_checked) {
  if (n_checked) *n_checked = 0;
  if (!file) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_file_verify: NULL argument");
  return guarded(nullptr, [&] {
    const nibble::VerifyResult v = nibble::verify_checksums(file->f);
    if (n_checked) *n_checked = static_cast<int64_t>(v.checked);
    if (v.failed.empty()) return NIBBLE_OK;
    std::string msg = file->f.path + ": " + std::to_string(v.failed.size()) + " of " +
                      std::to_string(v.checked) + " tensors fail their checksum (the data is corrupt): ";
    for (size_t k = 0; k < v.failed.size(); ++k) msg += (k ? "; " : "") + v.failed[k];
    return fail(NIBBLE_ERR_FILE, msg);
  });
}

}  // extern "C"
