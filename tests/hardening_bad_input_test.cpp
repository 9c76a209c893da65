// Issue #7's bad-input matrix through the public C API: prompts, sizes, paths and crafted model
// files an app may hand nibble. Each case must end in a status and a message (or, where the
// input is merely unusual, in a clean run that says what happened) — never a crash, hang or
// unbounded allocation. The command-line cases are in hardening_cli_test.cmake.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "loaders/gguf_writer.h"
#include "loaders/model_file.h"
#include "nibble/nibble.h"
#include "tests/loaders_test_util.h"

namespace {

using nibble::test::TempDir;

const std::string kModel = std::string(NIBBLE_SOURCE_DIR) + "/assets/kjv-llama-q4_0.gguf";

struct Model {
  nibble_model* m = nullptr;
  ~Model() { nibble_model_free(m); }
};
struct Context {
  nibble_context* c = nullptr;
  ~Context() { nibble_context_free(c); }
};

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

// The bundled model loaded once for the whole suite (loading is the slow part under ASan).
class BadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(nibble_model_load(kModel.c_str(), nullptr, &model_), NIBBLE_OK) << nibble_last_error();
  }
  static void TearDownTestSuite() {
    nibble_model_free(model_);
    model_ = nullptr;
  }
  // A context of n_ctx tokens, one thread (results must not depend on the machine).
  static nibble_context* make_context(int32_t n_ctx) {
    nibble_context_params p = nibble_context_default_params();
    p.n_ctx = n_ctx;
    p.n_threads = 1;
    nibble_context* c = nullptr;
    EXPECT_EQ(nibble_context_create(model_, &p, &c), NIBBLE_OK) << nibble_last_error();
    return c;
  }
  static nibble_sampler_params greedy() {
    nibble_sampler_params s = nibble_sampler_default_params();
    s.temperature = 0;
    return s;
  }
  static nibble_model* model_;
};
nibble_model* BadInput::model_ = nullptr;

int collect(const char* text, size_t len, void* user) {
  static_cast<std::string*>(user)->append(text, len);
  return 1;
}

