// The calibration pass (quant/calibration.h) and AWQ (quant/awq.h) on the bundled KJV model
// run at full precision (its weights dequantized to F32).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "kernels/quantize.h"
#include "quant/awq.h"
#include "quant/calibration.h"
#include "quant/float_weights.h"
#include "runtime/session.h"
#include "tests/calib_test_util.h"

namespace nibble {
namespace {

const std::string kModel = std::string(NIBBLE_SOURCE_DIR) + "/assets/kjv-llama-q4_0.gguf";

// Every 2-D tensor of the bundled file as F32: a full-precision model to calibrate.
FloatTensors all_float(const ModelFile& src) {
  FloatTensors w;
  for (const TensorInfo& t : src.tensors) float_tensor(w, src, t.name);
  return w;
}

std::string calibration_text() {
  return testing_calib::write_calibration_text(testing::TempDir(), "nibble_calib.txt",
      "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, Let there be light: and there was light.");
}

using testing_calib::logits_of;

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

TEST(Calibration, DrawsTheSameSequencesForTheSameSeed) {
  std::vector<int32_t> tokens(1000);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i);
  const auto a = draw_sequences(tokens, 5, 64, 7, 1), b = draw_sequences(tokens, 5, 64, 7, 1);
  const auto c = draw_sequences(tokens, 5, 64, 8, 1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (const auto& s : a) {
    ASSERT_EQ(s.size(), 64u);
    EXPECT_EQ(s[0], 1);                   // BOS in front
    for (size_t i = 2; i < s.size(); ++i) EXPECT_EQ(s[i], s[i - 1] + 1);  // contiguous text
  }
  EXPECT_THROW(draw_sequences(tokens, 1, 1001, 1, -1), std::invalid_argument);
}

TEST(Calibration, CollectsEveryLinearInputOfTheModel) {
  const ModelFile src = open_model_file(kModel);
  const ModelFile fp = with_float_tensors(src, all_float(src));
  CalibrationOptions o;
  o.text_path = calibration_text();
  o.n_chunks = 3;
  o.n_ctx = 32;
  const CalibrationData cal = calibrate(fp, o);
  const ModelConfig& c = cal.config;
  ASSERT_EQ(static_cast<int64_t>(cal.inputs.size()), 4 * c.n_layer + 1);
  EXPECT_EQ(cal.sequences.size(), 3u);
  for (const InputStats& s : cal.inputs) {
    EXPECT_EQ(s.n_tokens, 3 * 32);
    ASSERT_EQ(static_cast<int64_t>(s.gram.size()), s.dim * s.dim);
    for (int64_t j = 0; j < s.dim; ++j) {
      const double h = s.gram[j * s.dim + j];
      // Σx² ≥ (Σ|x|)²/n (Cauchy–Schwarz) and ≥ max²; H symmetric.
      EXPECT_GE(h * (1 + 1e-4), s.sum_abs[j] * s.sum_abs[j] / s.n_tokens);
      EXPECT_GE(h * (1 + 1e-4), static_cast<double>(s.max_abs[j]) * s.max_abs[j]);
      for (int64_t k = 0; k < s.dim; k += 17) EXPECT_EQ(s.gram[j * s.dim + k], s.gram[k * s.dim + j]);
    }
  }
  EXPECT_EQ(cal.find(0, LinearSite::kFfnDown)->dim, c.n_ff);
  EXPECT_EQ(cal.for_tensor("blk.2.attn_v.weight"), cal.find(2, LinearSite::kAttnIn));
  EXPECT_EQ(cal.for_tensor("output.weight"), cal.find(-1, LinearSite::kHead));
  EXPECT_EQ(cal.for_tensor("token_embd.weight"), nullptr);
  EXPECT_EQ(cal.for_tensor("blk.2.attn_norm.weight"), nullptr);
  o.text_path = testing::TempDir() + "/no_such_calibration_text.txt";
  EXPECT_THROW(calibrate(fp, o), FileError);
}

TEST(Calibration, OutputErrorIsTheSquaredErrorOfTheLayerOutputs) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  const int64_t t = 50, d = 24, rows = 5;
  std::vector<float> X(t * d), E(rows * d), H(d * d, 0.0f);
  for (float& v : X) v = nd(rng);
  for (float& v : E) v = nd(rng);
  for (int64_t i = 0; i < d; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      for (int64_t r = 0; r < t; ++r) H[i * d + j] += X[r * d + i] * X[r * d + j];
    }
  }
  double direct = 0;
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t o = 0; o < rows; ++o) {
      double y = 0;
      for (int64_t j = 0; j < d; ++j) y += static_cast<double>(E[o * d + j]) * X[r * d + j];
      direct += y * y;
    }
  }
  EXPECT_NEAR(output_error(E.data(), rows, d, H.data()), direct, 1e-3 * direct);
}

