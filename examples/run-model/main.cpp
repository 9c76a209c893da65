// run-model: stream a completion from a model file and report honest speeds.
//   run-model -m model.gguf -p "And God said" [-n 128] [-t N] [--temp 0] ...
//   run-model tokenize -m model.gguf -p "text" [--no-bos] [--pieces]
// Uses nothing but the public C API, like any app embedding nibble.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "chat.h"
#include "cli_args.h"
#include "nibble/nibble.h"

namespace {

const char* kUsage = R"(usage: run-model [generate] -m FILE (-p PROMPT | -f FILE) [options]
       run-model -m FILE --chat [-sys TEXT] [--chat-template NAME] [options]
       run-model tokenize -m FILE (-p TEXT | -f FILE) [--no-bos] [--pieces] [--special]
       run-model perplexity -m FILE -f TEXT [-c 512] [--chunks N] [--ref FILE] [--json]
       run-model info -m FILE [--verify]

Generates text after a prompt, streaming it as it is produced, then prints load time,
prompt processing speed (pp, tokens/s) and generation speed (tg, tokens/s) to stderr.

model:
  -m, --model FILE         GGUF file or llama2.c checkpoint
  --tokenizer FILE         sentencepiece tokenizer.model (for files without a vocabulary)
  --no-mmap                read the file into memory instead of mapping it
prompt:
  -p, --prompt TEXT        prompt text
  -f, --file FILE          read the prompt from FILE
generation:
  -n, --n-predict N        tokens to generate (default 128; -1: until end of text or context)
  -c, --ctx-size N         context size in tokens (default: the model's trained context)
  -b, --batch-size N       prompt tokens per forward pass (default 512)
  -t, --threads N          threads (default: physical cores)
  --gemm NAME              matmul for prompts: auto (default: amx where the CPU has AMX, else
                           nibble), nibble (int8 kernels), amx (AMX-BF16 tiles) or onednn
                           (oneDNN bf16, a one-time weight conversion on the first prompt)
  --stop TEXT              end generation when TEXT appears (not printed; repeatable)
chat (instruct models):
  --chat                   interactive conversation: one message per line; Ctrl-C stops an
                           answer, Ctrl-D ends. Each -p is taken as a user message instead.
  -sys, --system-prompt T  system message for the conversation
  --chat-template NAME     chat format instead of the model's own (chatml, llama3, gemma,
                           llama2, llama2-sys, mistral-v3, mistral-v7, phi3, phi4, zephyr,
                           deepseek, deepseek3, ...)
sampling (llama.cpp's defaults):
  --temp T                 temperature (default 0.8; 0 = greedy, all other samplers off)
  --top-k K                keep the K most likely tokens (default 40; 0 = off)
  --top-p P                nucleus sampling threshold (default 0.95; 1 = off)
  --min-p P                drop tokens below P x the top probability (default 0.05; 0 = off)
  --repeat-penalty R       penalty for recent tokens (default 1.0 = off)
  --repeat-last-n N        how many recent tokens the penalty considers (default 64)
  --seed S                 random seed (default: random, printed)
tokenize:
  --no-bos                 leave out the BOS/EOS the model would add
  --pieces                 print each token's text next to its id
  --special                parse control-token text such as <s> as tokens
perplexity (llama.cpp's method: chunks of -c tokens, second half of each scored):
  --chunks N               evaluate at most N chunks (default: all)
  --ref FILE               the same model at higher precision: adds dPPL, KL divergence,
                           top-1 agreement (--tokenizer applies to it too)
  --save-logits FILE       save this model's distributions (16-bit log-probabilities)
  --ref-logits FILE        compare against distributions saved with --save-logits
  --json                   print one JSON object instead of text
info (metadata and tensor table of any model file; nothing is run):
  --verify                 check every tensor's checksum (nibble files)
other:
  -h, --help               this text
environment:
  NIBBLE_ISA=NAME          force a kernel instruction set (e.g. AVX2, SSE4, SCALAR)
)";

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw cli::UsageError("cannot read prompt file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Options {
  std::string mode = "generate";
  std::string model, tokenizer, prompt;
  bool have_prompt = false, use_mmap = true;
  int32_t n_predict = 128, n_ctx = 0, n_batch = 512, n_threads = 0;
  std::string gemm;  // empty: the library's default (auto)
  nibble_sampler_params sampler = nibble_sampler_default_params();
  bool seed_given = false;
  bool no_bos = false, pieces = false, special = false;
  int32_t n_chunks = -1;
  std::string ref, save_logits, ref_logits;
  bool json = false;
  bool verify = false;  // info --verify
  bool ctx_given = false;
  bool n_predict_given = false;
  bool chat = false;
  std::vector<std::string> prompts;  // every -p, in order (chat turns)
  std::string system_prompt, chat_template;
  std::vector<std::string> stop;
};

Options parse(int argc, char** argv) {
  Options o;
  int first = 1;
  if (argc > 1 && argv[1][0] != '-') {
    o.mode = argv[1];
    if (o.mode != "generate" && o.mode != "tokenize" && o.mode != "perplexity" && o.mode != "info") {
      throw cli::UsageError("unknown command '" + o.mode +
                            "' (commands: generate, tokenize, perplexity, info)");
    }
    first = 2;
  }
  cli::Args a(argc, argv, first);
  while (!a.done()) {
    const std::string f = a.next();
    if (f == "-h" || f == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (f == "-m" || f == "--model") {
      o.model = a.value(f);
    } else if (f == "--tokenizer") {
      o.tokenizer = a.value(f);
    } else if (f == "--no-mmap") {
      o.use_mmap = false;
    } else if (f == "-p" || f == "--prompt") {
      o.prompt = a.value(f);
      o.prompts.push_back(o.prompt);
      o.have_prompt = true;
    } else if (f == "-f" || f == "--file") {
      o.prompt = read_text_file(a.value(f));
      o.prompts.push_back(o.prompt);
      o.have_prompt = true;
    } else if (f == "-n" || f == "--n-predict") {
      o.n_predict = static_cast<int32_t>(cli::parse_int(f, a.value(f), -1, 1 << 30));
      o.n_predict_given = true;
    } else if (f == "-c" || f == "--ctx-size") {
      o.n_ctx = static_cast<int32_t>(cli::parse_int(f, a.value(f), 0, 1 << 24));
      o.ctx_given = true;
    } else if (f == "-b" || f == "--batch-size") {
      o.n_batch = static_cast<int32_t>(cli::parse_int(f, a.value(f), 1, 1 << 16));
    } else if (f == "-t" || f == "--threads") {
      o.n_threads = static_cast<int32_t>(cli::parse_int(f, a.value(f), 1, 1024));
    } else if (f == "--gemm") {
      o.gemm = a.value(f);
    } else if (f == "--temp") {
      o.sampler.temperature = cli::parse_float(f, a.value(f), 0.0f, 100.0f);
    } else if (f == "--top-k") {
      o.sampler.top_k = static_cast<int32_t>(cli::parse_int(f, a.value(f), 0, 1 << 30));
    } else if (f == "--top-p") {
      o.sampler.top_p = cli::parse_float(f, a.value(f), 0.0f, 1.0f);
    } else if (f == "--min-p") {
      o.sampler.min_p = cli::parse_float(f, a.value(f), 0.0f, 1.0f);
    } else if (f == "--repeat-penalty") {
      o.sampler.repeat_penalty = cli::parse_float(f, a.value(f), 0.0f, 100.0f);
    } else if (f == "--repeat-last-n") {
      o.sampler.repeat_last_n = static_cast<int32_t>(cli::parse_int(f, a.value(f), 0, 1 << 20));
    } else if (f == "--seed") {
      o.sampler.seed = cli::parse_u64(f, a.value(f));
      o.seed_given = true;
    } else if (f == "--chunks") {
      o.n_chunks = static_cast<int32_t>(cli::parse_int(f, a.value(f), 1, 1 << 30));
    } else if (f == "--ref") {
      o.ref = a.value(f);
    } else if (f == "--save-logits") {
      o.save_logits = a.value(f);
    } else if (f == "--ref-logits") {
      o.ref_logits = a.value(f);
    } else if (f == "--json") {
      o.json = true;
    } else if (f == "--verify") {
      o.verify = true;
    } else if (f == "--chat") {
      o.chat = true;
    } else if (f == "-sys" || f == "--system-prompt") {
      o.system_prompt = a.value(f);
    } else if (f == "--chat-template") {
      o.chat_template = a.value(f);
    } else if (f == "--stop") {
      o.stop.push_back(a.value(f));
      if (o.stop.back().empty()) throw cli::UsageError("--stop needs a non-empty string");
    } else if (f == "--no-bos") {
      o.no_bos = true;
    } else if (f == "--pieces") {
      o.pieces = true;
    } else if (f == "--special") {
      o.special = true;
    } else {
      throw cli::UsageError("unknown flag '" + f + "' (see --help)");
    }
  }
  if (o.model.empty()) throw cli::UsageError("no model given (-m FILE)");
  if (o.chat && o.mode != "generate") throw cli::UsageError("--chat is for generation, not '" + o.mode + "'");
  if (!o.chat && (!o.system_prompt.empty() || !o.chat_template.empty())) {
    throw cli::UsageError("-sys and --chat-template need --chat");
  }
  if (o.verify && o.mode != "info") throw cli::UsageError("--verify is for 'run-model info'");
  if (!o.have_prompt && !o.chat && o.mode != "info") {
    throw cli::UsageError("no prompt given (-p TEXT or -f FILE)");
  }
  if (!o.seed_given) o.sampler.seed = std::random_device{}();
  return o;
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "run-model: %s\n", msg.c_str());
  return 1;
}

int run_tokenize(const Options& o, nibble_model* model) {
  std::vector<int32_t> ids(o.prompt.size() + 8);
  int32_t n = 0;
  nibble_status s = nibble_tokenize(model, o.prompt.data(), o.prompt.size(), !o.no_bos, o.special,
                                    ids.data(), static_cast<int32_t>(ids.size()), &n);
  if (s == NIBBLE_ERR_BUFFER_TOO_SMALL) {
    ids.resize(n);
    s = nibble_tokenize(model, o.prompt.data(), o.prompt.size(), !o.no_bos, o.special, ids.data(),
                        n, &n);
  }
  if (s != NIBBLE_OK) return fail(nibble_last_error());
  std::string out;
  char piece[256];
  for (int32_t i = 0; i < n; ++i) {
    if (i) out += o.pieces ? "\n" : " ";
    out += std::to_string(ids[i]);
    if (o.pieces) {
      int32_t len = 0;
      if (nibble_token_to_piece(model, ids[i], piece, sizeof piece, &len) != NIBBLE_OK) {
        return fail(nibble_last_error());
      }
      out += " '" + std::string(piece, len) + "'";
    }
  }
  std::printf("%s\n", out.c_str());
  return 0;
}

int on_chunk(int32_t chunk, int32_t n_chunks, double ppl, void* user) {
  if (!*static_cast<bool*>(user)) {
    std::fprintf(stderr, "[%d/%d]%.4f%s", chunk + 1, n_chunks, ppl, chunk + 1 == n_chunks ? "\n" : ",");
    std::fflush(stderr);
  }
  return 1;
}

int run_perplexity(const Options& o, nibble_model* model, const nibble_model_params& mp) {
  nibble_model* ref = nullptr;
  if (!o.ref.empty() && nibble_model_load(o.ref.c_str(), &mp, &ref) != NIBBLE_OK) {
    return fail(nibble_last_error());
  }
  nibble_perplexity_params pp = nibble_perplexity_default_params();
  if (o.ctx_given && o.n_ctx > 0) pp.n_ctx = o.n_ctx;
  pp.n_chunks = o.n_chunks;
  pp.n_threads = o.n_threads;
  pp.n_batch = std::min(o.n_batch, pp.n_ctx);
  pp.save_logits = o.save_logits.empty() ? nullptr : o.save_logits.c_str();
  pp.ref_logits = o.ref_logits.empty() ? nullptr : o.ref_logits.c_str();
  pp.gemm = o.gemm.empty() ? nullptr : o.gemm.c_str();
  bool quiet = o.json;
  pp.on_chunk = on_chunk;
  pp.user = &quiet;
  nibble_perplexity_result r{};
  const nibble_status s =
      nibble_perplexity(model, ref, o.prompt.data(), o.prompt.size(), &pp, &r);
  nibble_model_free(ref);
  if (s != NIBBLE_OK) return fail(nibble_last_error());
  nibble_model_info info{};
  nibble_model_get_info(model, &info);
  if (o.json) {
    std::printf("{\"ppl\": %.6f, \"ppl_stderr\": %.6f, \"n_scored\": %lld, \"n_chunks\": %d, "
                "\"n_ctx\": %d, \"tokens_per_s\": %.2f, \"n_params\": %llu, \"tensor_bytes\": %llu",
                r.ppl, r.ppl_stderr, static_cast<long long>(r.n_scored), r.n_chunks, pp.n_ctx,
                r.tokens_per_s, static_cast<unsigned long long>(info.n_params),
                static_cast<unsigned long long>(info.tensor_bytes));
    if (r.has_ref) {
      std::printf(", \"ref_ppl\": %.6f, \"ppl_ratio\": %.6f, \"delta_ppl\": %.6f, "
                  "\"kld_mean\": %.8f, \"kld_p90\": %.8f, \"kld_p99\": %.8f, \"kld_max\": %.8f, "
                  "\"top1_agreement\": %.6f, \"dp_rms\": %.6f",
                  r.ref_ppl, r.ppl_ratio, r.delta_ppl, r.kld_mean, r.kld_p90, r.kld_p99,
                  r.kld_max, r.top1_agreement, r.dp_rms);
    }
    std::printf("}\n");
    return 0;
  }
  std::printf("PPL = %.4f +/- %.4f  (%lld tokens scored in %d chunks of %d, %.1f tokens/s)\n",
              r.ppl, r.ppl_stderr, static_cast<long long>(r.n_scored), r.n_chunks, pp.n_ctx,
              r.tokens_per_s);
  if (r.has_ref) {
    std::printf("reference PPL = %.4f +/- %.4f\n", r.ref_ppl, r.ref_ppl_stderr);
    std::printf("PPL ratio = %.6f, dPPL = %+.6f\n", r.ppl_ratio, r.delta_ppl);
    std::printf("KLD mean = %.6f, p90 = %.6f, p99 = %.6f, max = %.6f\n", r.kld_mean, r.kld_p90,
                r.kld_p99, r.kld_max);
    std::printf("top-1 agreement = %.2f %%, RMS dp = %.4f %%\n", 100 * r.top1_agreement,
                100 * r.dp_rms);
  }
  return 0;
}

int on_piece(const char* text, size_t len, void* user) {
  auto& filter = *static_cast<chat::StopFilter*>(user);
  const std::string out = filter.feed(std::string(text, len));
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return filter.stopped() ? 0 : 1;
}

int run_generate(const Options& o, nibble_model* model, double load_ms) {
  nibble_context_params cp = nibble_context_default_params();
  cp.n_ctx = o.n_ctx;
  cp.n_batch = o.n_batch;
  cp.n_threads = o.n_threads;
  nibble_context* ctx = nullptr;
  if (nibble_context_create(model, &cp, &ctx) != NIBBLE_OK) return fail(nibble_last_error());
  if (!o.gemm.empty() && nibble_context_set_gemm(ctx, o.gemm.c_str()) != NIBBLE_OK) {
    const std::string error = nibble_context_last_error(ctx);
    nibble_context_free(ctx);
    return fail(error);
  }
  std::fprintf(stderr, "threads %d, context %d, isa %s, seed %llu\n", nibble_context_threads(ctx),
               nibble_context_size(ctx), nibble_isa(),
               static_cast<unsigned long long>(o.sampler.seed));

  std::fwrite(o.prompt.data(), 1, o.prompt.size(), stdout);
  std::fflush(stdout);
  nibble_generate_stats st{};
  chat::StopFilter filter(o.stop);
  nibble_status s =
      nibble_generate(ctx, o.prompt.c_str(), o.n_predict, &o.sampler, on_piece, &filter, &st);
  if (s == NIBBLE_ERR_ABORTED && filter.stopped()) s = NIBBLE_OK;
  const std::string tail = filter.flush();
  std::fwrite(tail.data(), 1, tail.size(), stdout);
  std::printf("\n");
  std::fflush(stdout);  // the text ends before the statistics on stderr begin
  if (s != NIBBLE_OK) {
    const std::string msg = nibble_context_last_error(ctx);
    nibble_context_free(ctx);
    return fail(msg);
  }
  if (st.hit_context_limit) {
    std::fprintf(stderr, "stopped: the context of %d tokens is full\n", nibble_context_size(ctx));
  } else if (st.hit_end_of_generation) {
    std::fprintf(stderr, "stopped: end of text\n");
  } else if (filter.stopped()) {
    std::fprintf(stderr, "stopped: a --stop string\n");
  }
  std::fprintf(stderr, "load: %.1f ms\n", load_ms);
  std::fprintf(stderr, "prompt: %d tokens in %.1f ms, %.2f tokens/s (pp)\n", st.n_prompt,
               st.prompt_seconds * 1e3, st.n_prompt / std::max(st.prompt_seconds, 1e-9));
  std::fprintf(stderr, "generation: %d tokens in %.1f ms, %.2f tokens/s (tg)\n", st.n_generated,
               st.gen_seconds * 1e3,
               st.n_generated > 0 ? st.n_generated / std::max(st.gen_seconds, 1e-9) : 0.0);
  nibble_context_free(ctx);
  return 0;
}

// run-model info: the file's metadata (long arrays as their length) and tensor table, through
// the C API's file inspection (no model is built, so any file nibble reads can be shown).
int run_info(const Options& o) {
  nibble_file* file = nullptr;
  if (nibble_file_open(o.model.c_str(), &file) != NIBBLE_OK) return fail(nibble_last_error());
  nibble_file_info fi;
  nibble_file_get_info(file, &fi);
  std::printf("file: %s\nformat: %s %u.%u, %llu bytes, %lld tensors, %lld metadata keys\n",
              o.model.c_str(), fi.format, fi.version_major, fi.version_minor,
              static_cast<unsigned long long>(fi.file_bytes), static_cast<long long>(fi.n_tensors),
              static_cast<long long>(fi.n_meta));
  std::printf("\nmetadata:\n");
  std::vector<char> buf(256);
  for (int64_t i = 0; i < fi.n_meta; ++i) {
    nibble_meta_entry e;
    nibble_file_meta(file, i, &e);
    int32_t n = 0;
    nibble_status s = nibble_file_meta_text(file, i, 16, buf.data(), static_cast<int32_t>(buf.size()), &n);
    if (s == NIBBLE_ERR_BUFFER_TOO_SMALL) {
      buf.resize(static_cast<size_t>(n) + 1);
      s = nibble_file_meta_text(file, i, 16, buf.data(), static_cast<int32_t>(buf.size()), &n);
    }
    std::string text = s == NIBBLE_OK ? std::string(buf.data(), static_cast<size_t>(n)) : "?";
    // One line per key: long strings (chat templates) are cut, newlines shown as \n.
    const size_t full = text.size();
    if (full > 160) text = text.substr(0, 160) + "... (" + std::to_string(full) + " bytes)";
    std::string line;
    for (char c : text) line += c == '\n' ? std::string("\\n") : std::string(1, c);
    const std::string type = e.array_len || std::string(e.type) == "array"
                                 ? std::string("array[") + e.elem_type + "]" : e.type;
    std::printf("  %-44s %-14s %s\n", e.key, type.c_str(), line.c_str());
  }
  std::printf("\n%-40s %-8s %-18s %-8s %12s\n", "tensor", "type", "shape", "layout", "bytes");
  uint64_t total = 0, n_elements = 0;
  for (int64_t i = 0; i < fi.n_tensors; ++i) {
    nibble_tensor_info t;
    nibble_file_tensor(file, i, &t);
    std::string shape;
    for (int32_t d = 0; d < t.n_dims; ++d) {
      if (d) shape += " x ";
      shape += std::to_string(t.dims[d]);
    }
    std::printf("%-40s %-8s %-18s %-8s %12llu\n", t.name, t.type, shape.c_str(), t.layout_name,
                static_cast<unsigned long long>(t.bytes));
    total += t.bytes;
    n_elements += t.n_elements;
  }
  std::printf("%lld tensors, %llu weights, %llu bytes (%.3f bits/weight)\n",
              static_cast<long long>(fi.n_tensors), static_cast<unsigned long long>(n_elements),
              static_cast<unsigned long long>(total),
              n_elements ? 8.0 * static_cast<double>(total) / static_cast<double>(n_elements) : 0.0);
  int rc = 0;
  if (o.verify) {
    int64_t checked = 0;
    if (nibble_file_verify(file, &checked) != NIBBLE_OK) {
      rc = fail(nibble_last_error());
    } else if (checked == 0) {
      std::printf("verify: this %s file has no checksums; nothing to check\n", fi.format);
    } else {
      std::printf("verify: %lld tensors, all checksums match\n", static_cast<long long>(checked));
    }
  }
  nibble_file_free(file);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = parse(argc, argv);
  } catch (const cli::UsageError& e) {
    return fail(e.what());
  }
  if (o.mode == "info") return run_info(o);
  nibble_model_params mp = nibble_model_default_params();
  mp.tokenizer_path = o.tokenizer.empty() ? nullptr : o.tokenizer.c_str();
  mp.use_mmap = o.use_mmap;
  mp.vocab_only = o.mode == "tokenize";
  nibble_model* model = nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  if (nibble_model_load(o.model.c_str(), &mp, &model) != NIBBLE_OK) return fail(nibble_last_error());
  const double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (o.chat) {
    chat::Options co;
    co.system_prompt = o.system_prompt;
    co.template_name = o.chat_template;
    co.stop = o.stop;
    co.n_ctx = o.n_ctx;
    co.n_batch = o.n_batch;
    co.n_threads = o.n_threads;
    co.n_predict = o.n_predict_given ? o.n_predict : -1;
    co.sampler = o.sampler;
    co.scripted = o.prompts;
    const int rc = chat::run(co, model);
    nibble_model_free(model);
    return rc;
  }
  const int rc = o.mode == "tokenize"     ? run_tokenize(o, model)
                 : o.mode == "perplexity" ? run_perplexity(o, model, mp)
                                          : run_generate(o, model, load_ms);
  nibble_model_free(model);
  return rc;
}
