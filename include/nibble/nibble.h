/* nibble — run quantized transformer language models on the CPU.
 *
 * The stable C interface: apps and nibble's own command-line tools include only this header.
 * Every function returns a status (or a value documented below) and never throws or aborts;
 * on failure the message is available from nibble_last_error() (per thread) or
 * nibble_context_last_error() (per context). Handles are opaque. A model is read-only once
 * loaded and may be shared by several contexts, each used by one thread at a time. */
#ifndef NIBBLE_NIBBLE_H_
#define NIBBLE_NIBBLE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define NIBBLE_API __attribute__((visibility("default")))
#else
#define NIBBLE_API
#endif

typedef enum nibble_status {
  NIBBLE_OK = 0,
  NIBBLE_ERR_INVALID_ARGUMENT = 1, /* null handle, bad size, out-of-range value */
  NIBBLE_ERR_FILE = 2,             /* model/tokenizer file missing, corrupt or unsupported */
  NIBBLE_ERR_CONTEXT_FULL = 3,     /* tokens do not fit in the context */
  NIBBLE_ERR_ABORTED = 4,          /* a callback asked to stop */
  NIBBLE_ERR_BUFFER_TOO_SMALL = 5, /* output capacity too small; *n_out holds the size needed */
  NIBBLE_ERR_INTERNAL = 6          /* anything else (out of memory, ...) */
} nibble_status;

typedef struct nibble_model nibble_model;
typedef struct nibble_context nibble_context;

/* Log messages (warnings such as a context larger than the model was trained for). */
typedef enum nibble_log_level { NIBBLE_LOG_INFO = 0, NIBBLE_LOG_WARN = 1 } nibble_log_level;
typedef void (*nibble_log_fn)(nibble_log_level level, const char* message, void* user);

typedef struct nibble_model_params {
  const char* tokenizer_path; /* sentencepiece .model for files without a vocabulary, or NULL */
  int use_mmap;               /* 1 (default): map the file; 0: read it into memory */
  int vocab_only;             /* 1: load only the tokenizer (vocabulary-only GGUF files) */
  nibble_log_fn log;          /* NULL: warnings go to stderr */
  void* log_user;
  /* Called with the fraction of the load done (0..1); return 0 to cancel the load, which then
   * fails with NIBBLE_ERR_ABORTED. May be NULL. */
  int (*progress)(float fraction, void* user);
  void* progress_user;
} nibble_model_params;

typedef struct nibble_context_params {
  int32_t n_ctx;     /* 0: the model's trained context length */
  int32_t n_threads; /* 0: physical cores */
  int32_t n_batch;   /* prompt tokens per forward pass (default 512) */
} nibble_context_params;

typedef struct nibble_sampler_params {
  float temperature;    /* default 0.8; <= 0 is greedy argmax with all else bypassed */
  int32_t top_k;        /* default 40; <= 0 off */
  float top_p;          /* default 0.95; >= 1 off */
  float min_p;          /* default 0.05; <= 0 off */
  float repeat_penalty; /* default 1.0 (off) */
  int32_t repeat_last_n;/* default 64 */
  uint64_t seed;        /* random seed */
} nibble_sampler_params;

typedef struct nibble_model_info {
  const char* architecture; /* e.g. "llama"; valid while the model lives */
  const char* name;         /* general.name or "" */
  int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train;
  uint64_t file_bytes;
  uint64_t n_params;     /* elements of all tensors in the file */
  uint64_t tensor_bytes; /* bytes of all tensors (bits per weight = 8·tensor_bytes/n_params) */
} nibble_model_info;

typedef struct nibble_generate_stats {
  int32_t n_prompt, n_generated;
  double prompt_seconds, gen_seconds;
  int hit_context_limit, hit_end_of_generation, aborted;
} nibble_generate_stats;

/* Receives each piece of generated text (complete UTF-8); return 0 to stop generating. */
typedef int (*nibble_piece_fn)(const char* text, size_t len, void* user);

