// Static INT8 activations (W8A8): the matmul path with a calibrated input scale
// (WeightMatrix::act_scale), SmoothQuant's folding, and the q8a8 recipe end to end on the
// bundled model.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <utility>

#include "kernels/matmul.h"
#include "kernels/quantize.h"
#include "kernels/repack.h"
#include "quant/calibration.h"
#include "quant/float_weights.h"
#include "quant/nibble_quantize.h"
#include "quant/smoothquant.h"
#include "runtime/session.h"
#include "tests/calib_test_util.h"
#include "tests/kernels_test_util.h"

namespace nibble {
namespace {

const std::string kModel = std::string(NIBBLE_SOURCE_DIR) + "/assets/kjv-llama-q4_0.gguf";

std::string calibration_text() {
  return testing_calib::write_calibration_text(testing::TempDir(), "nibble_static_calib.txt",
      "And it came to pass, when men began to multiply on the face of the earth, and daughters were born unto them, That the sons of God saw the daughters of men that they were fair; and they took them wives of all which they chose.");
}

using testing_calib::logits_of;

TEST(StaticActivations, QuantizeWithOneStepRoundsAndClamps) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = (i - 32) * 0.37f;
  x[5] = 1000.0f;
  x[6] = -1000.0f;
  QuantizedInput q;
  quantize_input_static(x.data(), 2, 32, 0.25f, q);
  for (int i = 0; i < 64; ++i) {
    const float want = std::clamp(std::round(x[i] / 0.25f), -127.0f, 127.0f);
    EXPECT_EQ(q.q[i], static_cast<int8_t>(want)) << i;
  }
  EXPECT_EQ(q.d[0], 0.25f);
  EXPECT_EQ(q.d[1], 0.25f);
  int32_t s0 = 0;
  for (int i = 0; i < 32; ++i) s0 += q.q[i];
  EXPECT_EQ(q.sum[0], s0);
  EXPECT_EQ(q.static_step, 0.25f);
  // Every target's vectorised quantisation is the reference's, bit for bit (ties, clamping).
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-40.0f, 40.0f);
  std::vector<float> big(7 * 2304);
  for (float& v : big) v = u(rng);
  for (int i = 0; i < 64; ++i) big[i] = (i - 32) * 0.125f;  // exact .5 ties at step 0.25
  QuantizedInput ref;
  quantize_input_static_reference(big.data(), 7, 2304, 0.25f, ref);
  EXPECT_EQ(ref.static_step, 0.25f);
  test::for_each_target([&](const std::string& target) {
    QuantizedInput got;
    quantize_input_static(big.data(), 7, 2304, 0.25f, got, 2);
    EXPECT_EQ(got.q, ref.q) << target;
    EXPECT_EQ(got.d, ref.d) << target;
    EXPECT_EQ(got.sum16, ref.sum16) << target;
    EXPECT_EQ(got.dsum, ref.dsum) << target;
    EXPECT_EQ(got.static_step, ref.static_step) << target;
  });
  EXPECT_THROW(quantize_input_static(x.data(), 2, 32, 0.0f, q), std::invalid_argument);
  EXPECT_THROW(quantize_input_static(x.data(), 2, 32, NAN, q), std::invalid_argument);
}

TEST(StaticActivations, MatmulWithAStaticScaleMatchesTheReference) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  // K = 2304: 72 blocks, several K slices of the panel GEMM and a partial one; M = 130: W8A8
  // tiles of 8 rows and a tail.
  for (const auto& [K, N] : {std::pair<int64_t, int64_t>{256, 72}, {2304, 40}}) {
    std::vector<float> wf(N * K);
    for (float& v : wf) v = nd(rng) * 0.05f;
    for (TensorType type : {TensorType::Q8_C, TensorType::Q8_0, TensorType::Q4_0, TensorType::Q6_K,
                            TensorType::Q4_K, TensorType::Q5_K}) {
      const uint64_t rb = row_bytes(static_cast<uint32_t>(type), K);
      std::vector<uint8_t> wq(N * rb);
      for (int64_t r = 0; r < N; ++r) quantize_row(type, wf.data() + r * K, K, wq.data() + r * rb);
      WeightMatrix W;
      W.type = type;
      W.data = wq.data();
      W.rows = N;
      W.cols = K;
      W.row_bytes = rb;
      W.act_scale = 0.02f;
      // Where the running target packs the type (Q8_0, Q4_0; Q4_K and Q5_K on AVX-512 VNNI),
      // the packed copy too: a scale per 32-block takes the per-block tiles on unpacked tiles.
      const PackedWeight P = repack_for_matmul(W);
      for (int64_t M : {1, 5, 40, 130}) {
        std::vector<float> X(M * K), got(M * N), want(M * N), dyn(M * N);
        for (float& v : X) v = nd(rng);
        matmul_reference(W, X.data(), M, want.data(), N);
        // Every target: static scales take their own tiles (a scale per 32-block, not per 256).
        test::for_each_target([&](const std::string&) {
          MatmulWorkspace ws;
          ws.n_threads = 2;
          matmul(W, X.data(), M, got.data(), N, ws);
          if (P.view.layout != kLayoutGguf) {
            std::vector<float> packed(M * N);
            matmul(P.view, X.data(), M, packed.data(), N, ws);
            if (P.view.layout == kLayoutPacked4) {  // the same arithmetic in the same order
              EXPECT_EQ(packed, got)
                  << type_name(static_cast<uint32_t>(type)) << " M=" << M << " packed";
            } else {  // kLayoutRows16 sums whole blocks per row: another float order
              for (int64_t i = 0; i < M * N; ++i)
                ASSERT_NEAR(packed[i], got[i], 1e-4 * (1 + std::fabs(got[i])))
                    << type_name(static_cast<uint32_t>(type)) << " M=" << M << " rows16";
            }
          }
          WeightMatrix Wd = W;
          Wd.act_scale = 0.0f;
          matmul(Wd, X.data(), M, dyn.data(), N, ws);
          double max_err = 0, max_dyn = 0, max_ref = 0;
          for (int64_t i = 0; i < M * N; ++i) {
            max_err = std::max(max_err, static_cast<double>(std::fabs(got[i] - want[i])));
            max_dyn = std::max(max_dyn, static_cast<double>(std::fabs(got[i] - dyn[i])));
            max_ref = std::max(max_ref, static_cast<double>(std::fabs(want[i])));
          }
          EXPECT_LT(max_err, 1e-4 * (1 + max_ref))
              << type_name(static_cast<uint32_t>(type)) << " M=" << M;
          // The static step (0.02, |x| up to ~4 → clamped at 2.54) really changes the products.
          EXPECT_GT(max_dyn, 1e-3) << type_name(static_cast<uint32_t>(type)) << " M=" << M;
        });
      }
    }
  }
}

