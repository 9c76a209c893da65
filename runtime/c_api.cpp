// The C boundary: every exception stops here and becomes a status plus a message.
#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <new>
#include <string>

#include "include/nibble/nibble.h"
#include "kernels/dispatch.h"
#include "loaders/mapped_file.h"
#include "quant/gguf_quantize.h"
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

nibble_status nibble_generate(nibble_context* ctx, const char* prompt, int32_t n_predict,
                              const nibble_sampler_params* sampler, nibble_piece_fn on_piece,
                              void* user, nibble_generate_stats* stats) {
  if (!ctx || !prompt) {
    return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_generate: NULL argument", ctx);
  }
  return guarded(ctx, [&] {
    nibble::Sampler s(to_internal(sampler ? *sampler : nibble_sampler_default_params()));
    const nibble::Tokenizer& tok = *ctx->model->m->tokenizer;
    // BOS only at the start of a conversation.
    const bool at_start = ctx->session->n_past() == 0;
    const std::vector<int32_t> ids = tok.encode(prompt, at_start);
    if (ids.empty()) return fail(NIBBLE_ERR_INVALID_ARGUMENT, "nibble_generate: empty prompt", ctx);
    if (static_cast<int64_t>(ids.size()) + ctx->session->n_past() > ctx->session->n_ctx()) {
      return fail(NIBBLE_ERR_CONTEXT_FULL,
                  "prompt of " + std::to_string(ids.size()) + " tokens does not fit in the context of " +
                      std::to_string(ctx->session->n_ctx()) + " (" +
                      std::to_string(ctx->session->n_past()) + " used); raise -c",
                  ctx);
    }
    const auto st = nibble::generate(*ctx->session, tok, s, ids, n_predict,
                                     [&](std::string_view text) {
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
  return guarded(nullptr, [&] {
    const std::string o = out;
    if (o.size() < 5 || o.compare(o.size() - 5, 5, ".gguf") != 0) {
      return fail(NIBBLE_ERR_INVALID_ARGUMENT,
                  "nibble_quantize: '" + o + "': only GGUF output (.gguf) is supported so far");
    }
    nibble::quantize_to_gguf(in, o, recipe, tokenizer_path ? tokenizer_path : "");
    return NIBBLE_OK;
  });
}

int nibble_quantize_recipe(int32_t i, const char** name, const char** description) {
  const auto& r = nibble::gguf_recipes();
  if (i < 0 || static_cast<size_t>(i) >= r.size()) return 0;
  if (name) *name = r[i].name;
  if (description) *description = r[i].description;
  return 1;
}

}  // extern "C"
