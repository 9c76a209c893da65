// Outlier decomposition (q8o, LLM.int8()-style): the matmul with an F16 outlier part beside the
// quantized product, why it exists (a few huge input channels ruin a static int8 activation
// scale), and binding such weights from a file (models/blocks.h, docs/format.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/fp16.h"
#include "kernels/matmul.h"
#include "kernels/matmul_internal.h"
#include "kernels/onednn_matmul.h"
#include "kernels/quantize.h"
#include "kernels/repack.h"
#include "models/blocks.h"
#include "quant/float_weights.h"
#include "runtime/session.h"

namespace nibble {
namespace {

const std::string kModel = std::string(NIBBLE_SOURCE_DIR) + "/assets/kjv-llama-q4_0.gguf";

// A layer y = W x split as q8o splits it: `type` weights with the outlier columns zeroed, and
// those columns as F16 (rows × n_outliers). The WeightMatrix points into this struct.
struct SplitLayer {
  std::vector<uint8_t> q;
  std::vector<uint16_t> outlier_w;
  std::vector<int32_t> cols;
  WeightMatrix W;
};

SplitLayer split_layer(TensorType type, const std::vector<float>& wf, int64_t N, int64_t K,
                       const std::vector<int32_t>& cols) {
  SplitLayer s;
  s.cols = cols;
  std::vector<float> inlier = wf;
  const int64_t J = static_cast<int64_t>(cols.size());
  s.outlier_w.resize(static_cast<size_t>(N * J));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t j = 0; j < J; ++j) {
      if (cols[j] < 0 || cols[j] >= K) continue;  // the refusal tests' deliberately bad columns
      s.outlier_w[n * J + j] = fp32_to_fp16(wf[n * K + cols[j]]);
      inlier[n * K + cols[j]] = 0.0f;
    }
  }
  const uint64_t rb = row_bytes(static_cast<uint32_t>(type), K);
  s.q.resize(N * rb);
  for (int64_t r = 0; r < N; ++r) quantize_row(type, inlier.data() + r * K, K, s.q.data() + r * rb);
  s.W.type = type;
  s.W.data = s.q.data();
  s.W.rows = N;
  s.W.cols = K;
  s.W.row_bytes = rb;
  if (J > 0) {
    s.W.outlier_cols = s.cols.data();
    s.W.outlier_w = s.outlier_w.data();
    s.W.n_outliers = J;
  }
  return s;
}

// The plain quantized layer (no decomposition), for comparison.
SplitLayer plain_layer(TensorType type, const std::vector<float>& wf, int64_t N, int64_t K) {
  return split_layer(type, wf, N, K, {});
}