NIBBLE_API const char* nibble_version(void);
/* Message of the last failed call on this thread (load, tokenize, model-level calls). */
NIBBLE_API const char* nibble_last_error(void);
/* Name of the instruction set the kernels use on this CPU ("AVX3_DL", "AVX2_VNNI", "AVX2", ...). */
NIBBLE_API const char* nibble_isa(void);

NIBBLE_API nibble_model_params nibble_model_default_params(void);
NIBBLE_API nibble_context_params nibble_context_default_params(void);
NIBBLE_API nibble_sampler_params nibble_sampler_default_params(void);

NIBBLE_API nibble_status nibble_model_load(const char* path, const nibble_model_params* params,
                                           nibble_model** out);
NIBBLE_API void nibble_model_free(nibble_model* model);
NIBBLE_API nibble_status nibble_model_get_info(const nibble_model* model, nibble_model_info* out);

/* Token ids of text. add_special: BOS/EOS as the vocabulary says; parse_special: text like
 * "<s>" becomes the control token. NIBBLE_ERR_BUFFER_TOO_SMALL sets *n_out to the count. */
NIBBLE_API nibble_status nibble_tokenize(const nibble_model* model, const char* text, size_t len,
                                         int add_special, int parse_special, int32_t* tokens,
                                         int32_t capacity, int32_t* n_out);
/* Bytes of one token as it reads after other text (may be a partial UTF-8 character). */
NIBBLE_API nibble_status nibble_token_to_piece(const nibble_model* model, int32_t token,
                                               char* buf, int32_t capacity, int32_t* n_out);
/* Text of a token sequence (the leading space of the sentencepiece dummy prefix dropped).
 * NIBBLE_ERR_BUFFER_TOO_SMALL sets *n_out to the bytes needed. */
NIBBLE_API nibble_status nibble_detokenize(const nibble_model* model, const int32_t* tokens,
                                           int32_t n_tokens, char* buf, int32_t capacity,
                                           int32_t* n_out);
NIBBLE_API int32_t nibble_token_bos(const nibble_model* model);
NIBBLE_API int32_t nibble_token_eos(const nibble_model* model);
NIBBLE_API int nibble_token_is_end_of_generation(const nibble_model* model, int32_t token);

NIBBLE_API nibble_status nibble_context_create(nibble_model* model,
                                               const nibble_context_params* params,
                                               nibble_context** out);
NIBBLE_API void nibble_context_free(nibble_context* ctx);
NIBBLE_API const char* nibble_context_last_error(const nibble_context* ctx);
NIBBLE_API int32_t nibble_context_size(const nibble_context* ctx);
NIBBLE_API int32_t nibble_context_used(const nibble_context* ctx);
NIBBLE_API int32_t nibble_context_threads(const nibble_context* ctx);
/* Forgets the conversation; the context can be reused. */
NIBBLE_API nibble_status nibble_context_reset(nibble_context* ctx);
/* Chooses the matmul that evaluates prompts: "auto" (the default: "amx" where the CPU has AMX
 * tiles, else "nibble"), "nibble" (nibble's int8 kernels), "amx" (nibble's AMX-BF16 tile kernel:
 * weights decoded to bf16 per call, no copy kept) or "onednn" (oneDNN's bf16 matmul; weights get
 * a bf16 copy on the first prompt, 2 bytes per weight, which that prompt waits for). Generation
 * and prompts shorter than the chosen matmul's minimum (32 tokens for amx, 16 for onednn) always
 * use nibble's int8 kernels. NIBBLE_ERR_INVALID_ARGUMENT for an unknown name,
 * NIBBLE_ERR_INTERNAL when this CPU has no AMX ("amx") or this build no oneDNN ("onednn"). */
NIBBLE_API nibble_status nibble_context_set_gemm(nibble_context* ctx, const char* name);
/* The matmul prompts use now: "nibble", "amx" or "onednn" (what "auto" chose); "" for a NULL
 * ctx. */
NIBBLE_API const char* nibble_context_gemm(const nibble_context* ctx);

