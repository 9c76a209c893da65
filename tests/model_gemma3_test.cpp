// The Gemma 3 family (models/gemma3_model.cpp) against the double-precision reference
// (reference_gemma3.h) on small random Gemma-shaped F32 files written here: both layer kinds
// (7 layers, pattern 6: layers 0–4 and 6 local, 5 global), a 4-position sliding window over 20
// positions, a head size that is not n_embd / n_head, grouped-query attention, and every
// prompt-batch path (one token at a time, batches of 5, the whole prompt at once).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "loaders/gguf_writer.h"
#include "loaders/model_file.h"
#include "models/model.h"
#include "reference_gemma3.h"
#include "runtime/session.h"
#include "tests/loaders_test_util.h"

namespace nibble {
namespace {

using test::TempDir;

struct Gemma3Shape {
  int64_t dim = 64, n_head = 4, n_kv = 2, head_dim = 32, ffn = 96, layers = 7, vocab = 256;
  int64_t window = 4;                     // attention.sliding_window (0: key left out)
  std::optional<int64_t> pattern;         // attention.sliding_window_pattern (default 6)
  std::optional<float> rope_base_swa;     // rope.freq_base_swa (default 10000)
  std::optional<float> rope_scale;        // rope.scaling.factor (linear, global layers)
  std::optional<int64_t> rope_dim;        // rope.dimension_count (default head_dim)
  std::optional<float> softcap;           // final_logit_softcapping
  bool untied_head = false;               // write output.weight
};

// Writes a seeded random Gemma 3 model as F32 GGUF. Matrices have std 1/√in so activations stay
// near unit scale; norm weights are drawn from [0.6, 1.4] (not 1) so that applying the wrong
// norm, or none, shows in the logits.
void write_gemma3(const std::string& path, const Gemma3Shape& s, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::vector<GgufTensorToWrite> tensors;
  auto add = [&](const std::string& name, std::vector<uint64_t> dims, float lo, float hi, bool normal) {
    uint64_t n = 1;
    for (uint64_t d : dims) n *= d;
    std::vector<float> v(n);
    std::normal_distribution<float> nd(0.0f, 1.0f / std::sqrt(static_cast<float>(dims[0])));
    std::uniform_real_distribution<float> ud(lo, hi);
    for (float& x : v) x = normal ? nd(rng) : ud(rng);
    GgufTensorToWrite t;
    t.name = name;
    t.dims = std::move(dims);
    t.data.resize(n * sizeof(float));
    std::memcpy(t.data.data(), v.data(), t.data.size());
    tensors.push_back(std::move(t));
  };
  const uint64_t D = s.dim, Q = s.n_head * s.head_dim, KV = s.n_kv * s.head_dim, F = s.ffn;
  add("token_embd.weight", {D, static_cast<uint64_t>(s.vocab)}, 0, 0, true);
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", {D}, 0.6f, 1.4f, false);
    add(b + "attn_q.weight", {D, Q}, 0, 0, true);
    add(b + "attn_k.weight", {D, KV}, 0, 0, true);
    add(b + "attn_v.weight", {D, KV}, 0, 0, true);
    add(b + "attn_q_norm.weight", {static_cast<uint64_t>(s.head_dim)}, 0.6f, 1.4f, false);
    add(b + "attn_k_norm.weight", {static_cast<uint64_t>(s.head_dim)}, 0.6f, 1.4f, false);
    add(b + "attn_output.weight", {Q, D}, 0, 0, true);
    add(b + "post_attention_norm.weight", {D}, 0.6f, 1.4f, false);
    add(b + "ffn_norm.weight", {D}, 0.6f, 1.4f, false);
    add(b + "ffn_gate.weight", {D, F}, 0, 0, true);
    add(b + "ffn_up.weight", {D, F}, 0, 0, true);
    add(b + "ffn_down.weight", {F, D}, 0, 0, true);
    add(b + "post_ffw_norm.weight", {D}, 0.6f, 1.4f, false);
  }
  add("output_norm.weight", {D}, 0.6f, 1.4f, false);
  if (s.untied_head) add("output.weight", {D, static_cast<uint64_t>(s.vocab)}, 0, 0, true);