TEST(Awq, FoldingScalesLeavesTheFullPrecisionFunctionUnchanged) {
  const ModelFile src = open_model_file(kModel);
  FloatTensors base = all_float(src);
  const ModelFile fp = with_float_tensors(src, base);
  FloatTensors w = base;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.25f, 4.0f);
  auto scales = [&](int64_t n) {
    std::vector<float> s(n);
    for (float& v : s) v = u(rng);
    return s;
  };
  const int64_t D = w["blk.0.attn_q.weight"].cols, F = w["blk.0.ffn_up.weight"].rows;
  const int64_t kv = w["blk.0.attn_v.weight"].rows;
  for (const char* l : {"blk.0.", "blk.3."}) {
    const std::string b = l;
    fold_input_scales(w, src, b + "attn_norm.weight",
                      {b + "attn_q.weight", b + "attn_k.weight", b + "attn_v.weight"}, scales(D));
    fold_input_scales(w, src, b + "ffn_norm.weight", {b + "ffn_gate.weight", b + "ffn_up.weight"}, scales(D));
    fold_input_scales(w, src, b + "ffn_up.weight", {b + "ffn_down.weight"}, scales(F));
  }
  // v → attn_output: under grouped-query attention one v row feeds a column of attn_output per
  // query head of its group, so those columns share its scale.
  const std::unique_ptr<Model> model = load_model(src);
  const ModelConfig& cfg = model->config();
  const std::vector<float> sv = scales(kv);
  std::vector<float> so(cfg.q_dim());
  const int64_t group = cfg.n_head / cfg.n_head_kv;
  for (int64_t h = 0; h < cfg.n_head; ++h) {
    for (int64_t i = 0; i < cfg.head_dim; ++i) so[h * cfg.head_dim + i] = sv[(h / group) * cfg.head_dim + i];
  }
  FloatTensor& wo = w["blk.1.attn_output.weight"];
  for (int64_t r = 0; r < wo.rows; ++r) {
    for (int64_t j = 0; j < wo.cols; ++j) wo.row(r)[j] *= so[j];
  }
  FloatTensor& wv = w["blk.1.attn_v.weight"];
  for (int64_t r = 0; r < wv.rows; ++r) {
    for (int64_t j = 0; j < wv.cols; ++j) wv.row(r)[j] /= sv[r];
  }
  const std::vector<int32_t> ids = {1, 512, 1128, 2181, 3300, 263, 338, 278, 11203, 29889, 1126, 278};
  const std::vector<float> want = logits_of(fp, ids);
  const std::vector<float> got = logits_of(with_float_tensors(src, w), ids);
  EXPECT_LT(max_abs_diff(want, got), 2e-3);
  // And the change is real: without the producers' division the logits move.
  FloatTensors broken = w;
  broken["blk.0.attn_norm.weight"] = base["blk.0.attn_norm.weight"];
  EXPECT_GT(max_abs_diff(want, logits_of(with_float_tensors(src, broken), ids)), 1e-2);
}

TEST(Awq, SearchedScalesLeaveTheFunctionUnchangedAndLowerTheOutputError) {
  const ModelFile src = open_model_file(kModel);
  const ModelFile fp = with_float_tensors(src, all_float(src));
  CalibrationOptions co;
  co.text_path = calibration_text();
  co.n_chunks = 4;
  co.n_ctx = 64;
  CalibrationData cal = calibrate(fp, co);
  FloatTensors w;
  AwqOptions ao;
  // Not Q4_0: the bundled weights are Q4_0 values already, which Q4_0 reproduces exactly.
  ao.clip = false;  // clipping changes the weights on purpose
  const AwqReport rep = apply_awq(fp, cal, w, [](const std::string&) { return TensorType::Q4_G128; }, ao);
  ASSERT_EQ(static_cast<int64_t>(rep.groups.size()), 3 * cal.config.n_layer);  // GQA: no v → o
  int scaled = 0;
  double rtn = 0, awq = 0;
  for (const AwqGroupReport& g : rep.groups) {
    EXPECT_LE(g.rel_err_awq, g.rel_err_rtn) << g.group;
    scaled += g.alpha > 0;
    rtn += g.rel_err_rtn;
    awq += g.rel_err_awq;
  }
  EXPECT_GT(scaled, 0);
  EXPECT_LT(awq, rtn);
  const std::vector<int32_t> ids = {1, 512, 1128, 2181, 3300, 263, 338, 278, 11203, 29889};
  EXPECT_LT(max_abs_diff(logits_of(fp, ids), logits_of(with_float_tensors(fp, w), ids)), 2e-3);

  // The statistics now describe the scaled inputs: calibrating the folded model gives the
  // Gram matrices AWQ rewrote (H_ij / s_i s_j).
  const CalibrationData again = calibrate(with_float_tensors(fp, w), co);
  for (const InputStats& st : cal.inputs) {
    const InputStats* fresh = again.find(st.layer, st.site);
    ASSERT_NE(fresh, nullptr);
    double num = 0, den = 0;
    for (size_t i = 0; i < st.gram.size(); ++i) {
      num += std::fabs(static_cast<double>(st.gram[i]) - fresh->gram[i]);
      den += std::fabs(static_cast<double>(fresh->gram[i]));
    }
    EXPECT_LT(num, 1e-3 * den) << "layer " << st.layer << " site " << static_cast<int>(st.site);
  }

  // With clipping the weights change, and the per-block search only ever lowers the error.
  FloatTensors wc;
  CalibrationData cal2 = calibrate(fp, co);
  AwqOptions clip;
  const AwqReport rc = apply_awq(fp, cal2, wc, [](const std::string&) { return TensorType::Q4_G128; }, clip);
  EXPECT_GT(rc.clipped_blocks, 0);
  EXPECT_LE(rc.clipped_blocks, rc.blocks);
}

}  // namespace
}  // namespace nibble