// max |x| over the channels that are not outliers, per-tensor: the static scale q8o calibrates.
float inlier_max(const std::vector<float>& X, int64_t K, const std::vector<int32_t>& cols) {
  float m = 0.0f;
  for (size_t i = 0; i < X.size(); ++i) {
    const int32_t k = static_cast<int32_t>(i % K);
    if (!std::binary_search(cols.begin(), cols.end(), k)) m = std::max(m, std::fabs(X[i]));
  }
  return m;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

TEST(OutlierMatmul, MatchesTheReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  const int64_t K = 256, N = 72;
  const std::vector<int32_t> cols = {3, 40, 41, 200};
  std::vector<float> wf(N * K);
  for (float& v : wf) v = nd(rng) * 0.05f;
  for (TensorType type : {TensorType::Q8_C, TensorType::Q8_0, TensorType::Q4_0}) {
    const SplitLayer layer = split_layer(type, wf, N, K, cols);
    // Q8_0 and Q4_0 also in the kernel-native packed layout, which bind_matrix gives them.
    std::vector<PackedWeight> packed;
    std::vector<WeightMatrix> variants = {layer.W};
    if (has_packed_layout(layer.W)) {
      packed.push_back(repack_for_matmul(layer.W));
      ASSERT_EQ(packed.back().view.n_outliers, layer.W.n_outliers);  // the view keeps the part
      variants.push_back(packed.back().view);
    }
    for (const WeightMatrix& base : variants) {
      for (int64_t M : {1, 5, 40}) {
        std::vector<float> X(M * K);
        for (float& v : X) v = nd(rng);
        for (int64_t m = 0; m < M; ++m) {
          for (int32_t c : cols) X[m * K + c] *= 30.0f;
        }
        for (bool stat : {false, true}) {
          WeightMatrix W = base;
          W.act_scale = stat ? inlier_max(X, K, cols) / 127.0f : 0.0f;
          std::vector<float> got(M * N), want(M * N);
          MatmulWorkspace ws;
          ws.n_threads = 2;
          matmul(W, X.data(), M, got.data(), N, ws);
          matmul_reference(W, X.data(), M, want.data(), N);
          double max_err = 0;
          for (int64_t i = 0; i < M * N; ++i) {
            max_err = std::max(max_err, static_cast<double>(std::fabs(got[i] - want[i])));
          }
          const std::string what = type_name(static_cast<uint32_t>(type)) + " layout " +
                                   std::to_string(W.layout) + " M=" + std::to_string(M) +
                                   (stat ? " static" : " dynamic");
          // Float vs double accumulation of the same products: relative to the output's size.
          EXPECT_LT(max_err, 1e-4 * (1 + max_abs(want))) << what;

          // Warm workspace: a second call reuses the scratch and gives the same numbers.
          const float* scratch = ws.x_inliers.data();
          std::vector<float> again(M * N);
          matmul(W, X.data(), M, again.data(), N, ws);
          EXPECT_EQ(ws.x_inliers.data(), scratch) << what;
          EXPECT_EQ(again, got) << what;

          // Shared input with a weight that has outliers: the same as one matmul each.
          const SplitLayer other = plain_layer(type, wf, N, K);
          std::vector<float> y0(M * N), y1(M * N), o1(M * N);
          const WeightMatrix* Ws[2] = {&W, &other.W};
          float* Ys[2] = {y0.data(), y1.data()};
          const int64_t ldys[2] = {N, N};
          matmul_shared_input(Ws, Ys, ldys, 2, X.data(), M, ws);
          matmul(other.W, X.data(), M, o1.data(), N, ws);
          EXPECT_EQ(y0, got) << what;
          EXPECT_EQ(y1, o1) << what;
        }
      }
    }
  }
}

// With oneDNN set for prefill, weights with outliers still take nibble's kernels (oneDNN would
// drop the F16 part); the rest still go through oneDNN.
TEST(OutlierMatmul, PrefillWithOneDnnKeepsTheOutlierPart) {
  if (!OneDnnMatmul::available()) GTEST_SKIP() << "built without oneDNN";
  std::mt19937 rng(23);
  std::normal_distribution<float> nd;
  const int64_t K = 256, N = 64, M = 40;
  const std::vector<int32_t> cols = {8, 9, 150};
  std::vector<float> wf(N * K), X(M * K);
  for (float& v : wf) v = nd(rng) * 0.05f;
  for (float& v : X) v = nd(rng);
  for (int64_t m = 0; m < M; ++m) {
    for (int32_t c : cols) X[m * K + c] *= 40.0f;
  }
  const SplitLayer layer = split_layer(TensorType::Q8_0, wf, N, K, cols);
  MatmulWorkspace ws;
  ws.n_threads = 2;
  ws.prompt = std::make_shared<OneDnnMatmul>();
  std::vector<float> got(M * N), want(M * N);
  matmul(layer.W, X.data(), M, got.data(), N, ws);
  matmul_reference(layer.W, X.data(), M, want.data(), N);
  for (int64_t i = 0; i < M * N; ++i) ASSERT_NEAR(got[i], want[i], 1e-4 * (1 + max_abs(want))) << i;
  const WeightMatrix* Ws[1] = {&layer.W};
  float* Ys[1] = {got.data()};
  const int64_t ldys[1] = {N};
  matmul_shared_input(Ws, Ys, ldys, 1, X.data(), M, ws);
  for (int64_t i = 0; i < M * N; ++i) ASSERT_NEAR(got[i], want[i], 1e-4 * (1 + max_abs(want))) << i;
  EXPECT_THROW(ws.prompt->run(layer.W, X.data(), M, got.data(), N, 2), std::invalid_argument);
}

TEST(OutlierMatmul, RefusesABrokenOutlierPart) {
  std::vector<float> wf(8 * 64, 0.01f);
  SplitLayer layer = split_layer(TensorType::Q8_0, wf, 8, 64, {5, 9});
  std::vector<float> X(64, 1.0f), Y(8);
  MatmulWorkspace ws;
  std::vector<int32_t> bad = {9, 5};
  WeightMatrix W = layer.W;
  W.outlier_cols = bad.data();
  EXPECT_THROW(matmul(W, X.data(), 1, Y.data(), 8, ws), std::invalid_argument);
  EXPECT_THROW(matmul_reference(W, X.data(), 1, Y.data(), 8), std::invalid_argument);
  bad = {5, 64};
  EXPECT_THROW(matmul(W, X.data(), 1, Y.data(), 8, ws), std::invalid_argument);
  W = layer.W;
  W.outlier_w = nullptr;
  EXPECT_THROW(matmul(W, X.data(), 1, Y.data(), 8, ws), std::invalid_argument);
  W = layer.W;
  W.n_outliers = 65;
  EXPECT_THROW(matmul(W, X.data(), 1, Y.data(), 8, ws), std::invalid_argument);
}

// ‖Y − exact‖ / ‖exact‖ over all outputs.
double rel_error(const std::vector<float>& y, const std::vector<double>& exact) {
  double e = 0, n = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    e += (y[i] - exact[i]) * (y[i] - exact[i]);
    n += exact[i] * exact[i];
  }
  return std::sqrt(e / n);
}