// An empty prompt is still a conversation start: the vocabulary's BOS alone is the prompt, and
// the model generates from it. Without BOS (add_special off) it is zero tokens, which tokenize
// reports as such.
TEST_F(BadInput, EmptyPrompt) {
  Context ctx{make_context(64)};
  ASSERT_NE(ctx.c, nullptr);
  const nibble_sampler_params s = greedy();
  nibble_generate_stats st{};
  std::string out;
  ASSERT_EQ(nibble_generate(ctx.c, "", 4, &s, collect, &out, &st), NIBBLE_OK)
      << nibble_context_last_error(ctx.c);
  EXPECT_EQ(st.n_prompt, 1);  // BOS
  EXPECT_LE(st.n_generated, 4);

  int32_t n = -1;
  EXPECT_EQ(nibble_tokenize(model_, nullptr, 0, 0, 0, nullptr, 0, &n), NIBBLE_OK);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(nibble_tokenize(model_, "", 0, 1, 0, nullptr, 0, &n), NIBBLE_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(n, 1);
}

// A prompt that does not fit is refused before anything is evaluated, with a message saying so;
// the context stays usable.
TEST_F(BadInput, PromptLongerThanTheContext) {
  Context ctx{make_context(16)};
  ASSERT_NE(ctx.c, nullptr);
  std::string prompt;
  for (int i = 0; i < 20; ++i) prompt += "And God said, Let there be light. ";
  const nibble_sampler_params s = greedy();
  EXPECT_EQ(nibble_generate(ctx.c, prompt.c_str(), 4, &s, nullptr, nullptr, nullptr),
            NIBBLE_ERR_CONTEXT_FULL);
  EXPECT_TRUE(contains(nibble_context_last_error(ctx.c), "context")) << nibble_context_last_error(ctx.c);
  EXPECT_EQ(nibble_context_used(ctx.c), 0);
  EXPECT_EQ(nibble_generate(ctx.c, "And", 2, &s, nullptr, nullptr, nullptr), NIBBLE_OK)
      << nibble_context_last_error(ctx.c);
  // nibble_eval has the same limit.
  std::vector<int32_t> ids(40, 100);
  EXPECT_EQ(nibble_eval(ctx.c, ids.data(), static_cast<int32_t>(ids.size())), NIBBLE_ERR_CONTEXT_FULL);
}

// -n past the context: generation stops when the context is full and says so in the stats
// (run-model prints "stopped: the context of N tokens is full").
TEST_F(BadInput, GenerationPastTheContextStopsCleanly) {
  for (int32_t n_predict : {1000, -1}) {
    Context ctx{make_context(16)};
    ASSERT_NE(ctx.c, nullptr);
    const nibble_sampler_params s = greedy();
    nibble_generate_stats st{};
    ASSERT_EQ(nibble_generate(ctx.c, "And God said", n_predict, &s, nullptr, nullptr, &st), NIBBLE_OK)
        << nibble_context_last_error(ctx.c);
    if (!st.hit_end_of_generation) {
      EXPECT_TRUE(st.hit_context_limit);
      EXPECT_EQ(nibble_context_used(ctx.c), 16);
    }
    // The context holds 16 tokens; the last generated one is sampled from the last logits and
    // printed but never evaluated, so the output can be one longer than the context.
    EXPECT_LE(st.n_prompt + st.n_generated, 17);
    // A full context refuses more input instead of writing past the KV cache.
    const int32_t one = 100;
    if (nibble_context_used(ctx.c) == 16) {
      EXPECT_EQ(nibble_eval(ctx.c, &one, 1), NIBBLE_ERR_CONTEXT_FULL);
      EXPECT_EQ(nibble_generate(ctx.c, "more", 4, &s, nullptr, nullptr, nullptr), NIBBLE_ERR_CONTEXT_FULL);
    }
  }
}

// Bytes that are not UTF-8 tokenise (byte fallback), generate, and stream without crashing;
// every id is inside the vocabulary. Embedded NULs are bytes like any other for nibble_tokenize.
TEST_F(BadInput, NonUtf8PromptBytes) {
  const std::string bad = "\xff\xfe\xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf end";
  std::vector<int32_t> ids(256);
  int32_t n = 0;
  ASSERT_EQ(nibble_tokenize(model_, bad.data(), bad.size(), 1, 1, ids.data(), 256, &n), NIBBLE_OK)
      << nibble_last_error();
  ASSERT_GT(n, 1);
  for (int32_t i = 0; i < n; ++i) EXPECT_TRUE(ids[i] >= 0 && ids[i] < 32000) << ids[i];
  const std::string with_nul("a\0b", 3);
  EXPECT_EQ(nibble_tokenize(model_, with_nul.data(), with_nul.size(), 0, 0, ids.data(), 256, &n),
            NIBBLE_OK);
  EXPECT_GE(n, 3);

  Context ctx{make_context(64)};
  ASSERT_NE(ctx.c, nullptr);
  const nibble_sampler_params s = greedy();
  std::string out;
  EXPECT_EQ(nibble_generate(ctx.c, bad.c_str(), 4, &s, collect, &out, nullptr), NIBBLE_OK)
      << nibble_context_last_error(ctx.c);
}

// Text past the tokenizer's 4 KB chunking, with and without newlines, and only special tokens.
TEST_F(BadInput, LongAndOddTexts) {
  std::vector<std::string> texts = {std::string(20000, 'a'), std::string(9000, '\n'),
                                    std::string(5000, ' '), "<s></s><unk><s>"};
  std::string lines;
  while (lines.size() < 12000) lines += "In the beginning God created the heaven and the earth.\n";
  texts.push_back(lines);
  for (const std::string& t : texts) {
    int32_t n = 0;
    ASSERT_EQ(nibble_tokenize(model_, t.data(), t.size(), 1, 1, nullptr, 0, &n),
              t.empty() ? NIBBLE_OK : NIBBLE_ERR_BUFFER_TOO_SMALL);
    std::vector<int32_t> ids(n);
    ASSERT_EQ(nibble_tokenize(model_, t.data(), t.size(), 1, 1, ids.data(), n, &n), NIBBLE_OK);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < 32000);
  }
}