/* Appends tokens to the context and computes the logits of the last one. */
NIBBLE_API nibble_status nibble_eval(nibble_context* ctx, const int32_t* tokens, int32_t n);
/* Logits after the last nibble_eval (n_vocab floats, valid until the next eval), or NULL. */
NIBBLE_API const float* nibble_get_logits(const nibble_context* ctx);

/* A sampler with its own random state and recent-token history (for the repetition penalty),
 * for apps that drive the loop themselves: eval → sample → accept → eval ... */
typedef struct nibble_sampler nibble_sampler;
NIBBLE_API nibble_status nibble_sampler_create(const nibble_sampler_params* params,
                                               nibble_sampler** out);
NIBBLE_API void nibble_sampler_free(nibble_sampler* sampler);
/* Picks the next token from the context's current logits (does not accept it). */
NIBBLE_API nibble_status nibble_sampler_sample(nibble_sampler* sampler, const nibble_context* ctx,
                                               int32_t* token);
/* Records a token that entered the context (prompt or generated). */
NIBBLE_API void nibble_sampler_accept(nibble_sampler* sampler, int32_t token);

/* Tokenizes prompt (BOS added as the vocabulary says), evaluates it after what the context
 * holds, then generates up to n_predict tokens (< 0: until end of generation or a full
 * context), streaming text through on_piece. stats may be NULL. */
NIBBLE_API nibble_status nibble_generate(nibble_context* ctx, const char* prompt,
                                         int32_t n_predict, const nibble_sampler_params* sampler,
                                         nibble_piece_fn on_piece, void* user,
                                         nibble_generate_stats* stats);

/* Like nibble_generate, with the prompt already tokenized: the caller decides about BOS and
 * special-token parsing (a chat turn after the first one carries no BOS). */
NIBBLE_API nibble_status nibble_generate_tokens(nibble_context* ctx, const int32_t* tokens,
                                                int32_t n_tokens, int32_t n_predict,
                                                const nibble_sampler_params* sampler,
                                                nibble_piece_fn on_piece, void* user,
                                                nibble_generate_stats* stats);

/* Chat. nibble recognises the common chat-template families (ChatML, Llama 3, Gemma,
 * Llama 2 / Mistral [INST], Phi-3/4, Zephyr, DeepSeek) from the model's
 * tokenizer.chat_template and formats conversations itself (no Jinja). */
typedef struct nibble_chat_message {
  const char* role;    /* "system", "user" or "assistant" */
  const char* content;
} nibble_chat_message;

/* The chat format used for the model: template_name if not NULL/empty (a short name such as
 * "chatml", "llama3", "gemma", "mistral-v7"), else the one its chat template (or, without one,
 * its vocabulary's turn markers) says. Returns a static string, or NULL when none fits
 * (nibble_last_error() says why and lists the names). */
NIBBLE_API const char* nibble_chat_format(const nibble_model* model, const char* template_name);

/* Formats messages in that format; with add_generation_prompt the text ends where the
 * assistant's answer begins. Writes the text and a terminating NUL when capacity allows;
 * *n_out = the text's length without the NUL (NIBBLE_ERR_BUFFER_TOO_SMALL when capacity <=
 * *n_out). Tokenize the result with parse_special = 1, and add_special only for the first turn
 * of a conversation. */
NIBBLE_API nibble_status nibble_chat_apply(const nibble_model* model, const char* template_name,
                                           const nibble_chat_message* messages, size_t n_messages,
                                           int add_generation_prompt, char* buf, int32_t capacity,
                                           int32_t* n_out);

/* Perplexity the way llama.cpp's perplexity tool computes it (chunks of n_ctx tokens, BOS at
 * each chunk's start when the vocabulary adds BOS, second half of each chunk scored). With a
 * reference model (the same model at higher precision) also KL divergence and agreement. */