// The LLM.int8() observation: a handful of input channels far larger than the rest set a
// per-tensor int8 step so coarse that every ordinary channel rounds to a few levels. Split off,
// the rest quantise finely and the outliers multiply exactly enough in F16.
TEST(OutlierMatmul, DecompositionRescuesInjectedOutlierChannels) {
  std::mt19937 rng(17);
  std::normal_distribution<float> nd;
  const int64_t K = 256, N = 64, M = 16;
  const std::vector<int32_t> cols = {17, 101, 230};
  std::vector<float> wf(N * K);
  for (float& v : wf) v = nd(rng) * 0.05f;
  // Weights reading always-huge channels are small in trained layers (their inputs are large):
  // without this the outliers' own, exactly representable, contribution would dominate Y.
  for (int64_t n = 0; n < N; ++n) {
    for (int32_t c : cols) wf[n * K + c] *= 0.2f;
  }
  std::vector<float> X(M * K);
  for (float& v : X) v = nd(rng);
  for (int64_t m = 0; m < M; ++m) {
    for (int32_t c : cols) X[m * K + c] = (rng() & 1) ? 60.0f : -60.0f;
  }
  std::vector<double> exact(M * N);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(X[m * K + k]) * wf[n * K + k];
      exact[m * N + n] = acc;
    }
  }
  MatmulWorkspace ws;
  ws.n_threads = 2;

  // (a) q8a8 without smoothing: Q8_C weights, one static step from the largest |x| (the outliers).
  SplitLayer plain = plain_layer(TensorType::Q8_C, wf, N, K);
  plain.W.act_scale = static_cast<float>(max_abs(X)) / 127.0f;
  std::vector<float> ya(M * N);
  matmul(plain.W, X.data(), M, ya.data(), N, ws);
  const double err_a = rel_error(ya, exact);

  // (b) the same weights with the three channels decomposed; the step from the other channels.
  SplitLayer split = split_layer(TensorType::Q8_C, wf, N, K, cols);
  split.W.act_scale = inlier_max(X, K, cols) / 127.0f;
  std::vector<float> yb(M * N);
  matmul(split.W, X.data(), M, yb.data(), N, ws);
  const double err_b = rel_error(yb, exact);

  // For scale: dynamic per-block int8 (blocks of 32, so each outlier spoils its own block).
  SplitLayer dyn = plain_layer(TensorType::Q8_C, wf, N, K);
  std::vector<float> yd(M * N);
  matmul(dyn.W, X.data(), M, yd.data(), N, ws);
  const double err_d = rel_error(yd, exact);

  std::printf("injected outliers (3 of %lld channels at ±60): relative error vs exact float: "
              "static int8 %.2f %%, decomposed %.3f %% (%.0fx better), dynamic per-block int8 %.2f %%\n",
              static_cast<long long>(K), 100 * err_a, 100 * err_b, err_a / err_b, 100 * err_d);
  EXPECT_GT(err_a, 0.05);
  EXPECT_LT(err_b, 0.01);
  EXPECT_GT(err_a, 10 * err_b);
}

// ---- Binding (models/blocks.cpp) on an in-memory file ----

void add_tensor(ModelFile& f, const std::string& name, TensorType type, std::vector<uint64_t> dims,
                std::vector<uint8_t> bytes) {
  f.owned_buffers.push_back(std::move(bytes));
  TensorInfo t;
  t.name = name;
  t.type = type;
  t.dims = std::move(dims);
  t.data = f.owned_buffers.back().data();
  t.nbytes = f.owned_buffers.back().size();
  f.tensors.push_back(std::move(t));
}