  Metadata m;
  m.set_string("general.architecture", "gemma3");
  m.set_uint("gemma3.context_length", 128);
  m.set_uint("gemma3.embedding_length", D);
  m.set_uint("gemma3.block_count", static_cast<uint64_t>(s.layers));
  m.set_uint("gemma3.feed_forward_length", F);
  m.set_uint("gemma3.attention.head_count", static_cast<uint64_t>(s.n_head));
  m.set_uint("gemma3.attention.head_count_kv", static_cast<uint64_t>(s.n_kv));
  m.set_uint("gemma3.attention.key_length", static_cast<uint64_t>(s.head_dim));
  m.set_uint("gemma3.attention.value_length", static_cast<uint64_t>(s.head_dim));
  m.set_float("gemma3.attention.layer_norm_rms_epsilon", 1e-6);
  m.set_float("gemma3.rope.freq_base", 1e6);  // the global layers' base, as published files
  if (s.window > 0) m.set_uint("gemma3.attention.sliding_window", static_cast<uint64_t>(s.window));
  if (s.pattern) m.set_uint("gemma3.attention.sliding_window_pattern", static_cast<uint64_t>(*s.pattern));
  if (s.rope_base_swa) m.set_float("gemma3.rope.freq_base_swa", *s.rope_base_swa);
  if (s.rope_scale) {
    m.set_string("gemma3.rope.scaling.type", "linear");
    m.set_float("gemma3.rope.scaling.factor", *s.rope_scale);
  }
  if (s.rope_dim) m.set_uint("gemma3.rope.dimension_count", static_cast<uint64_t>(*s.rope_dim));
  if (s.softcap) m.set_float("gemma3.final_logit_softcapping", *s.softcap);
  write_gguf(path, m, tensors);
}

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> ids(n);
  for (int32_t& t : ids) t = d(rng);
  return ids;
}

// The whole prompt at once runs on two threads (prefill attention split between them), smaller
// batches on one: on a machine shared with other jobs, two threads' many short parallel regions
// on a model this small mostly wait for each other.
std::vector<float> runtime_logits(const ModelFile& f, const std::vector<int32_t>& ids, int64_t n_batch) {
  auto model = load_model(f);
  SessionOptions o;
  o.n_ctx = 64;
  o.n_threads = n_batch >= static_cast<int64_t>(ids.size()) ? 2 : 1;
  o.n_batch = n_batch;
  Session s(*model, o);
  std::vector<float> out(ids.size() * model->config().n_vocab);
  s.eval_all_logits(ids.data(), static_cast<int64_t>(ids.size()), out.data());
  return out;
}

constexpr int64_t kPositions = 20;

// F32 weights: the runtime and the reference do the same arithmetic, in float and in double.
void expect_matches_reference(const Gemma3Shape& shape, const std::string& what) {
  TempDir dir;
  const std::string path = dir.file("gemma3.gguf");
  write_gemma3(path, shape);
  const ModelFile f = open_model_file(path);
  const auto ids = random_tokens(kPositions, shape.vocab);
  const auto want = testing::ReferenceGemma3(f).run(ids);
  for (int64_t batch : {int64_t{1}, int64_t{5}, kPositions}) {
    const testing::LogitDiff d = testing::compare_logits(runtime_logits(f, ids, batch), want);
    testing::print_diff(what + " batch " + std::to_string(batch), d);
    EXPECT_LE(d.rel(), 1e-3) << what << " batch " << batch;
    EXPECT_EQ(d.argmax_agree, d.positions) << what << " batch " << batch;
  }
}

TEST(Gemma3Forward, RandomModelMatchesDoubleReference) {
  expect_matches_reference(Gemma3Shape{}, "gemma3 defaults");
}

// Every optional key at once: pattern 3 (layers 2 and 5 global), a local rope base, linear
// scaling of the global layers, partial rotary dimensions, logit soft-capping (at a value the
// random logits reach, so it bends them), an untied head.
TEST(Gemma3Forward, OptionalKeysMatchDoubleReference) {
  Gemma3Shape s;
  s.pattern = 3;
  s.rope_base_swa = 1000.0f;
  s.rope_scale = 4.0f;
  s.rope_dim = 16;
  s.softcap = 2.0f;
  s.untied_head = true;
  expect_matches_reference(s, "gemma3 options");
}

// The 62-layer model (27B) scales queries by 1/√(n_embd / n_head), not 1/√head_dim; here the
// two differ (1/4 against 1/√32).
TEST(Gemma3Forward, SixtyTwoLayerQueryScaleMatchesDoubleReference) {
  Gemma3Shape s;
  s.layers = 62;
  expect_matches_reference(s, "gemma3 62 layers");
}