typedef struct nibble_perplexity_params {
  int32_t n_ctx;      /* chunk length (default 512) */
  int32_t n_chunks;   /* < 0: all whole chunks of the text */
  int32_t n_threads;  /* 0: physical cores */
  int32_t n_batch;    /* 0: n_ctx */
  /* Progress after each chunk; return 0 to stop. May be NULL. */
  int (*on_chunk)(int32_t chunk, int32_t n_chunks, double running_ppl, void* user);
  void* user;
  const char* save_logits; /* write this model's distributions here (reuse with ref_logits) */
  const char* ref_logits;  /* compare against distributions saved earlier instead of a ref model */
  const char* gemm;        /* the chunks' matmul, as nibble_context_set_gemm; NULL: "auto" */
} nibble_perplexity_params;

typedef struct nibble_perplexity_result {
  double ppl, ppl_stderr;
  int64_t n_scored;
  int32_t n_chunks;
  double tokens_per_s;
  int has_ref;
  double ref_ppl, ref_ppl_stderr, ppl_ratio, delta_ppl; /* delta = ppl - ref_ppl */
  double kld_mean, kld_p90, kld_p99, kld_max;
  double top1_agreement; /* fraction 0..1 */
  double dp_rms;         /* RMS of p(correct) - p_ref(correct) */
} nibble_perplexity_result;

NIBBLE_API nibble_perplexity_params nibble_perplexity_default_params(void);
/* ref may be NULL. Both models must share the vocabulary; the text is tokenized with model's. */
NIBBLE_API nibble_status nibble_perplexity(nibble_model* model, nibble_model* ref,
                                           const char* text, size_t len,
                                           const nibble_perplexity_params* params,
                                           nibble_perplexity_result* out);

/* Quantization: writes `out` from the model file `in` with a recipe. The container follows
 * out's extension: .gguf writes GGUF (recipes are GGUF type names such as "Q8_0", "Q4_0",
 * "F16"), anything else nibble's own file (docs/format.md; recipes "q8", "q4", "q4-g128",
 * "mixed", ...). `in` is a GGUF file, a llama2.c checkpoint or a Hugging Face LLaMA directory.
 * tokenizer_path: sentencepiece .model to embed when `in` has no vocabulary (llama2.c
 * checkpoints), else NULL. */
NIBBLE_API nibble_status nibble_quantize(const char* in, const char* out, const char* recipe,
                                         const char* tokenizer_path);
/* GGUF recipe names and one-line descriptions, i = 0, 1, ... until it returns 0
 * (nibble_quantize_recipe_info lists every recipe). */
NIBBLE_API int nibble_quantize_recipe(int32_t i, const char** name, const char** description);

/* Every recipe, nibble's own first, then GGUF's: name, the output extension it is for (".q4",
 * ".q8", ".f16" for nibble files, ".gguf"), and a one-line description; i = 0, 1, ... until it
 * returns 0. */
NIBBLE_API int nibble_quantize_recipe_info(int32_t i, const char** name, const char** extension,
                                           const char** description);

/* Start from nibble_quantize_default_params(): fields are only ever added at the end, and zero
 * means "the default" for each. */
typedef struct nibble_quantize_params {
  const char* tokenizer_path; /* as nibble_quantize's; NULL if the input carries a vocabulary */
  int measure; /* 1: per-tensor error of the dequantized weights against the originals */
  /* Calibrated quantization: the model runs at full precision over calib_path's text, and the
   * methods below use what its linear layers saw. Zero fields take the defaults. */
  const char* calib_path;  /* calibration text; NULL: round-to-nearest (the methods need one) */
  int32_t calib_chunks;    /* sequences drawn from it (default 128) */
  int32_t calib_ctx;       /* tokens per sequence (default min(512, the trained context)) */
  uint64_t seed;           /* which sequences (default 1) */
  int n_threads;           /* default: OpenMP's */
  int awq;                 /* 1: AWQ scales (and clipping search unless awq_no_clip) */
  int awq_no_clip;
  int gptq;                /* 1: GPTQ */
  float gptq_damp;         /* fraction of mean diag(H) added (default 0.01) */
  int32_t gptq_block;      /* lazy-batch columns (default 128) */
  int act_order;           /* GPTQ in order of decreasing diag(H), static groups */
  float smooth_alpha;      /* q8a8: SmoothQuant's migration strength in [0, 1] (default 0.5) */
  const char* act_calib;   /* q8a8: "minmax", "percentile[=99.99]", "kl" or "mse" (default) */
  float outlier_threshold; /* q8o: inputs with calibration max |x| above it stay F16 (default 6) */
  double target_bpw;       /* recipe "auto": bits per weight over all tensors, or ... */
  uint64_t target_size;    /* ... the output file's size in bytes (one of the two) */
  int32_t sensitivity_sequences; /* recipe "auto": calibration sequences per measurement (8) */
} nibble_quantize_params;