template <typename T>
std::vector<uint8_t> bytes_of(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

constexpr int64_t kIn = 64, kOut = 8;
const std::string kName = "blk.0.ffn_down.weight";

// A file with kName (type, kIn → kOut) and, unless told otherwise, its outlier part over `cols`.
ModelFile outlier_file(TensorType type, const std::vector<int32_t>& cols, bool with_tensor = true,
                       bool with_meta = true, std::vector<uint64_t> outlier_dims = {},
                       TensorType outlier_type = TensorType::F16) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  std::vector<float> wf(kOut * kIn);
  for (float& v : wf) v = nd(rng) * 0.05f;
  const SplitLayer s = split_layer(type, wf, kOut, kIn, cols);
  ModelFile f;
  f.path = "mem.nibble";
  f.format = "nibble";
  add_tensor(f, kName, type, {static_cast<uint64_t>(kIn), static_cast<uint64_t>(kOut)}, s.q);
  if (outlier_dims.empty()) outlier_dims = {cols.size(), static_cast<uint64_t>(kOut)};
  if (with_tensor) {
    std::vector<uint8_t> b = bytes_of(s.outlier_w);
    if (outlier_type == TensorType::F32) b.resize(b.size() * 2);
    b.resize(std::max<size_t>(b.size(), 2 * outlier_dims[0] * (outlier_dims.size() > 1 ? outlier_dims[1] : 1)));
    add_tensor(f, kName + ".outliers", outlier_type, outlier_dims, std::move(b));
  }
  if (with_meta) f.meta.set_int_array("nibble.outlier_cols." + kName, cols);
  return f;
}

void expect_refused(const ModelFile& f, const std::string& why, bool with_store = true) {
  WeightStore store;
  try {
    bind_matrix(f, kName, kIn, kOut, with_store ? &store : nullptr);
    ADD_FAILURE() << why << ": accepted";
  } catch (const FileError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("mem.nibble"), std::string::npos) << why << ": " << msg;
    EXPECT_NE(msg.find(kName), std::string::npos) << why << ": " << msg;
  }
}

TEST(OutlierBinding, SetsTheOutlierPart) {
  for (TensorType type : {TensorType::Q8_C, TensorType::Q8_0}) {
    const std::vector<int32_t> cols = {2, 33, 60};
    const ModelFile f = outlier_file(type, cols);
    WeightStore store;
    const WeightMatrix w = bind_matrix(f, kName, kIn, kOut, &store);
    ASSERT_EQ(w.n_outliers, 3);
    EXPECT_EQ(std::vector<int32_t>(w.outlier_cols, w.outlier_cols + 3), cols);
    EXPECT_EQ(static_cast<const void*>(w.outlier_w), f.tensor(kName + ".outliers").data);  // in place
    EXPECT_EQ(store.outlier_cols.size(), 1u);
    // Q8_0 is repacked into the store where the target has a packed tile for it (strips where
    // it reads those); the packed view keeps the outlier part.
    const bool q8_0 = type == TensorType::Q8_0;
    const bool rows16 =
        q8_0 && detail::rows16_layout_pays(type) && detail::rows16_layout_fits(type, kIn);
    const bool packs = q8_0 && detail::packed_layout_pays(type);
    EXPECT_EQ(w.layout, rows16 ? kLayoutRows16 : packs ? kLayoutPacked4 : kLayoutGguf);
    // Binding more weights keeps the earlier views' columns where they were.
    const ModelFile g = outlier_file(type, {1});
    for (int i = 0; i < 40; ++i) bind_matrix(g, kName, kIn, kOut, &store);
    EXPECT_EQ(std::vector<int32_t>(w.outlier_cols, w.outlier_cols + 3), cols);
    std::vector<float> X(2 * kIn), got(2 * kOut), want(2 * kOut);
    std::mt19937 rng(9);
    std::normal_distribution<float> nd;
    for (float& v : X) v = nd(rng);
    MatmulWorkspace ws;
    matmul(w, X.data(), 2, got.data(), kOut, ws);
    matmul_reference(w, X.data(), 2, want.data(), kOut);
    for (int i = 0; i < 2 * kOut; ++i) EXPECT_NEAR(got[i], want[i], 1e-4 * (1 + std::fabs(want[i])));
  }
  // No outlier part: nothing set, no store entry.
  ModelFile plain = outlier_file(TensorType::Q8_C, {2}, false, false);
  WeightStore store;
  EXPECT_EQ(bind_matrix(plain, kName, kIn, kOut, &store).n_outliers, 0);
  EXPECT_TRUE(store.outlier_cols.empty());
}

