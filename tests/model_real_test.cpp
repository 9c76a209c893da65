// Real pretrained models, runtime against the double-precision references on the files' own
// (dequantised) weights: Gemma 3 270M (Q4_K_M mix: Q8_0 tied embedding/head, Q5_0, Q4_K, Q6_K,
// Q8_0 matrices) and SmolLM2 135M Instruct (LLaMA architecture, Q4_1, tied head). The files live
// outside the repository in $NIBBLE_MODELS (default ~/.cache/nibble/models), put there by
// scripts/fetch-models.sh; without them the tests skip.
//
// The prompts are fixed token ids rather than text, so the tests depend on no tokenizer: the
// ids are checked against the vocabulary's pieces, which spell the sentence in the comments.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "kernels/quantize.h"
#include "loaders/model_file.h"
#include "models/model.h"
#include "reference_forward.h"
#include "reference_gemma3.h"
#include "runtime/session.h"

namespace nibble {
namespace {

std::string models_dir() {
  const char* env = std::getenv("NIBBLE_MODELS");
  if (env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "") + "/.cache/nibble/models";
}

#define REQUIRE_MODEL(path)                                                                  \
  if (!std::filesystem::exists(path))                                                        \
  GTEST_SKIP() << "needs " << (path) << " (run scripts/fetch-models.sh, or set NIBBLE_MODELS)"

// The pieces of ids joined, with the vocabulary's space marker (sentencepiece "▁", byte-level
// BPE "Ġ") turned back into a space.
std::string spell(const ModelFile& f, const std::vector<int32_t>& ids, const std::string& space_marker) {
  const auto* pieces = f.meta.get_string_array("tokenizer.ggml.tokens");
  std::string text;
  for (int32_t id : ids) {
    const std::string& piece = pieces->at(static_cast<size_t>(id));
    for (size_t i = 0; i < piece.size(); ++i) {
      if (piece.compare(i, space_marker.size(), space_marker) == 0) {
        text += ' ';
        i += space_marker.size() - 1;
      } else {
        text += piece[i];
      }
    }
  }
  return text;
}

// The same model with every tensor dequantised to F32, in memory: identical weight values, but
// run by the runtime's float kernels, which do not round the activations.
ModelFile dequantized_copy(const ModelFile& f) {
  ModelFile out;
  out.path = f.path + " (dequantised to F32)";
  out.format = f.format;
  out.version = f.version;
  out.meta = f.meta;
  for (const TensorInfo& t : f.tensors) {
    const auto n = static_cast<int64_t>(t.n_elements());
    std::vector<uint8_t>& buf = out.owned_buffers.emplace_back(static_cast<size_t>(n) * sizeof(float));
    dequantize_row(t.type, t.data, n, reinterpret_cast<float*>(buf.data()));
    TensorInfo c = t;
    c.type = TensorType::F32;
    c.data = buf.data();
    c.nbytes = buf.size();
    out.tensors.push_back(c);
  }
  return out;
}

// One thread: on a machine shared with other jobs (ctest -j2 included) two threads' many short
// parallel regions took up to 20× longer here. The logits do not depend on the thread count
// (model_forward_test checks that), and model_gemma3_test runs prompt batches on two.
std::vector<float> runtime_logits(const ModelFile& f, const std::vector<int32_t>& ids, int64_t n_batch) {
  auto model = load_model(f);
  SessionOptions o;
  o.n_ctx = 64;
  o.n_threads = 1;
  o.n_batch = n_batch;
  Session s(*model, o);
  std::vector<float> out(ids.size() * model->config().n_vocab);
  s.eval_all_logits(ids.data(), static_cast<int64_t>(ids.size()), out.data());
  return out;
}

// Two comparisons against the reference on the file's dequantised weights:
// - the F32 copy: the same arithmetic in float and in double, so only float rounding differs
//   (bound 1e-3 of the logit range, as for the F32 LLaMA checkpoint);
// - the file as it is: the runtime quantises activations to int8 blocks of 32 for every
//   quantised matmul, the reference multiplies by exact activations. That rounding is the whole
//   difference (the F32 copy shows the rest is exact) and it grows with depth; `tol` is set
//   from the measured values quoted at each call, with headroom for other CPUs' kernels.
void check(const ModelFile& f, const std::vector<int32_t>& ids, const std::vector<std::vector<double>>& want,
           const std::string& name, double tol) {
  const testing::LogitDiff exact = testing::compare_logits(runtime_logits(dequantized_copy(f), ids, 32), want);
  testing::print_diff(name + " dequantised to F32", exact);
  EXPECT_LE(exact.rel(), 1e-3) << name;
  EXPECT_EQ(exact.argmax_agree, exact.positions) << name;
  for (int64_t batch : {static_cast<int64_t>(ids.size()), int64_t{1}}) {
    const testing::LogitDiff d = testing::compare_logits(runtime_logits(f, ids, batch), want);
    testing::print_diff(name + " batch " + std::to_string(batch), d);
    EXPECT_LE(d.rel(), tol) << name << " batch " << batch;
    // The activation rounding may flip the argmax where the reference nearly ties, nowhere else:
    // every differing pick lies within 1 % of the logit range of the reference's best.
    EXPECT_LE(d.max_pick_gap, 0.01 * d.range) << name << " batch " << batch;
    EXPECT_GE(d.argmax_agree, d.positions * 3 / 4) << name << " batch " << batch;
  }
}

TEST(RealModels, Gemma3_270mMatchesDoubleReference) {
  const std::string path = models_dir() + "/gemma-3-270m-q4_k_m.gguf";
  REQUIRE_MODEL(path);
  const ModelFile f = open_model_file(path);
  // <bos> then "The capital of France is Paris. It is known for the Eiffel Tower, the Louvre
  // museum and the cafes along the river Seine, where people walk in the" as Gemma's tokenizer
  // encodes it.
  const std::vector<int32_t> ids = {2,     818,   5279,   529,   7001, 563,   9079,  236761, 1030,   563,   3224,
                                    573,   506,   94648,  25822, 236764, 506, 132440, 14871, 532,   506,   70665,
                                    3008,  506,   8858,   69598, 236764, 1298, 1331,   3727,  528,    506};
  ASSERT_EQ(ids.size(), 32u);
  EXPECT_EQ(spell(f, {ids.begin() + 1, ids.end()}, "\xE2\x96\x81"),
            "The capital of France is Paris. It is known for the Eiffel Tower, the Louvre museum and "
            "the cafes along the river Seine, where people walk in the");
  const auto want = testing::ReferenceGemma3(f).run(ids);
  // Measured (AVX3_DL): 6.6e-7 for the F32 copy; 0.030 (batch 32) and 0.026 (batch 1) of the
  // logit range for the file, argmax agreeing at 31 and 29 of 32 positions, each flipped pick
  // within 0.245 (0.0046 of the range) of the reference's best.
  check(f, ids, want, "gemma-3-270m Q4_K_M", 0.05);
}

TEST(RealModels, SmolLM2_135mMatchesDoubleReference) {
  const std::string path = models_dir() + "/SmolLM2-135M-Instruct.Q4_1.gguf";
  REQUIRE_MODEL(path);
  const ModelFile f = open_model_file(path);
  // Whole-word pieces of the vocabulary spelling "The capital of France is Paris. It is known
  // for the Eiffel Tower, the art museum and the small shops along the river, where people walk
  // in" (not necessarily how the BPE tokenizer would split it: both passes see the same ids).
  const std::vector<int32_t> ids = {504, 3575, 282,  4649, 314,  7042,  30,  657, 314,  1343,  327,
                                    260, 414,  46682, 18669, 28, 260,  984, 6508, 284,  260,  1165,
                                    14402, 1683, 260, 4626, 28,  837,  701,  4549, 281, 260};
  ASSERT_EQ(ids.size(), 32u);
  EXPECT_EQ(spell(f, ids, "\xC4\xA0"),
            "The capital of France is Paris. It is known for the Eiffel Tower, the art museum and the "
            "small shops along the river, where people walk in the");
  const auto want = testing::ReferenceLlama(f).run(ids);
  // Measured (AVX3_DL): 0.018 (batch 32) and 0.021 (batch 1) of the logit range for the file,
  // argmax agreeing at 32 and 30 of 32 positions, each flipped pick within 0.385 (0.0063 of the
  // range) of the reference's best.
  check(f, ids, want, "SmolLM2-135M Q4_1", 0.05);
}

}  // namespace
}  // namespace nibble