/* What a quantization wrote (and, when measured, how far each tensor moved). */
typedef struct nibble_quantize_result nibble_quantize_result;

typedef struct nibble_quantize_summary {
  const char* container; /* "nibble" or "gguf" */
  const char* recipe;
  int64_t n_tensors;
  uint64_t n_params;       /* weights in all tensors */
  uint64_t src_bytes;      /* the input's tensor bytes */
  uint64_t tensor_bytes;   /* the output's tensor bytes */
  uint64_t file_bytes;     /* the output file's size */
  double bits_per_weight;  /* 8 * tensor_bytes / n_params */
  uint64_t f16_bytes;      /* 2 * n_params: the same model in FP16 */
  double compression_vs_f16; /* f16_bytes / tensor_bytes */
  int measured;
  double mse, snr_db, max_abs_err; /* over all weights (measured only; snr_db may be +inf) */
  const char* calibration; /* calibrated runs: the methods and data, in words; else "" */
  double calib_seconds;    /* the calibration pass */
  uint64_t calib_bytes;    /* memory its statistics took */
  int64_t gptq_tensors;    /* GPTQ: tensors it quantized, and their summed output errors */
  double gptq_loss_rtn, gptq_loss; /* tr(E H E^T) of round-to-nearest (--report only) and of GPTQ */
  double awq_seconds, gptq_seconds; /* time in each method */
  const char* allocation;  /* recipe auto: the chosen types in words (also in the file); else "" */
} nibble_quantize_summary;

typedef struct nibble_quantize_tensor {
  const char* name;     /* valid while the result lives */
  const char* src_type; /* "F32", "Q6_K", ... */
  const char* type;     /* the output type: "Q4_0", "Q4_G128", ... */
  uint32_t layout;      /* 0 plain, 1 packed4 (kernels' layout, nibble files) */
  int32_t n_dims;
  uint64_t dims[4];     /* innermost first */
  uint64_t n_elements;
  uint64_t bytes;       /* in the output */
  int copied;           /* the source bytes were kept as they are (same type) */
  double mse, snr_db, cosine, max_abs_err; /* measured only; snr_db +inf when exact */
  /* Calibrated and measured, linear layers: output error on the calibration activations
   * relative to the output, of round-to-nearest and of what was written; else -1. */
  double out_err_rtn, out_err;
} nibble_quantize_tensor;

/* AWQ's search, one entry per scale group (calibrated runs with awq). */
typedef struct nibble_quantize_awq_group {
  const char* group;  /* "blk.3.attn_norm>q,k,v" */
  float alpha;        /* the chosen exponent (0: no scaling) */
  double rel_err_rtn, rel_err_awq; /* the group's relative output error before and after */
} nibble_quantize_awq_group;

NIBBLE_API nibble_quantize_params nibble_quantize_default_params(void);
/* As nibble_quantize, with options; *result (if result is not NULL) receives what was written,
 * to be freed with nibble_quantize_result_free. */
NIBBLE_API nibble_status nibble_quantize_model(const char* in, const char* out, const char* recipe,
                                               const nibble_quantize_params* params,
                                               nibble_quantize_result** result);
NIBBLE_API nibble_status nibble_quantize_result_summary(const nibble_quantize_result* result,
                                                        nibble_quantize_summary* out);