TEST(OutlierBinding, RefusesInconsistentParts) {
  const TensorType t = TensorType::Q8_C;
  expect_refused(outlier_file(t, {2, 33}), "no store", false);
  expect_refused(outlier_file(t, {2, 33}, false, true), "meta without tensor");
  expect_refused(outlier_file(t, {2, 33}, true, false), "tensor without meta");
  expect_refused(outlier_file(t, {2, 33}, true, true, {3, kOut}), "dims[0] != count");
  expect_refused(outlier_file(t, {2, 33}, true, true, {2, kOut + 1}), "dims[1] != rows");
  expect_refused(outlier_file(t, {2, 33}, true, true, {2 * kOut}), "1-D");
  expect_refused(outlier_file(t, {2, 33}, true, true, {}, TensorType::F32), "F32 outliers");
  expect_refused(outlier_file(t, {33, 2}), "unsorted");
  expect_refused(outlier_file(t, {2, 2}), "duplicate");
  expect_refused(outlier_file(t, {2, kIn}), "out of range");
  expect_refused(outlier_file(t, {-1, 2}), "negative");
  ModelFile f = outlier_file(t, {2, 33});
  f.meta.set_float_array("nibble.outlier_cols." + kName, {2.0f, 33.0f});
  expect_refused(f, "float array");
  f.meta.set_int_array("nibble.outlier_cols." + kName, {});
  expect_refused(f, "empty array");
}

// The bundled model, all in F32, with an outlier part on two matrices (one used alone, one in
// the shared-input q/k/v projection): it loads (the extra tensors are not refused) and computes
// the same function; without the F16 part (columns zeroed only) it would not.
TEST(OutlierBinding, AModelWithOutlierPartsLoadsAndRuns) {
  const ModelFile src = open_model_file(kModel);
  FloatTensors all;
  for (const TensorInfo& t : src.tensors) float_tensor(all, src, t.name);
  auto logits_of = [](const ModelFile& f) {
    auto model = load_model(f);
    SessionOptions o;
    o.n_ctx = 32;
    o.n_threads = 2;
    Session s(*model, o);
    const std::vector<int32_t> ids = {1, 1126, 372, 2996, 304, 1209, 29892, 746};
    std::vector<float> out(ids.size() * model->config().n_vocab);
    s.eval_all_logits(ids.data(), static_cast<int64_t>(ids.size()), out.data());
    return out;
  };
  const std::vector<float> base = logits_of(with_float_tensors(src, all));

  // Three channels of each split off into F16 (the values those columns had, rounded).
  const std::vector<std::string> names = {"blk.0.ffn_down.weight", "blk.1.attn_k.weight"};
  const std::vector<int32_t> cols = {0, 7, 100};
  FloatTensors zeroed = all;
  std::vector<std::vector<uint16_t>> parts;
  for (const std::string& n : names) {
    FloatTensor& t = zeroed[n];
    std::vector<uint16_t> ow(t.rows * cols.size());
    for (int64_t r = 0; r < t.rows; ++r) {
      for (size_t j = 0; j < cols.size(); ++j) {
        ow[r * cols.size() + j] = fp32_to_fp16(t.row(r)[cols[j]]);
        t.row(r)[cols[j]] = 0.0f;
      }
    }
    parts.push_back(std::move(ow));
  }
  const std::vector<float> dropped = logits_of(with_float_tensors(src, zeroed));
  ModelFile f = with_float_tensors(src, zeroed);
  for (size_t i = 0; i < names.size(); ++i) {
    add_tensor(f, names[i] + ".outliers", TensorType::F16,
               {cols.size(), static_cast<uint64_t>(zeroed[names[i]].rows)}, bytes_of(parts[i]));
    f.meta.set_int_array("nibble.outlier_cols." + names[i], cols);
  }
  const std::vector<float> split = logits_of(f);
  double diff = 0, diff_dropped = 0, scale = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(split[i] - base[i])));
    diff_dropped = std::max(diff_dropped, static_cast<double>(std::fabs(dropped[i] - base[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(base[i])));
  }
  std::printf("F32 model, outlier parts on %zu matrices: max |dlogit| %.2e (max |logit| %.1f); "
              "columns zeroed without the part: %.2e\n", names.size(), diff, scale, diff_dropped);
  // Only the F16 rounding of three columns (and the summation order) differs.
  EXPECT_LT(diff, 1e-3 * (1 + scale));
  EXPECT_GT(diff_dropped, 10 * diff);
}

}  // namespace
}  // namespace nibble