TEST(StaticActivations, SmoothingLeavesTheFullPrecisionFunctionUnchanged) {
  const ModelFile src = open_model_file(kModel);
  FloatTensors all;
  for (const TensorInfo& t : src.tensors) float_tensor(all, src, t.name);
  const ModelFile fp = with_float_tensors(src, all);
  CalibrationOptions co;
  co.text_path = calibration_text();
  co.n_chunks = 3;
  co.n_ctx = 48;
  co.gram = false;
  CalibrationData cal = calibrate(fp, co);
  FloatTensors w;
  const SmoothReport rep = apply_smoothquant(fp, cal, w, 0.5f);
  EXPECT_EQ(static_cast<int64_t>(rep.groups.size()), 3 * cal.config.n_layer);
  EXPECT_LT(rep.max_abs_after, rep.max_abs_before);
  const std::vector<int32_t> ids = {1, 1126, 372, 2996, 304, 1209, 29892, 746, 1757, 4689};
  const std::vector<float> a = logits_of(fp, ids), b = logits_of(with_float_tensors(fp, w), ids);
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
  EXPECT_LT(m, 2e-3);
  // The rewritten statistics are the smoothed model's.
  const CalibrationData again = calibrate(with_float_tensors(fp, w), co);
  for (const InputStats& st : cal.inputs) {
    const InputStats* f = again.find(st.layer, st.site);
    ASSERT_NE(f, nullptr);
    for (int64_t j = 0; j < st.dim; j += 7) EXPECT_NEAR(st.max_abs[j], f->max_abs[j], 1e-3 * (1 + f->max_abs[j]));
  }
}

TEST(StaticActivations, Q8a8RecipeWritesAScalePerLinearLayerAndRuns) {
  const std::string out = testing::TempDir() + "/nibble_q8a8_test.q8";
  QuantizeOptions o;
  o.calib.text_path = calibration_text();
  o.calib.n_chunks = 3;
  o.calib.n_ctx = 48;
  const QuantizeResult r = quantize_model(kModel, out, "q8a8", o);
  EXPECT_NE(r.calibration.find("smoothquant"), std::string::npos);
  const ModelFile q = open_model_file(out);
  int scaled = 0;
  for (const TensorInfo& t : q.tensors) {
    const bool linear = t.dims.size() == 2 && t.name != "token_embd.weight";
    EXPECT_EQ(q.meta.has("nibble.act_scale." + t.name), linear) << t.name;
    if (linear) {
      EXPECT_EQ(t.type, TensorType::Q8_C) << t.name;
      EXPECT_GT(*q.meta.get_float("nibble.act_scale." + t.name), 0.0);
      ++scaled;
    }
  }
  EXPECT_EQ(scaled, 7 * 8 + (q.find_tensor("output.weight") ? 1 : 0));
  // Close to the model it came from (the bundled weights, here the full-precision source).
  const ModelFile src = open_model_file(kModel);
  const std::vector<int32_t> ids = {1, 1126, 372, 2996, 304, 1209, 29892, 746, 1757, 4689};
  const std::vector<float> a = logits_of(src, ids), b = logits_of(q, ids);
  double err = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err += (a[i] - b[i]) * (a[i] - b[i]);
    ref += a[i] * a[i];
  }
  EXPECT_LT(std::sqrt(err / ref), 0.05);
  // Without a calibration text the recipe is refused.
  EXPECT_THROW(quantize_model(kModel, out, "q8a8", QuantizeOptions{}), std::invalid_argument);
  std::filesystem::remove(out);
}

}  // namespace
}  // namespace nibble