NIBBLE_API int64_t nibble_quantize_result_tensor_count(const nibble_quantize_result* result);
NIBBLE_API nibble_status nibble_quantize_result_tensor(const nibble_quantize_result* result,
                                                       int64_t i, nibble_quantize_tensor* out);
NIBBLE_API int64_t nibble_quantize_result_awq_count(const nibble_quantize_result* result);
NIBBLE_API nibble_status nibble_quantize_result_awq_group(const nibble_quantize_result* result,
                                                          int64_t i, nibble_quantize_awq_group* out);
NIBBLE_API void nibble_quantize_result_free(nibble_quantize_result* result);

/* Inspecting a model file without running it — any format nibble reads (nibble's own, GGUF,
 * llama2.c): its metadata, its tensor directory, and the checksums nibble files carry. Opening
 * maps the file and checks its structure; it builds no model and needs no tokenizer. */
typedef struct nibble_file nibble_file;

typedef struct nibble_file_info {
  const char* format;     /* "nibble", "gguf" or "llama2c" */
  uint32_t version_major; /* the format's version (GGUF: 2 or 3; llama2.c: 0) */
  uint32_t version_minor;
  uint64_t file_bytes;
  int64_t n_tensors;
  int64_t n_meta;         /* metadata entries */
} nibble_file_info;

typedef struct nibble_tensor_info {
  const char* name;        /* valid while the file is open */
  const char* type;        /* "Q4_0", "F32", ... */
  uint32_t type_id;        /* GGML's numbering; nibble's own types from 1024 */
  uint32_t layout;         /* 0 plain, 1 packed4 */
  const char* layout_name; /* "plain", "packed4" */
  int32_t n_dims;
  uint64_t dims[4];        /* innermost first */
  uint64_t n_elements;
  uint64_t offset;         /* of the data, from the start of the file */
  uint64_t bytes;
  int has_checksum;        /* nibble files: 1, with the XXH64 in checksum */
  uint64_t checksum;
} nibble_tensor_info;

typedef struct nibble_meta_entry {
  const char* key;       /* valid while the file is open */
  const char* type;      /* "u32", "f32", "string", "array", ... (GGUF's value types) */
  const char* elem_type; /* arrays: the element type; "" otherwise */
  uint64_t array_len;    /* arrays: the element count; 0 otherwise */
} nibble_meta_entry;

/* Opens and validates the file (structure, and for nibble files the header checksum). */
NIBBLE_API nibble_status nibble_file_open(const char* path, nibble_file** out);
NIBBLE_API void nibble_file_free(nibble_file* file);
NIBBLE_API nibble_status nibble_file_get_info(const nibble_file* file, nibble_file_info* out);
NIBBLE_API nibble_status nibble_file_tensor(const nibble_file* file, int64_t i,
                                            nibble_tensor_info* out);
/* Metadata entries in key order. */
NIBBLE_API nibble_status nibble_file_meta(const nibble_file* file, int64_t i,
                                          nibble_meta_entry* out);
/* Entry i's value as text: numbers as written, strings as they are, arrays as "[a, b, ...]"
 * when they have at most max_elems elements, else "[array of N type]". Writes a terminating NUL when
 * capacity allows; *n_out = the text's length (NIBBLE_ERR_BUFFER_TOO_SMALL when capacity <=
 * *n_out). */
NIBBLE_API nibble_status nibble_file_meta_text(const nibble_file* file, int64_t i,
                                               int32_t max_elems, char* buf, int32_t capacity,
                                               int32_t* n_out);
/* Reads every tensor and checks its checksum. *n_checked (may be NULL) = tensors checked (0 for
 * formats without checksums). NIBBLE_ERR_FILE, naming the tensors, on a mismatch. */
NIBBLE_API nibble_status nibble_file_verify(const nibble_file* file, int64_t* n_checked);

#ifdef __cplusplus
}
#endif

#endif /* NIBBLE_NIBBLE_H_ */