// The configuration the runtime reads: the card's defaults where the file is silent.
TEST(Gemma3Forward, ConfigFollowsTheFile) {
  TempDir dir;
  const std::string path = dir.file("gemma3.gguf");
  write_gemma3(path, Gemma3Shape{});
  const auto model = load_model(open_model_file(path));
  const ModelConfig& c = model->config();
  EXPECT_EQ(c.arch, "gemma3");
  EXPECT_EQ(c.head_dim, 32);  // attention.key_length, not 64 / 4
  EXPECT_EQ(c.q_dim(), 128);
  EXPECT_EQ(c.kv_dim(), 64);
  EXPECT_EQ(c.rope_style, RopeStyle::kNeox);
  EXPECT_EQ(c.n_swa, 4);
  EXPECT_EQ(c.swa_pattern, 6);
  EXPECT_EQ(c.rope_base, 1e6f);
  EXPECT_EQ(c.rope_base_swa, 10000.0f);
  EXPECT_EQ(c.rope_freq_scale, 1.0f);
  EXPECT_EQ(c.final_logit_softcap, 0.0f);
  for (int64_t il = 0; il < 7; ++il) EXPECT_EQ(c.is_swa_layer(il), il != 5) << il;
}

// The window is exercised, not just accepted: without it (all layers global) the logits move
// far beyond the tolerance once positions fall out of the window, and the runtime follows the
// file either way.
TEST(Gemma3Forward, SlidingWindowChangesTheResult) {
  TempDir dir;
  Gemma3Shape windowed, global;
  global.window = 0;
  write_gemma3(dir.file("windowed.gguf"), windowed);
  write_gemma3(dir.file("global.gguf"), global);
  const ModelFile fw = open_model_file(dir.file("windowed.gguf"));
  const ModelFile fg = open_model_file(dir.file("global.gguf"));
  const auto ids = random_tokens(kPositions, windowed.vocab);
  const auto want_windowed = testing::ReferenceGemma3(fw).run(ids);
  const auto want_global = testing::ReferenceGemma3(fg).run(ids);
  const testing::LogitDiff between = testing::compare_logits(
      [&] {
        std::vector<float> flat;
        for (const auto& row : want_global) flat.insert(flat.end(), row.begin(), row.end());
        return flat;
      }(),
      want_windowed);
  testing::print_diff("global vs windowed reference", between);
  EXPECT_GT(between.rel(), 0.05);
  EXPECT_LE(testing::compare_logits(runtime_logits(fg, ids, kPositions), want_global).rel(), 1e-3);
  EXPECT_GT(testing::compare_logits(runtime_logits(fg, ids, kPositions), want_windowed).rel(), 0.05);
}

// A malformed file is refused with a FileError that names the file and what is wrong.
TEST(Gemma3Load, BadFilesAreNamed) {
  TempDir dir;
  const std::string path = dir.file("gemma3.gguf");
  write_gemma3(path, Gemma3Shape{});
  const ModelFile good = open_model_file(path);
  auto rewrite = [&](const std::string& out, auto&& edit) {
    Metadata meta = good.meta;
    std::vector<GgufTensorToWrite> tensors;
    for (const TensorInfo& t : good.tensors)
      tensors.push_back({t.name, t.type, t.dims, std::vector<uint8_t>(t.data, t.data + t.nbytes)});
    edit(meta, tensors);
    write_gguf(out, meta, tensors);
    return out;
  };
  auto expect_error = [&](const std::string& file, const std::string& what) {
    try {
      load_model(open_model_file(file));
      ADD_FAILURE() << "loaded " << file;
    } catch (const FileError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(file), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  };
  expect_error(rewrite(dir.file("no-qnorm.gguf"),
                       [](Metadata&, std::vector<GgufTensorToWrite>& ts) {
                         std::erase_if(ts, [](const auto& t) { return t.name == "blk.3.attn_q_norm.weight"; });
                       }),
               "blk.3.attn_q_norm.weight");
  expect_error(rewrite(dir.file("knorm-size.gguf"),
                       [](Metadata&, std::vector<GgufTensorToWrite>& ts) {
                         for (auto& t : ts)
                           if (t.name == "blk.0.attn_k_norm.weight") {
                             t.dims = {16};
                             t.data.resize(16 * sizeof(float));
                           }
                       }),
               "blk.0.attn_k_norm.weight");
  expect_error(rewrite(dir.file("per-layer-heads.gguf"),
                       [](Metadata& m, std::vector<GgufTensorToWrite>&) {
                         m.set_int_array("gemma3.attention.head_count", std::vector<int32_t>(7, 4));
                       }),
               "per-layer");
  expect_error(rewrite(dir.file("no-eps.gguf"),
                       [](Metadata& m, std::vector<GgufTensorToWrite>&) {
                         Metadata copy;
                         for (const auto& [k, v] : m.entries())
                           if (k != "gemma3.attention.layer_norm_rms_epsilon") copy.set(k, v);
                         m = copy;
                       }),
               "layer_norm_rms_epsilon");
}

}  // namespace
}  // namespace nibble
