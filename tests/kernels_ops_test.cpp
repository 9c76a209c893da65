// Every op on every Highway target against its scalar reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "kernels/fp16.h"
#include "kernels/ops.h"
#include "tests/kernels_test_util.h"

namespace nibble {
namespace {

// |got − want| ≤ abs_tol + rel_tol·|want|, element by element.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, float rel_tol, float abs_tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], abs_tol + rel_tol * std::fabs(want[i])) << what << " i=" << i;
  }
}

TEST(Ops, RmsNorm) {
  std::mt19937 rng(21);
  for (int64_t n : {1, 7, 33, 4096, 5120}) {
    const auto x = test::random_floats(rng, n, -3.0f, 3.0f);
    const auto w = test::random_floats(rng, n, 0.5f, 1.5f);
    std::vector<float> want(n);
    ref::rms_norm(x.data(), w.data(), n, 1e-5f, want.data());
    test::for_each_target([&](const std::string&) {
      std::vector<float> got(n);
      rms_norm(x.data(), w.data(), n, 1e-5f, got.data());
      expect_close(got, want, 2e-6f, 1e-7f, "n=" + std::to_string(n));
      std::vector<float> in_place = x;  // out may alias x
      rms_norm(in_place.data(), w.data(), n, 1e-5f, in_place.data());
      EXPECT_EQ(in_place, got);
    });
  }
}

TEST(Ops, RopeBothStyles) {
  std::mt19937 rng(22);
  struct Case {
    int64_t n_heads, head_dim, rot_dim, pos;
    float base, freq_scale;
  };
  const Case cases[] = {{4, 64, 64, 0, 10000.0f, 1.0f},   {3, 128, 128, 1, 10000.0f, 1.0f},
                        {2, 128, 128, 4095, 500000.0f, 0.25f}, {5, 64, 32, 17, 10000.0f, 1.0f},
                        {1, 6, 6, 3, 10000.0f, 1.0f},     {2, 200, 136, 1000, 1e6f, 1.0f}};
  for (RopeStyle style : {RopeStyle::kAdjacent, RopeStyle::kNeox}) {
    for (const Case& c : cases) {
      const std::string what = std::string(style == RopeStyle::kAdjacent ? "adjacent" : "neox") +
                               " head_dim=" + std::to_string(c.head_dim) + " rot=" + std::to_string(c.rot_dim) +
                               " pos=" + std::to_string(c.pos);
      const auto x = test::random_floats(rng, c.n_heads * c.head_dim, -2.0f, 2.0f);
      std::vector<float> want = x;
      ref::rope(want.data(), c.n_heads, c.head_dim, c.rot_dim, c.pos, c.base, c.freq_scale, style);
      std::vector<float> cos(static_cast<size_t>(c.rot_dim / 2)), sin(cos.size());
      rope_angles(c.rot_dim, c.pos, c.base, c.freq_scale, cos.data(), sin.data());
      test::for_each_target([&](const std::string&) {
        std::vector<float> got = x;
        rope(got.data(), c.n_heads, c.head_dim, c.rot_dim, c.pos, c.base, c.freq_scale, style);
        expect_close(got, want, 1e-6f, 1e-6f, what);
        // With the angles computed once: bit-identical to rope.
        std::vector<float> with_angles = x;
        rope_with_angles(with_angles.data(), c.n_heads, c.head_dim, c.rot_dim, cos.data(),
                         sin.data(), style);
        EXPECT_EQ(with_angles, got) << what;
      });
    }
  }
  // Position 0 is the identity; a quarter turn of pair 0 at angle π/2 swaps with a sign.
  std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f};
  rope(x.data(), 1, 4, 4, 0, 10000.0f, 1.0f, RopeStyle::kAdjacent);
  EXPECT_EQ(x, (std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f}));
  std::vector<float> y = {1.0f, 0.0f, 0.0f, 0.0f};
  rope(y.data(), 1, 4, 2, 1, 10000.0f, static_cast<float>(M_PI / 2), RopeStyle::kNeox);
  EXPECT_NEAR(y[0], 0.0f, 1e-7f);
  EXPECT_NEAR(y[1], 1.0f, 1e-7f);
  EXPECT_THROW(rope(y.data(), 1, 4, 3, 1, 10000.0f, 1.0f, RopeStyle::kNeox), std::invalid_argument);
  float c3[2], s3[2];
  EXPECT_THROW(rope_angles(3, 1, 10000.0f, 1.0f, c3, s3), std::invalid_argument);
  EXPECT_THROW(rope_with_angles(y.data(), 1, 4, 6, c3, s3, RopeStyle::kNeox),
               std::invalid_argument);
}