TEST(BadModelPath, DirectoryDevicesFifoEmptyAndMissing) {
  TempDir dir;
  const std::string fifo = dir.file("fifo.gguf"), empty = dir.file("empty.gguf");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::ofstream(empty).close();
  for (const std::string& path : {dir.path(), std::string("/dev/zero"), std::string("/dev/null"),
                                  fifo, empty, dir.file("missing.gguf")}) {
    for (int mmap : {1, 0}) {
      nibble_model_params p = nibble_model_default_params();
      p.use_mmap = mmap;
      nibble_model* m = nullptr;
      EXPECT_EQ(nibble_model_load(path.c_str(), &p, &m), NIBBLE_ERR_FILE) << path;
      EXPECT_EQ(m, nullptr);
      EXPECT_TRUE(contains(nibble_last_error(), path)) << nibble_last_error();
    }
  }
}

// A file cut short before loading is refused wherever the cut falls: in the header, the
// metadata, the tensor infos or the tensor data. (A file that shrinks *while mapped* is a
// different matter: reading a mapped page past the new end raises SIGBUS, as in every mmap-based
// runtime. Apps that cannot trust the file to stay put load with use_mmap = 0 — see the next
// test — or copy it first.)
TEST(BadModelFile, TruncatedBeforeLoadingIsRejected) {
  const std::vector<uint8_t> bytes = nibble::test::read_bytes(kModel);
  TempDir dir;
  const std::string path = dir.file("cut.gguf");
  for (size_t cut : {size_t{3}, size_t{20}, size_t{100}, size_t{4096}, size_t{300000},
                     bytes.size() / 2, bytes.size() - 1}) {
    nibble::test::write_bytes(path, bytes.data(), cut);
    for (int mmap : {1, 0}) {
      nibble_model_params p = nibble_model_default_params();
      p.use_mmap = mmap;
      nibble_model* m = nullptr;
      EXPECT_EQ(nibble_model_load(path.c_str(), &p, &m), NIBBLE_ERR_FILE) << "cut at " << cut;
      EXPECT_EQ(m, nullptr);
    }
  }
}

// With use_mmap = 0 the whole file is read at load, so the file shrinking (or being replaced)
// afterwards cannot affect the model.
TEST(BadModelFile, NoMmapModelSurvivesTheFileShrinking) {
  TempDir dir;
  const std::string path = dir.file("model.gguf");
  std::filesystem::copy_file(kModel, path);
  nibble_model_params p = nibble_model_default_params();
  p.use_mmap = 0;
  Model m;
  ASSERT_EQ(nibble_model_load(path.c_str(), &p, &m.m), NIBBLE_OK) << nibble_last_error();
  ASSERT_EQ(truncate(path.c_str(), 1000), 0);
  nibble_context_params cp = nibble_context_default_params();
  cp.n_ctx = 32;
  cp.n_threads = 1;
  Context ctx;
  ASSERT_EQ(nibble_context_create(m.m, &cp, &ctx.c), NIBBLE_OK);
  nibble_sampler_params s = nibble_sampler_default_params();
  s.temperature = 0;
  EXPECT_EQ(nibble_generate(ctx.c, "And God said", 4, &s, nullptr, nullptr, nullptr), NIBBLE_OK)
      << nibble_context_last_error(ctx.c);
}

// ---- crafted GGUF files ----------------------------------------------------------------------

// The bundled model as writer input, to be modified and written back.
struct Crafted {
  nibble::Metadata meta;
  std::vector<nibble::GgufTensorToWrite> tensors;
};

Crafted bundled_model() {
  const nibble::ModelFile mf = nibble::read_gguf(kModel);
  Crafted c;
  c.meta = mf.meta;
  for (const nibble::TensorInfo& t : mf.tensors)
    c.tensors.push_back({t.name, t.type, t.dims, std::vector<uint8_t>(t.data, t.data + t.nbytes)});
  return c;
}

nibble_status load(const std::string& path, std::string* error) {
  nibble_model* m = nullptr;
  const nibble_status s = nibble_model_load(path.c_str(), nullptr, &m);
  *error = nibble_last_error();
  nibble_model_free(m);
  return s;
}

TEST(BadModelFile, UnsupportedArchitecture) {
  Crafted c = bundled_model();
  c.meta.set_string("general.architecture", "mamba");
  TempDir dir;
  const std::string path = dir.file("mamba.gguf");
  nibble::write_gguf(path, c.meta, c.tensors);
  std::string err;
  EXPECT_EQ(load(path, &err), NIBBLE_ERR_FILE);
  EXPECT_TRUE(contains(err, "'mamba' is not supported")) << err;
  // The vocabulary alone still loads: tokenizing does not need the architecture.
  nibble_model_params p = nibble_model_default_params();
  p.vocab_only = 1;
  Model m;
  EXPECT_EQ(nibble_model_load(path.c_str(), &p, &m.m), NIBBLE_OK) << nibble_last_error();
  Context ctx;
  EXPECT_EQ(nibble_context_create(m.m, nullptr, &ctx.c), NIBBLE_ERR_INVALID_ARGUMENT);
}