TEST(Ops, Softmax) {
  std::mt19937 rng(23);
  for (int64_t n : {1, 5, 17, 1000, 32000}) {
    auto x = test::random_floats(rng, n, -20.0f, 20.0f);
    if (n > 3) x[2] = -1e30f;  // a masked-out position
    std::vector<float> want = x;
    ref::softmax(want.data(), n);
    test::for_each_target([&](const std::string&) {
      std::vector<float> got = x;
      softmax(got.data(), n);
      expect_close(got, want, 1e-5f, 1e-9f, "n=" + std::to_string(n));
      double sum = 0;
      for (float v : got) sum += v;
      EXPECT_NEAR(sum, 1.0, 1e-5);
    });
  }
}

TEST(Ops, SiluMul) {
  std::mt19937 rng(24);
  for (int64_t n : {1, 7, 33, 5632}) {
    auto gate = test::random_floats(rng, n, -30.0f, 30.0f);
    if (n > 4) {
      gate[0] = -100.0f;  // e^100 overflows: silu → −0
      gate[1] = 100.0f;
      gate[2] = 0.0f;
    }
    const auto up = test::random_floats(rng, n, -2.0f, 2.0f);
    std::vector<float> want(n);
    ref::silu_mul(gate.data(), up.data(), n, want.data());
    test::for_each_target([&](const std::string&) {
      std::vector<float> got(n);
      silu_mul(gate.data(), up.data(), n, got.data());
      expect_close(got, want, 1e-5f, 1e-30f, "n=" + std::to_string(n));
    });
  }
}

// Bit-identical to fp32_to_bf16 on every target: ties to even either way, the largest finite
// floats (which round up to infinity), infinities, NaNs (quiet ones and a signalling one, which
// must not turn into an infinity), denormals and zeros of both signs.
TEST(Ops, ToBf16) {
  std::mt19937 rng(31);
  auto from_bits = [](uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  };
  for (int64_t n : {1, 7, 33, 2048}) {
    auto x = test::random_floats(rng, n, -100.0f, 100.0f);
    const uint32_t special[] = {0x3F808000u, 0x3F818000u, 0xBF808000u, 0x7F7FFFFFu, 0xFF7FFFFFu,
                                0x7F800000u, 0xFF800000u, 0x7FC00000u, 0x7F800001u, 0xFFFFFFFFu,
                                0x00000001u, 0x80000000u, 0x00000000u, 0x3F80FFFFu};
    for (size_t i = 0; i < std::size(special) && static_cast<int64_t>(i) < n; ++i)
      x[i] = from_bits(special[i]);
    std::vector<uint16_t> want(n);
    ref::to_bf16(x.data(), n, want.data());
    test::for_each_target([&](const std::string& target) {
      std::vector<uint16_t> got(n, 0xABCD);
      to_bf16(x.data(), n, got.data());
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(got[i], want[i]) << target << " n=" << n << " i=" << i;
    });
  }
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3F808000u)), 0x3F80);  // a tie, to even
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3F818000u)), 0x3F82);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7F800001u)), 0x7FC0);  // a NaN stays a NaN
}

TEST(Ops, GeluTanhMul) {
  std::mt19937 rng(27);
  for (int64_t n : {1, 7, 33, 2048, 5632}) {
    auto gate = test::random_floats(rng, n, -12.0f, 12.0f);
    if (n > 6) {
      gate[0] = -100.0f;  // e^(−2u) far past float range: the Highway form caps it, → −0
      gate[1] = 100.0f;   // → the gate itself
      gate[2] = 0.0f;
      gate[3] = -5.0f;    // 1 + tanh(u) ≈ 9e-8: a float 1 + tanh(u) would be all rounding error
      gate[4] = 1e15f;    // g³ overflows to inf: still → g
      gate[5] = -1e15f;
    }
    const auto up = test::random_floats(rng, n, -2.0f, 2.0f);
    std::vector<float> want(n);
    ref::gelu_tanh_mul(gate.data(), up.data(), n, want.data());
    test::for_each_target([&](const std::string&) {
      std::vector<float> got(n);
      gelu_tanh_mul(gate.data(), up.data(), n, got.data());
      // Relative: a few float roundings amplified by e^(−2u)'s sensitivity to its argument.
      // Absolute: far-negative gates, where both sides are below 1e-9 (e.g. ~1e-21 at g = −8).
      expect_close(got, want, 4e-6f, 1e-9f, "n=" + std::to_string(n));
      std::vector<float> in_place = gate;  // out may alias gate
      gelu_tanh_mul(in_place.data(), up.data(), n, in_place.data());
      EXPECT_EQ(in_place, got);
    });
  }
  // Known values of gelu_tanh (up = 1): 0, ±1, and the large-|g| limits g and 0.
  const std::vector<float> g = {0.0f, 1.0f, -1.0f, 3.0f, 20.0f, -20.0f}, ones(g.size(), 1.0f);
  const std::vector<float> want = {0.0f, 0.8411920f, -0.1588080f, 2.9963627f, 20.0f, 0.0f};
  std::vector<float> got(g.size());
  ref::gelu_tanh_mul(g.data(), ones.data(), g.size(), got.data());
  expect_close(got, want, 1e-6f, 1e-7f, "reference known values");
  gelu_tanh_mul(g.data(), ones.data(), g.size(), got.data());
  expect_close(got, want, 1e-6f, 1e-7f, "dispatched known values");
}

// The tiled kernel (prefill, and decode as n = 1) against the scalar reference, which is
// ref::attention_head per (token, head) over its visible range, on every target.
TEST(Ops, AttentionBatch) {
  std::mt19937 rng(26);
  constexpr float kSentinel = 12345.0f;
  for (int64_t head_dim : {32, 64, 256}) {
    for (int64_t group : {1, 8}) {
      for (int64_t window : {0, 50}) {
        for (int64_t pos0 : {0, 100}) {
          for (int64_t n_tokens : {1, 5, 37, 130}) {
            const std::string what = "head_dim=" + std::to_string(head_dim) + " group=" + std::to_string(group) +
                                     " window=" + std::to_string(window) + " pos0=" + std::to_string(pos0) +
                                     " n=" + std::to_string(n_tokens);
            // A head's rows strided in a token-major cache (copied into tiles by the kernel), with
            // strides wider than the data so that reading or writing past a head shows up; and
            // contiguous, as nibble's head-major KvCache holds them (read in place).
            for (bool contiguous : {false, true}) {
              const int64_t q_stride = (group + 1) * head_dim + 3,
                            out_stride = group * head_dim + 5;
              const int64_t kv_stride = contiguous ? head_dim : 2 * head_dim + 8,
                            n_kv = pos0 + n_tokens;
              const auto q = test::random_floats(rng, n_tokens * q_stride, -1.0f, 1.0f);
              const auto k = test::random_floats(rng, n_kv * kv_stride, -1.0f, 1.0f);
              const auto v = test::random_floats(rng, n_kv * kv_stride, -1.0f, 1.0f);
              // Larger than 1/√d so the softmax is peaked and the running max actually moves.
              const float scale = 4.0f / std::sqrt(static_cast<float>(head_dim));
              const float* kh = k.data() + (contiguous ? 0 : head_dim);  // strided: the second head
              const float* vh = v.data() + (contiguous ? 0 : head_dim);
              std::vector<float> want(n_tokens * out_stride, kSentinel);
              ref::attention_batch(q.data(), q_stride, n_tokens, pos0, group, kh, vh, kv_stride,
                                   head_dim, scale, window, want.data(), out_stride, nullptr);
              std::vector<float> scratch(attention_batch_scratch_floats(group, head_dim));
              test::for_each_target([&](const std::string&) {
                std::vector<float> got(n_tokens * out_stride, kSentinel);
                attention_batch(q.data(), q_stride, n_tokens, pos0, group, kh, vh, kv_stride,
                                head_dim, scale, window, got.data(), out_stride, scratch.data());
                expect_close(got, want, 1e-5f, 2e-6f,
                             what + (contiguous ? " contiguous" : " strided"));
              });
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace nibble