TEST(BadModelFile, VocabularySizeDiffersFromTheEmbedding) {
  Crafted c = bundled_model();
  // Drop the last 8 tokens (and their scores and types) so the arrays still agree with each
  // other but not with token_embd.weight's 32000 rows.
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"}) {
    nibble::MetaValue v = *c.meta.find(key);
    v.array_len -= 8;
    if (!v.strs.empty()) v.strs.resize(v.array_len);
    if (!v.nums.empty()) v.nums.resize(v.array_len);
    if (!v.ints.empty()) v.ints.resize(v.array_len);
    c.meta.set(key, v);
  }
  TempDir dir;
  const std::string path = dir.file("vocab.gguf");
  nibble::write_gguf(path, c.meta, c.tensors);
  std::string err;
  EXPECT_EQ(load(path, &err), NIBBLE_ERR_FILE);
  EXPECT_TRUE(contains(err, "31992 tokens") && contains(err, "32000 rows")) << err;
}

// A context length no machine could hold (from the file, the default n_ctx, or from the caller)
// or a negative one is refused before the KV cache is allocated, instead of attempting it.
// Before the check in Session, 2^40 asked for ~7.6e15 bytes (ASan aborts on such a request; a
// plain build returned NIBBLE_ERR_INTERNAL "out of memory") and a negative length sized the
// cache from a negative number (std::length_error, NIBBLE_ERR_INTERNAL).
class AbsurdContextLength : public ::testing::TestWithParam<int64_t> {};

TEST_P(AbsurdContextLength, IsRefusedBeforeAllocating) {
  Crafted c = bundled_model();
  c.meta.set_int("llama.context_length", GetParam(), nibble::MetaType::I64);
  TempDir dir;
  const std::string path = dir.file("ctx.gguf");
  nibble::write_gguf(path, c.meta, c.tensors);
  Model m;
  const nibble_status s = nibble_model_load(path.c_str(), nullptr, &m.m);
  if (s != NIBBLE_OK) {
    EXPECT_EQ(s, NIBBLE_ERR_FILE);  // refusing the file is fine too
    return;
  }
  for (int32_t n_ctx : {0, INT32_MAX}) {
    nibble_context_params p = nibble_context_default_params();
    p.n_ctx = n_ctx;
    p.n_threads = 1;
    Context ctx;
    const nibble_status cs = nibble_context_create(m.m, &p, &ctx.c);
    EXPECT_TRUE(cs == NIBBLE_ERR_INVALID_ARGUMENT || cs == NIBBLE_ERR_CONTEXT_FULL)
        << cs << ": " << nibble_last_error();
    EXPECT_EQ(ctx.c, nullptr);
  }
  nibble_context_params p = nibble_context_default_params();
  p.n_ctx = 64;
  p.n_threads = 1;
  Context ctx;
  EXPECT_EQ(nibble_context_create(m.m, &p, &ctx.c), NIBBLE_OK) << nibble_last_error();
}
INSTANTIATE_TEST_SUITE_P(BadModelFile, AbsurdContextLength,
                         ::testing::Values(int64_t{1} << 40, int64_t{-5}));

// A type nibble knows but has no kernels for is refused naming the tensor and the type.
TEST(BadModelFile, UnrunnableTensorType) {
  Crafted c = bundled_model();
  bool found = false;
  for (nibble::GgufTensorToWrite& t : c.tensors) {
    if (t.name != "blk.0.attn_q.weight") continue;
    // I32: a valid GGUF type that is data, not weights; no matmul kernel will ever take it.
    t.type = nibble::TensorType::I32;
    t.data.assign(t.dims[0] * t.dims[1] * 4, 0);
    found = true;
  }
  ASSERT_TRUE(found);
  TempDir dir;
  const std::string path = dir.file("i32.gguf");
  nibble::write_gguf(path, c.meta, c.tensors);
  std::string err;
  EXPECT_EQ(load(path, &err), NIBBLE_ERR_FILE);
  EXPECT_TRUE(contains(err, "blk.0.attn_q.weight") && contains(err, "I32")) << err;
}

// A type id no GGUF reader knows is refused by the loader, before any size is computed from it.
TEST(BadModelFile, UnknownTensorTypeId) {
  std::vector<uint8_t> b;
  auto raw = [&](const void* p, size_t n) {
    b.insert(b.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
  };
  auto u32 = [&](uint32_t v) { raw(&v, 4); };
  auto u64 = [&](uint64_t v) { raw(&v, 8); };
  auto str = [&](const std::string& s) { u64(s.size()); raw(s.data(), s.size()); };
  raw("GGUF", 4);
  u32(3);
  u64(1);  // tensors
  u64(1);  // key/values
  str("general.architecture");
  u32(8);
  str("llama");
  str("token_embd.weight");
  u32(2);
  u64(32);
  u64(4);
  u32(99);  // no such ggml type
  u64(0);
  b.resize((b.size() + 31) / 32 * 32 + 4096, 0);
  TempDir dir;
  const std::string path = dir.file("type99.gguf");
  nibble::test::write_bytes(path, b);
  std::string err;
  EXPECT_EQ(load(path, &err), NIBBLE_ERR_FILE);
  EXPECT_TRUE(contains(err, "unknown tensor type id 99")) << err;
}

// ---- the C API with NULL and out-of-range arguments ----------------------------------------

TEST_F(BadInput, NullAndInvalidApiCalls) {
  int32_t n = 0, ids[4];
  char buf[16];
  nibble_model_info info{};
  EXPECT_EQ(nibble_model_get_info(nullptr, &info), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_model_get_info(model_, nullptr), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_tokenize(nullptr, "a", 1, 1, 0, ids, 4, &n), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_tokenize(model_, nullptr, 5, 1, 0, ids, 4, &n), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_tokenize(model_, "a", 1, 1, 0, ids, 4, nullptr), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_tokenize(model_, "a", 1, 1, 0, ids, -1, &n), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_tokenize(model_, "a", 1, 1, 0, nullptr, 4, &n), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_token_to_piece(nullptr, 5, buf, 16, &n), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_token_to_piece(model_, -1, buf, 16, &n), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_token_to_piece(model_, 32000, buf, 16, &n), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_token_to_piece(model_, 5, nullptr, 16, &n), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_token_to_piece(model_, 5, buf, 16, nullptr), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_token_to_piece(model_, 5, buf, -3, &n), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_token_bos(nullptr), -1);
  EXPECT_EQ(nibble_token_eos(nullptr), -1);
  EXPECT_EQ(nibble_token_is_end_of_generation(nullptr, 2), 0);
  EXPECT_EQ(nibble_token_is_end_of_generation(model_, -5), 0);
  EXPECT_EQ(nibble_token_is_end_of_generation(model_, 1 << 30), 0);

  nibble_context* c = reinterpret_cast<nibble_context*>(0x1);
  EXPECT_EQ(nibble_context_create(model_, nullptr, nullptr), NIBBLE_ERR_INVALID_ARGUMENT);
  nibble_context_params bad = nibble_context_default_params();
  for (int field = 0; field < 3; ++field) {
    bad = nibble_context_default_params();
    (field == 0 ? bad.n_ctx : field == 1 ? bad.n_threads : bad.n_batch) = -1;
    EXPECT_EQ(nibble_context_create(model_, &bad, &c), NIBBLE_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(c, nullptr);
  }
  EXPECT_STREQ(nibble_context_last_error(nullptr), "context is NULL");
  EXPECT_EQ(nibble_context_size(nullptr), 0);
  EXPECT_EQ(nibble_context_used(nullptr), 0);
  EXPECT_EQ(nibble_context_threads(nullptr), 0);
  EXPECT_EQ(nibble_context_reset(nullptr), NIBBLE_ERR_INVALID_ARGUMENT);

  Context ctx{make_context(32)};
  ASSERT_NE(ctx.c, nullptr);
  EXPECT_EQ(nibble_get_logits(ctx.c), nullptr);  // nothing evaluated yet
  EXPECT_EQ(nibble_eval(ctx.c, nullptr, 3), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_eval(ctx.c, ids, -1), NIBBLE_ERR_INVALID_ARGUMENT);
  const int32_t out_of_range[] = {1, 32000};
  EXPECT_EQ(nibble_eval(ctx.c, out_of_range, 2), NIBBLE_ERR_INVALID_ARGUMENT);
  const int32_t negative[] = {-7};
  EXPECT_EQ(nibble_eval(ctx.c, negative, 1), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_context_used(ctx.c), 0);  // a rejected batch leaves nothing behind
  EXPECT_EQ(nibble_eval(ctx.c, ids, 0), NIBBLE_OK);
  EXPECT_EQ(nibble_generate(ctx.c, nullptr, 4, nullptr, nullptr, nullptr, nullptr),
            NIBBLE_ERR_INVALID_ARGUMENT);
  // Odd sampler values are clamped or bypassed, not trusted blindly.
  nibble_sampler_params s = nibble_sampler_default_params();
  s.top_k = -5;
  s.top_p = 7;
  s.min_p = -1;
  s.repeat_last_n = -3;
  s.temperature = 1e30f;
  EXPECT_EQ(nibble_generate(ctx.c, "And", 2, &s, nullptr, nullptr, nullptr), NIBBLE_OK)
      << nibble_context_last_error(ctx.c);
  // A callback that stops at once.
  EXPECT_EQ(nibble_generate(ctx.c, " God", 8, nullptr,
                            [](const char*, size_t, void*) { return 0; }, nullptr, nullptr),
            NIBBLE_ERR_ABORTED);

  nibble_perplexity_result r{};
  EXPECT_EQ(nibble_perplexity(nullptr, nullptr, "x", 1, nullptr, &r), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_perplexity(model_, nullptr, "x", 1, nullptr, nullptr), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_perplexity(model_, nullptr, nullptr, 9, nullptr, &r), NIBBLE_ERR_INVALID_ARGUMENT);
  nibble_perplexity_params pp = nibble_perplexity_default_params();
  pp.n_ctx = 0;
  EXPECT_EQ(nibble_perplexity(model_, nullptr, "x", 1, &pp, &r), NIBBLE_ERR_INVALID_ARGUMENT);
  pp = nibble_perplexity_default_params();
  pp.n_ctx = 16;
  // Text too short for one chunk: an error, not a division by zero.
  const nibble_status ps = nibble_perplexity(model_, nullptr, "And", 3, &pp, &r);
  EXPECT_NE(ps, NIBBLE_OK);
  EXPECT_NE(ps, NIBBLE_ERR_INTERNAL) << nibble_last_error();

  EXPECT_EQ(nibble_quantize(nullptr, "o.gguf", "Q8_0", nullptr), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_quantize(kModel.c_str(), "/tmp/x.bin", "Q8_0", nullptr), NIBBLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nibble_quantize_recipe(-1, nullptr, nullptr), 0);
  EXPECT_EQ(nibble_quantize_recipe(1 << 20, nullptr, nullptr), 0);
  EXPECT_EQ(nibble_quantize_recipe(0, nullptr, nullptr), 1);  // NULL outputs are allowed
}

// Loading with an unknown or corrupt tokenizer file, and a vocab-only model used for generation.
TEST(BadModelFile, BadTokenizerFileAndVocabOnlyMisuse) {
  TempDir dir;
  const std::string junk = dir.file("tokenizer.model");
  nibble::test::write_bytes(junk, std::vector<uint8_t>(100, 0xAB));
  nibble_model_params p = nibble_model_default_params();
  p.tokenizer_path = junk.c_str();
  nibble_model* m = nullptr;
  EXPECT_EQ(nibble_model_load(kModel.c_str(), &p, &m), NIBBLE_ERR_FILE);
  EXPECT_TRUE(contains(nibble_last_error(), junk)) << nibble_last_error();

  p = nibble_model_default_params();
  p.vocab_only = 1;
  Model v;
  ASSERT_EQ(nibble_model_load(kModel.c_str(), &p, &v.m), NIBBLE_OK);
  nibble_perplexity_result r{};
  EXPECT_EQ(nibble_perplexity(v.m, nullptr, "x", 1, nullptr, &r), NIBBLE_ERR_INVALID_ARGUMENT);
  nibble_model_info info{};
  EXPECT_EQ(nibble_model_get_info(v.m, &info), NIBBLE_OK);
  EXPECT_EQ(info.n_vocab, 32000);
}

}  // namespace
