// Type table, fp16/bf16 conversions, quantize_row/dequantize_row.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <random>
#include <vector>

#include "kernels/fp16.h"
#include "kernels/quant_tables.h"
#include "kernels/quantize.h"
#include "kernels/tensor_type.h"
#include "loaders/model_file.h"
#include "tests/kernels_test_util.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define NIBBLE_TEST_F16C 1
__attribute__((target("f16c"))) static uint16_t hw_fp32_to_fp16(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) static float hw_fp16_to_fp32(uint16_t h) { return _cvtsh_ss(h); }
#endif

namespace nibble {
namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
bool fp16_is_nan(uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0; }

TEST(TypeTable, KnownSizes) {
  struct Expect {
    TensorType t;
    uint32_t elems, bytes;
    bool runnable;
    const char* name;
  };
  const Expect expect[] = {
      {TensorType::F32, 1, 4, true, "F32"},       {TensorType::F16, 1, 2, true, "F16"},
      {TensorType::BF16, 1, 2, true, "BF16"},     {TensorType::Q4_0, 32, 18, true, "Q4_0"},
      {TensorType::Q4_1, 32, 20, true, "Q4_1"},  {TensorType::Q5_0, 32, 22, true, "Q5_0"},
      {TensorType::Q5_1, 32, 24, true, "Q5_1"},  {TensorType::Q8_0, 32, 34, true, "Q8_0"},
      {TensorType::Q8_1, 32, 36, false, "Q8_1"},  {TensorType::Q2_K, 256, 84, true, "Q2_K"},
      {TensorType::Q3_K, 256, 110, true, "Q3_K"}, {TensorType::Q4_K, 256, 144, true, "Q4_K"},
      {TensorType::Q5_K, 256, 176, true, "Q5_K"}, {TensorType::Q6_K, 256, 210, true, "Q6_K"},
      {TensorType::Q8_K, 256, 292, false, "Q8_K"}, {TensorType::IQ4_NL, 32, 18, true, "IQ4_NL"},
      {TensorType::IQ4_XS, 256, 136, true, "IQ4_XS"}, {TensorType::I8, 1, 1, false, "I8"},
      {TensorType::I64, 1, 8, false, "I64"},      {TensorType::F64, 1, 8, false, "F64"},
  };
  for (const Expect& e : expect) {
    const TypeTraits* t = type_traits(e.t);
    ASSERT_NE(t, nullptr) << e.name;
    EXPECT_STREQ(t->name, e.name);
    EXPECT_EQ(t->block_elems, e.elems) << e.name;
    EXPECT_EQ(t->block_bytes, e.bytes) << e.name;
    EXPECT_EQ(t->runnable, e.runnable) << e.name;
  }
  // Every bits/weight in gguf-facts.md's table is block_bytes·8/block_elems.
  EXPECT_DOUBLE_EQ(type_traits(TensorType::Q6_K)->block_bytes * 8.0 / 256, 6.5625);
}

TEST(TypeTable, AllListedIdsKnownRetiredIdsNot) {
  for (uint32_t id = 0; id <= 42; ++id) {
    const bool retired = id == 4 || id == 5 || (id >= 31 && id <= 33) || (id >= 36 && id <= 38);
    EXPECT_EQ(type_traits(id) == nullptr, retired) << "id " << id;
  }
  EXPECT_EQ(type_traits(43u), nullptr);
  EXPECT_EQ(type_name(99), "type 99");
  EXPECT_EQ(type_name(14), "Q6_K");
  EXPECT_EQ(type_name(16), "IQ2_XXS");
  EXPECT_EQ(type_name(39), "MXFP4");
}

TEST(TypeTable, RowBytes) {
  EXPECT_EQ(row_bytes(2, 64), 36u);
  EXPECT_EQ(row_bytes(2, 33), 0u);
  EXPECT_EQ(row_bytes(14, 4096), 16u * 210u);
  EXPECT_EQ(row_bytes(14, 128), 0u);
  EXPECT_EQ(row_bytes(1, 7), 14u);
  EXPECT_EQ(row_bytes(4, 32), 0u);  // retired id
  // nibble's own types: groups of 64/128 with one fp16 scale; Q8_C a per-row f32 scale.
  EXPECT_EQ(row_bytes(static_cast<uint32_t>(TensorType::Q4_G64), 2048), 32u * 34u);
  EXPECT_EQ(row_bytes(static_cast<uint32_t>(TensorType::Q4_G128), 2048), 16u * 66u);
  EXPECT_EQ(row_bytes(static_cast<uint32_t>(TensorType::Q4_G128), 64), 0u);
  EXPECT_EQ(row_bytes(static_cast<uint32_t>(TensorType::Q8_C), 2048), 4u + 2048u);
  EXPECT_EQ(type_name(static_cast<uint32_t>(TensorType::Q4_G128)), "Q4_G128");
  EXPECT_EQ(type_traits(kFirstNibbleType + 3), nullptr);
}

TEST(Fp16, ExhaustiveRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t half = static_cast<uint16_t>(h);
    const float f = fp16_to_fp32(half);
    if (fp16_is_nan(half)) {
      EXPECT_TRUE(std::isnan(f)) << std::hex << h;
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(f), half) << std::hex << h;
#ifdef NIBBLE_TEST_F16C
    if (__builtin_cpu_supports("f16c")) {
      ASSERT_EQ(bits_of(f), bits_of(hw_fp16_to_fp32(half))) << std::hex << h;
    }
#endif
  }
}

#ifdef NIBBLE_TEST_F16C
TEST(Fp16, RoundingMatchesF16C) {
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "no F16C";
  std::mt19937 rng(1);
  std::uniform_int_distribution<uint32_t> any_bits;
  std::vector<float> cases = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e10f,
                              std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                              5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, 8.940697e-8f, 6.1035156e-5f,
                              6.1035152e-5f, 1.0009766f, 1.0004883f, 1.0014648f};
  for (int i = 0; i < 1000000; ++i) cases.push_back(float_of(any_bits(rng)));
  // Values near and inside half's subnormal range, and near its overflow threshold.
  std::uniform_real_distribution<float> small(-7e-5f, 7e-5f), big(60000.0f, 70000.0f);
  for (int i = 0; i < 200000; ++i) {
    cases.push_back(small(rng));
    cases.push_back(big(rng));
    cases.push_back(-big(rng));
  }
  // Exact ties between adjacent halves (normal and subnormal).
  for (uint32_t h = 0; h < 0x7BFF; h += 7) {
    const float a = fp16_to_fp32(static_cast<uint16_t>(h)), b = fp16_to_fp32(static_cast<uint16_t>(h + 1));
    cases.push_back(static_cast<float>((static_cast<double>(a) + b) / 2));
  }
  for (float f : cases) {
    const uint16_t want = hw_fp32_to_fp16(f);
    const uint16_t got = fp32_to_fp16(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(fp16_is_nan(got));
    } else {
      ASSERT_EQ(got, want) << "f=" << f << " bits=" << std::hex << bits_of(f);
    }
  }
}
#endif

// Independent bf16 rounding: the nearer of the two candidates, ties to the even one.
uint16_t bf16_reference(float f) {
  const uint32_t u = bits_of(f);
  const uint16_t lo = static_cast<uint16_t>(u >> 16);
  if ((u & 0xFFFFu) == 0) return lo;
  const uint16_t hi = static_cast<uint16_t>(lo + 1);
  const double dlo = std::fabs(static_cast<double>(f) - bf16_to_fp32(lo));
  const double dhi = std::fabs(static_cast<double>(f) - bf16_to_fp32(hi));
  if (std::isinf(bf16_to_fp32(hi)) && !std::isinf(f)) {
    // Rounding past the largest finite bf16 goes to inf exactly when f ≥ max + half an ulp.
    return (u & 0xFFFFu) >= 0x8000u && !((u & 0xFFFFu) == 0x8000u && (lo & 1u) == 0) ? hi : lo;
  }
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1u) ? hi : lo;
}

TEST(Bf16, RoundTripAndRounding) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(f))));
      continue;
    }
    ASSERT_EQ(fp32_to_bf16(f), h);
  }
  std::mt19937 rng(2);
  std::uniform_int_distribution<uint32_t> any_bits;
  for (int i = 0; i < 1000000; ++i) {
    uint32_t u = any_bits(rng);
    if (i % 4 == 0) u = (u & 0xFFFF0000u) | 0x8000u;  // exact ties
    const float f = float_of(u);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(f))));
      continue;
    }
    ASSERT_EQ(fp32_to_bf16(f), bf16_reference(f)) << std::hex << u;
  }
}

std::vector<uint8_t> quantize(TensorType t, const std::vector<float>& x) {
  std::vector<uint8_t> out(row_bytes(static_cast<uint32_t>(t), x.size()));
  quantize_row(t, x.data(), static_cast<int64_t>(x.size()), out.data());
  return out;
}
std::vector<float> dequantize(TensorType t, const std::vector<uint8_t>& q, size_t n) {
  std::vector<float> out(n);
  dequantize_row(t, q.data(), static_cast<int64_t>(n), out.data());
  return out;
}
uint16_t u16_at(const std::vector<uint8_t>& v, size_t off) {
  uint16_t h;
  std::memcpy(&h, v.data() + off, 2);
  return h;
}

TEST(Quantize, Q8_0KnownValues) {
  std::vector<float> x(64, 1.0f);
  x[5] = -2.54f;
  for (int j = 32; j < 64; ++j) x[j] = 0.0f;  // all-zero block → d = 0, q = 0
  const auto q = quantize(TensorType::Q8_0, x);
  ASSERT_EQ(q.size(), 68u);
  EXPECT_EQ(u16_at(q, 0), fp32_to_fp16(2.54f / 127.0f));
  const int8_t* qs = reinterpret_cast<const int8_t*>(q.data() + 2);
  EXPECT_EQ(qs[5], -127);
  EXPECT_EQ(qs[0], 50);  // 1.0 / 0.02
  EXPECT_EQ(u16_at(q, 34), 0u);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(q[36 + j], 0);
}

TEST(Quantize, Q8_0RoundsHalfAwayFromZero) {
  // amax 127 → d = 1 exactly, so x is its own quantised value and .5 is an exact tie.
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 0.5f;
  x[4] = -0.49999997f;
  const auto q = quantize(TensorType::Q8_0, x);
  const int8_t* qs = reinterpret_cast<const int8_t*>(q.data() + 2);
  EXPECT_EQ(u16_at(q, 0), 0x3C00u);
  EXPECT_EQ(qs[1], 3);
  EXPECT_EQ(qs[2], -3);
  EXPECT_EQ(qs[3], 1);
  EXPECT_EQ(qs[4], 0);
}

TEST(Quantize, Q4_0KnownValues) {
  // x = j − 16: the extreme is −16, so d = −16/−8 = 2 and q = min(15, (int)(x/2 + 8.5)).
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  const auto q = quantize(TensorType::Q4_0, x);
  ASSERT_EQ(q.size(), 18u);
  EXPECT_EQ(u16_at(q, 0), 0x4000u);  // 2.0
  auto nib = [&](int e) { return e < 16 ? (q[2 + e] & 0x0F) : (q[2 + e - 16] >> 4); };
  EXPECT_EQ(nib(0), 0);    // −16 → 0.5 → 0
  EXPECT_EQ(nib(1), 1);    // −15 → 1.0 → 1
  EXPECT_EQ(nib(15), 8);   // −1 → 8.0
  EXPECT_EQ(nib(17), 9);   // 1 → 9.0
  EXPECT_EQ(nib(31), 15);  // 15 → 16.0, clamped
  // A positive extreme gives a negative scale: 8 → d = −1, maps to q = 0.
  std::vector<float> y(32, 1.0f);
  y[7] = 8.0f;
  const auto qy = quantize(TensorType::Q4_0, y);
  EXPECT_EQ(u16_at(qy, 0), 0xBC00u);  // −1.0
  EXPECT_EQ(qy[2 + 7] & 0x0F, 0);
  EXPECT_EQ(qy[2 + 0] & 0x0F, 7);  // 1·(−1) + 8.5 = 7.5 → 7
  const auto back = dequantize(TensorType::Q4_0, qy, 32);
  EXPECT_EQ(back[7], 8.0f);
  EXPECT_EQ(back[0], 1.0f);
}

TEST(Quantize, RoundTripsWithinQuantizationError) {
  std::mt19937 rng(3);
  const auto x = test::random_floats(rng, 4096, -3.0f, 3.0f);
  for (TensorType t : {TensorType::Q8_0, TensorType::Q4_0}) {
    const auto back = dequantize(t, quantize(t, x), x.size());
    for (size_t b = 0; b < x.size() / 32; ++b) {
      float amax = 0.0f;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
      // Q8_0: half a step of amax/127; Q4_0: one step of amax/8 (the clamped side can lose a
      // full step); plus the fp16 rounding of d.
      const float tol = t == TensorType::Q8_0 ? amax * (0.5f / 127 + 1e-3f) : amax * (1.0f / 8 + 1e-3f);
      for (int j = 0; j < 32; ++j) ASSERT_NEAR(back[32 * b + j], x[32 * b + j], tol) << type_name(static_cast<uint32_t>(t));
    }
  }
  for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::BF16}) {
    const auto back = dequantize(t, quantize(t, x), x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      const float want = t == TensorType::F32   ? x[i]
                         : t == TensorType::F16 ? fp16_to_fp32(fp32_to_fp16(x[i]))
                                                : bf16_to_fp32(fp32_to_bf16(x[i]));
      ASSERT_EQ(back[i], want);
    }
  }
}

// Q4_G64/G128 quantize each group like Q4_0 (signed extreme → −8); Q8_C each row like Q8_0.
TEST(Quantize, NibbleTypesRoundTrip) {
  std::mt19937 rng(5);
  const auto x = test::random_floats(rng, 1024, -3.0f, 3.0f);
  for (auto [t, group] : {std::pair{TensorType::Q4_G64, 64}, std::pair{TensorType::Q4_G128, 128},
                          std::pair{TensorType::Q8_C, 1024}}) {
    ASSERT_TRUE(can_quantize(t) && can_dequantize(t));
    const auto back = dequantize(t, quantize(t, x), x.size());
    for (size_t g = 0; g < x.size() / group; ++g) {
      float amax = 0.0f;
      for (int j = 0; j < group; ++j) amax = std::max(amax, std::fabs(x[group * g + j]));
      const float tol = t == TensorType::Q8_C ? amax * (0.5f / 127 + 1e-6f) : amax * (1.0f / 8 + 1e-3f);
      for (int j = 0; j < group; ++j) {
        ASSERT_NEAR(back[group * g + j], x[group * g + j], tol) << type_name(static_cast<uint32_t>(t));
      }
    }
  }
}

TEST(Quantize, RejectsPartialBlocksAndUnknownTypes) {
  std::vector<float> x(48);
  std::vector<uint8_t> buf(1024);
  EXPECT_THROW(quantize_row(TensorType::Q8_0, x.data(), 48, buf.data()), std::invalid_argument);
  EXPECT_THROW(quantize_row(TensorType::Q4_K, x.data(), 128, buf.data()), std::invalid_argument);
  EXPECT_THROW(quantize_row(static_cast<TensorType>(16), x.data(), 256, buf.data()), std::invalid_argument);
  EXPECT_THROW(dequantize_row(TensorType::Q6_K, buf.data(), 128, x.data()), std::invalid_argument);
  EXPECT_THROW(dequantize_row(static_cast<TensorType>(16), buf.data(), 256, x.data()), std::invalid_argument);  // IQ2_XXS
  EXPECT_THROW(dequantize_row(TensorType::IQ4_XS, buf.data(), 32, x.data()), std::invalid_argument);
  EXPECT_TRUE(can_dequantize(TensorType::Q5_K));
  for (TensorType t : {TensorType::Q2_K, TensorType::Q3_K, TensorType::IQ4_NL, TensorType::IQ4_XS}) {
    EXPECT_TRUE(can_dequantize(t));
  }
  for (TensorType t : {TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q6_K, TensorType::Q2_K,
                       TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::IQ4_NL, TensorType::IQ4_XS}) {
    EXPECT_TRUE(can_quantize(t));
  }
  EXPECT_FALSE(can_quantize(static_cast<TensorType>(16)));  // IQ2_XXS
  EXPECT_FALSE(can_quantize(TensorType::Q8_K));
}

void put_f16(uint8_t* p, float f) {
  const uint16_t h = fp32_to_fp16(f);
  std::memcpy(p, &h, 2);
}

TEST(Dequantize, Q6_KLayout) {
  uint8_t blk[210] = {};
  for (int i = 0; i < 128; ++i) blk[i] = static_cast<uint8_t>(i * 37 + 11);
  for (int i = 0; i < 64; ++i) blk[128 + i] = static_cast<uint8_t>(i * 53 + 5);
  for (int i = 0; i < 16; ++i) blk[192 + i] = static_cast<uint8_t>(static_cast<int8_t>(i * 9 - 70));
  put_f16(blk + 208, 0.5f);
  std::vector<float> y(256);
  dequantize_row(TensorType::Q6_K, blk, 256, y.data());
  // Element 0: ql[0] low nibble, qh[0] bits 0-1. Element 200 (h=1, j=2, l=8): ql[64+8] high
  // nibble, qh[32+8] bits 4-5, scale 12. Element 127 (h=0, j=3, l=31): ql[63] high, qh[31] bits 6-7.
  auto value = [&](int ql_byte, bool high_nibble, int qh_byte, int shift, int scale) {
    const int low4 = high_nibble ? (blk[ql_byte] >> 4) : (blk[ql_byte] & 15);
    const int q = (low4 | ((blk[128 + qh_byte] >> shift) & 3) << 4) - 32;
    return 0.5f * static_cast<float>(static_cast<int8_t>(blk[192 + scale])) * static_cast<float>(q);
  };
  EXPECT_EQ(y[0], value(0, false, 0, 0, 0));
  EXPECT_EQ(y[200], value(72, true, 40, 4, 12));
  EXPECT_EQ(y[127], value(63, true, 31, 6, 7));
  EXPECT_EQ(y[47], value(47, false, 15, 2, 2));  // h=0, j=1, l=15: ql[32+15] low, qh[15] bits 2-3
}

TEST(Dequantize, Q4_KAndQ5_KScalePacking) {
  const int sc[8] = {1, 2, 3, 4, 40, 50, 60, 63}, mn[8] = {5, 6, 7, 8, 17, 33, 48, 20};
  uint8_t blk[176] = {};
  put_f16(blk, 1.0f);
  put_f16(blk + 2, 0.5f);
  uint8_t* s = blk + 4;
  for (int i = 0; i < 4; ++i) {
    s[i] = static_cast<uint8_t>(sc[i] | (sc[i + 4] >> 4) << 6);
    s[i + 4] = static_cast<uint8_t>(mn[i] | (mn[i + 4] >> 4) << 6);
    s[i + 8] = static_cast<uint8_t>((sc[i + 4] & 15) | (mn[i + 4] & 15) << 4);
  }
  for (int i = 0; i < 128; ++i) blk[16 + i] = 0x21;  // Q4_K qs: low nibble 1, high nibble 2
  std::vector<float> y(256);
  dequantize_row(TensorType::Q4_K, blk, 256, y.data());
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32, q = (e % 64) < 32 ? 1 : 2;
    ASSERT_EQ(y[e], static_cast<float>(sc[sub] * q) - 0.5f * static_cast<float>(mn[sub])) << e;
  }
  // Q5_K: same scales, qh at 16..47 (bit s of qh[l] is element 32s + l's fifth bit), qs at 48.
  for (int i = 0; i < 32; ++i) blk[16 + i] = static_cast<uint8_t>(i % 2 ? 0xAA : 0x55);
  for (int i = 0; i < 128; ++i) blk[48 + i] = 0x21;
  dequantize_row(TensorType::Q5_K, blk, 256, y.data());
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32, l = e % 32;
    const int bit = ((l % 2 ? 0xAA : 0x55) >> sub) & 1;
    const int q = ((e % 64) < 32 ? 1 : 2) + 16 * bit;
    ASSERT_EQ(y[e], static_cast<float>(sc[sub] * q) - 0.5f * static_cast<float>(mn[sub])) << e;
  }
}

TEST(Dequantize, Q4_1Q5_0Q5_1) {
  uint8_t q41[20] = {};
  put_f16(q41, 2.0f);
  put_f16(q41 + 2, -1.0f);
  for (int i = 0; i < 16; ++i) q41[4 + i] = static_cast<uint8_t>(i | (15 - i) << 4);
  std::vector<float> y(32);
  dequantize_row(TensorType::Q4_1, q41, 32, y.data());
  EXPECT_EQ(y[3], 2.0f * 3 - 1.0f);
  EXPECT_EQ(y[16 + 3], 2.0f * 12 - 1.0f);

  uint8_t q50[22] = {};
  put_f16(q50, 1.0f);
  const uint32_t qh = 0x80000001u;  // fifth bit set for elements 0 and 31
  std::memcpy(q50 + 2, &qh, 4);
  for (int i = 0; i < 16; ++i) q50[6 + i] = 0x73;  // low 3, high 7
  dequantize_row(TensorType::Q5_0, q50, 32, y.data());
  EXPECT_EQ(y[0], 19.0f - 16.0f);
  EXPECT_EQ(y[1], 3.0f - 16.0f);
  EXPECT_EQ(y[16], 7.0f - 16.0f);
  EXPECT_EQ(y[31], 23.0f - 16.0f);

  uint8_t q51[24] = {};
  put_f16(q51, 0.5f);
  put_f16(q51 + 2, 3.0f);
  std::memcpy(q51 + 4, &qh, 4);
  for (int i = 0; i < 16; ++i) q51[8 + i] = 0x73;
  dequantize_row(TensorType::Q5_1, q51, 32, y.data());
  EXPECT_EQ(y[0], 0.5f * 19 + 3.0f);
  EXPECT_EQ(y[31], 0.5f * 23 + 3.0f);
}

TEST(Dequantize, Q2_KLayout) {
  uint8_t blk[84];
  for (int i = 0; i < 84; ++i) blk[i] = static_cast<uint8_t>(i * 29 + 7);
  put_f16(blk + 80, 0.25f);
  put_f16(blk + 82, 0.5f);
  std::vector<float> y(256);
  dequantize_row(TensorType::Q2_K, blk, 256, y.data());
  // Element 200: h=1, j=2, l=8 → bits 4-5 of qs[32+8] (byte 16+40), sub-block 12.
  auto value = [&](int qs_byte, int shift, int sub) {
    const int q = (blk[16 + qs_byte] >> shift) & 3;
    return 0.25f * static_cast<float>(blk[sub] & 15) * static_cast<float>(q) - 0.5f * static_cast<float>(blk[sub] >> 4);
  };
  EXPECT_EQ(y[0], value(0, 0, 0));
  EXPECT_EQ(y[200], value(40, 4, 12));
  EXPECT_EQ(y[127], value(31, 6, 7));
  EXPECT_EQ(y[47], value(15, 2, 2));
}

TEST(Dequantize, Q3_KLayout) {
  uint8_t blk[110];
  for (int i = 0; i < 110; ++i) blk[i] = static_cast<uint8_t>(i * 41 + 3);
  // Scales: S[k] = k − 16 for every k, packed by hand (low 4 bits then high 2 bits).
  uint8_t* sc = blk + 96;
  std::memset(sc, 0, 12);
  for (int k = 0; k < 16; ++k) {
    const int v = k - 16 + 32;
    if (k < 8) sc[k] |= static_cast<uint8_t>(v & 15);
    else sc[k - 8] |= static_cast<uint8_t>((v & 15) << 4);
    sc[8 + k % 4] |= static_cast<uint8_t>((v >> 4) << (2 * (k / 4)));
  }
  put_f16(blk + 108, 0.5f);
  std::vector<float> y(256);
  dequantize_row(TensorType::Q3_K, blk, 256, y.data());
  // Element e: h = e/128, j = (e%128)/32, l = e%32; low2 from qs[32h+l] bits 2j, hbit from
  // hmask[l] bit 4h+j (clear: subtract 4).
  for (int e : {0, 47, 127, 128, 200, 255}) {
    const int h = e / 128, j = (e % 128) / 32, l = e % 32;
    const int low2 = (blk[32 + 32 * h + l] >> (2 * j)) & 3;
    const int hbit = (blk[l] >> (4 * h + j)) & 1;
    const float want = 0.5f * static_cast<float>(e / 16 - 16) * static_cast<float>(low2 - (hbit ? 0 : 4));
    EXPECT_EQ(y[e], want) << e;
  }
}

TEST(Dequantize, IQ4_NLAndIQ4_XS) {
  uint8_t nl[18];
  put_f16(nl, 0.5f);
  for (int i = 0; i < 16; ++i) nl[2 + i] = static_cast<uint8_t>(i | (15 - i) << 4);
  std::vector<float> y(256);
  dequantize_row(TensorType::IQ4_NL, nl, 32, y.data());
  EXPECT_EQ(y[0], 0.5f * -127);
  EXPECT_EQ(y[3], 0.5f * -65);
  EXPECT_EQ(y[16], 0.5f * 113);
  EXPECT_EQ(y[31], 0.5f * -127);

  uint8_t xs[136];
  put_f16(xs, 2.0f);
  const uint16_t scales_h = 0xE4E4;  // high bits of ls per block ib: 0,1,2,3,0,1,2,3
  std::memcpy(xs + 2, &scales_h, 2);
  for (int i = 0; i < 4; ++i) xs[4 + i] = static_cast<uint8_t>((2 * i) | (2 * i + 1) << 4);  // low nibble ib
  for (int i = 0; i < 128; ++i) xs[8 + i] = static_cast<uint8_t>(i % 16 | (i / 8 % 16) << 4);
  dequantize_row(TensorType::IQ4_XS, xs, 256, y.data());
  for (int e = 0; e < 256; ++e) {
    const int ib = e / 32, r = e % 32;
    const int ls = ib | ((ib % 4) << 4);
    const uint8_t byte = xs[8 + 16 * ib + r % 16];
    const int q = r < 16 ? byte & 15 : byte >> 4;
    ASSERT_EQ(y[e], 2.0f * static_cast<float>(ls - 32) * static_cast<float>(kIQ4NLValues[q])) << e;
  }
}

// The signed-extreme and min/max quantizers: known values, and every value within one step.
TEST(Quantize, Q4_1Q5_0Q5_1KnownValues) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j) * 0.5f - 1.0f;  // −1 … 14.5
  const auto q41 = quantize(TensorType::Q4_1, x);
  EXPECT_EQ(u16_at(q41, 0), fp32_to_fp16(15.5f / 15.0f));
  EXPECT_EQ(u16_at(q41, 2), fp32_to_fp16(-1.0f));
  EXPECT_EQ(q41[4] & 15, 0);
  EXPECT_EQ(q41[4 + 15] >> 4, 15);
  const auto q51 = quantize(TensorType::Q5_1, x);
  EXPECT_EQ(u16_at(q51, 0), fp32_to_fp16(0.5f));
  EXPECT_EQ(u16_at(q51, 2), fp32_to_fp16(-1.0f));
  const auto back51 = dequantize(TensorType::Q5_1, q51, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(back51[j], x[j]) << j;  // exactly on the 0.5 grid
  // Q5_0: extreme 14.5 → d = −14.5/16; element 31 maps to level 0.
  const auto q50 = quantize(TensorType::Q5_0, x);
  EXPECT_EQ(u16_at(q50, 0), fp32_to_fp16(14.5f / -16.0f));
  EXPECT_EQ(q50[6 + 15] >> 4, 0);
  uint32_t qh;
  std::memcpy(&qh, q50.data() + 2, 4);
  EXPECT_EQ(qh >> 31, 0u);
  EXPECT_EQ(qh & 1u, 1u);  // −1 → −1/−0.906 + 16.5 = 17.6 → 17: fifth bit set
}

TEST(Quantize, NewFormatsRoundTripWithinOneStep) {
  std::mt19937 rng(4);
  const auto x = test::random_floats(rng, 4096, -3.0f, 3.0f);
  for (TensorType t : {TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1}) {
    const auto back = dequantize(t, quantize(t, x), x.size());
    for (size_t b = 0; b < x.size() / 32; ++b) {
      float lo = x[32 * b], hi = x[32 * b];
      for (int j = 0; j < 32; ++j) {
        lo = std::min(lo, x[32 * b + j]);
        hi = std::max(hi, x[32 * b + j]);
      }
      const float range = t == TensorType::Q5_0 ? 2 * std::max(hi, -lo) : hi - lo;
      const float levels = t == TensorType::Q4_1 ? 15.0f : 31.0f;
      for (int j = 0; j < 32; ++j) {
        ASSERT_NEAR(back[32 * b + j], x[32 * b + j], range * (1.0f / levels + 2e-3f)) << type_name(static_cast<uint32_t>(t));
      }
    }
  }
  // Q6_K: within one step of its sub-block's scale, and zero blocks stay zero.
  std::vector<float> z = x;
  for (int j = 256; j < 512; ++j) z[j] = 0.0f;
  const auto q6 = quantize(TensorType::Q6_K, z);
  const auto back6 = dequantize(TensorType::Q6_K, q6, z.size());
  for (int j = 256; j < 512; ++j) ASSERT_EQ(back6[j], 0.0f);
  for (size_t i = 0; i < z.size(); ++i) {
    const size_t sb = i / 256;
    const float d = fp16_to_fp32(u16_at(q6, 210 * sb + 208)) *
                    static_cast<float>(static_cast<int8_t>(q6[210 * sb + 192 + (i % 256) / 16]));
    ASSERT_NEAR(back6[i], z[i], std::fabs(d) * 0.5f + 1e-3f) << i;
  }
}

// --- nibble's own K-quant and IQ4 quantizers: layout consistency, error bounds, and a naive
// round-to-nearest baseline they must beat.

constexpr TensorType kSearchTypes[] = {TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K,
                                       TensorType::Q5_K, TensorType::IQ4_NL, TensorType::IQ4_XS};

// Weights as trained models have them: Gaussian, with 1 % outliers at 6–10 σ, and a few blocks
// that are all zero, constant, or all positive (a min that must stay at zero).
std::vector<float> realistic_weights(std::mt19937& rng, size_t n) {
  std::normal_distribution<float> g(0.0f, 0.02f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) {
    x = g(rng);
    if (u(rng) < 0.01f) x *= 6.0f + 4.0f * u(rng);
  }
  for (size_t j = 0; j < 256 && n >= 1024; ++j) {
    v[j] = 0.0f;
    v[256 + j] = 0.0125f;
    v[512 + j] = std::fabs(v[512 + j]) + 0.01f;
  }
  return v;
}

// The reconstruction a naive quantizer for each layout gets: sub-block scale (and min) from the
// extremes, super-block scale from the largest sub-block scale, everything rounded to nearest,
// no search or refit. Computed in floats only (no bytes), as the bar to clear.
std::vector<float> naive_reconstruction(TensorType t, const std::vector<float>& x) {
  auto rnd = [](float v, int lo, int hi) { return std::max(lo, std::min(hi, static_cast<int>(std::lround(v)))); };
  auto f16 = [](float v) { return fp16_to_fp32(fp32_to_fp16(v)); };
  static constexpr float kTable[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  auto nearest_table = [](float v) {
    int best = 0;
    for (int k = 1; k < 16; ++k) {
      if (std::fabs(kTable[k] - v) < std::fabs(kTable[best] - v)) best = k;
    }
    return kTable[best];
  };
  std::vector<float> y(x.size());
  const int block = type_traits(t)->block_elems;
  for (size_t b0 = 0; b0 < x.size(); b0 += block) {
    const float* xb = x.data() + b0;
    float* yb = y.data() + b0;
    if (t == TensorType::Q2_K || t == TensorType::Q4_K || t == TensorType::Q5_K) {
      const int len = t == TensorType::Q2_K ? 16 : 32, nmax = t == TensorType::Q2_K ? 3 : t == TensorType::Q4_K ? 15 : 31;
      const int smax = t == TensorType::Q2_K ? 15 : 63;
      float a[16], m[16], amax = 0, mmax = 0;
      for (int s = 0; s < 256 / len; ++s) {
        float lo = 0, hi = xb[s * len];
        for (int i = 0; i < len; ++i) {
          lo = std::min(lo, xb[s * len + i]);
          hi = std::max(hi, xb[s * len + i]);
        }
        a[s] = (hi - lo) / static_cast<float>(nmax);
        m[s] = -lo;
        amax = std::max(amax, a[s]);
        mmax = std::max(mmax, m[s]);
      }
      const float d = f16(amax / smax), dmin = f16(mmax / smax);
      for (int s = 0; s < 256 / len; ++s) {
        const float step = d > 0 ? d * static_cast<float>(rnd(a[s] / d, 0, smax)) : 0.0f;
        const float off = dmin > 0 ? dmin * static_cast<float>(rnd(m[s] / dmin, 0, smax)) : 0.0f;
        for (int i = s * len; i < (s + 1) * len; ++i) {
          yb[i] = (step > 0 ? step * static_cast<float>(rnd((xb[i] + off) / step, 0, nmax)) : 0.0f) - off;
        }
      }
    } else {
      // Symmetric: Q3_K (levels −4..3, 16 sub-blocks), IQ4_NL (table, one block), IQ4_XS (table, 8).
      const bool table = t != TensorType::Q3_K;
      const int len = t == TensorType::Q3_K ? 16 : 32, nsub = block / len;
      float s[16], smax = 0, sabs = 0;
      for (int k = 0; k < nsub; ++k) {
        float mx = 0;
        for (int i = 0; i < len; ++i) {
          if (std::fabs(xb[k * len + i]) > std::fabs(mx)) mx = xb[k * len + i];
        }
        s[k] = mx / (table ? -127.0f : -4.0f);
        if (std::fabs(s[k]) > sabs) {
          sabs = std::fabs(s[k]);
          smax = s[k];
        }
      }
      float step[16];
      if (t == TensorType::IQ4_NL) {
        step[0] = f16(s[0]);
      } else {
        const float d = f16(smax / -32.0f);
        for (int k = 0; k < nsub; ++k) step[k] = d != 0 ? d * static_cast<float>(rnd(s[k] / d, -32, 31)) : 0.0f;
      }
      for (int i = 0; i < block; ++i) {
        const float st = step[i / len];
        if (st == 0) {
          yb[i] = 0;
        } else {
          yb[i] = table ? st * nearest_table(xb[i] / st) : st * static_cast<float>(rnd(xb[i] / st, -4, 3));
        }
      }
    }
  }
  return y;
}

double rel_rmse(const std::vector<float>& x, const std::vector<float>& y) {
  double e = 0, s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    e += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    s += double(x[i]) * x[i];
  }
  return std::sqrt(e / s);
}

TEST(Quantize, SearchingQuantizersLayoutMatchesDequantizer) {
  std::mt19937 rng(11);
  std::vector<float> x = realistic_weights(rng, 256 * 24);
  const auto u = test::random_floats(rng, 256 * 8, -1.0f, 1.0f);
  x.insert(x.end(), u.begin(), u.end());
  for (TensorType t : kSearchTypes) {
    SCOPED_TRACE(type_name(static_cast<uint32_t>(t)));
    ASSERT_TRUE(can_quantize(t));
    std::vector<uint8_t> q(row_bytes(static_cast<uint32_t>(t), x.size()));
    std::vector<float> meant(x.size());
    quantize_row_values(t, x.data(), static_cast<int64_t>(x.size()), q.data(), meant.data());
    // quantize_row writes the same bytes (and is deterministic).
    EXPECT_EQ(quantize(t, x), q);
    EXPECT_EQ(quantize(t, x), q);
    // The existing dequantizer reads back exactly the values the quantizer chose.
    const auto back = dequantize(t, q, x.size());
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(bits_of(back[i]), bits_of(meant[i])) << i;
    // All-zero blocks stay zero; the constant block comes back close.
    for (int j = 0; j < 256; ++j) ASSERT_EQ(back[j], 0.0f) << j;
    for (int j = 256; j < 512; ++j) ASSERT_NEAR(back[j], 0.0125f, 0.0125f * 0.1f) << j;
  }
  EXPECT_THROW(quantize_row_values(TensorType::Q4_0, x.data(), 32, nullptr, nullptr), std::invalid_argument);
}

TEST(Quantize, SearchingQuantizersBeatRoundToNearest) {
  // Relative RMS error bounds (Gaussian data with outliers / uniform data), each a little above
  // what the quantizers reach. They must also beat the naive baseline: on uniform data by ≥ 5 %;
  // on the Gaussian rows by less (≥ 1.5 %), because the outliers that set most sub-blocks' range
  // leave little for any choice of scale to win.
  struct Bound {
    TensorType t;
    double gauss, uniform;
  };
  const Bound bounds[] = {{TensorType::Q2_K, 0.31, 0.23},    {TensorType::Q3_K, 0.195, 0.125},
                          {TensorType::Q4_K, 0.094, 0.058},  {TensorType::Q5_K, 0.047, 0.029},
                          {TensorType::IQ4_NL, 0.106, 0.066}, {TensorType::IQ4_XS, 0.108, 0.066}};
  std::mt19937 rng(12);
  const auto gauss = realistic_weights(rng, 256 * 64);
  const auto uniform = test::random_floats(rng, 256 * 64, -1.0f, 1.0f);
  for (const Bound& b : bounds) {
    SCOPED_TRACE(type_name(static_cast<uint32_t>(b.t)));
    const double eg = rel_rmse(gauss, dequantize(b.t, quantize(b.t, gauss), gauss.size()));
    const double eu = rel_rmse(uniform, dequantize(b.t, quantize(b.t, uniform), uniform.size()));
    const double ng = rel_rmse(gauss, naive_reconstruction(b.t, gauss));
    const double nu = rel_rmse(uniform, naive_reconstruction(b.t, uniform));
    std::printf("%-7s gauss %.4f (naive %.4f)  uniform %.4f (naive %.4f)\n",
                type_name(static_cast<uint32_t>(b.t)).c_str(), eg, ng, eu, nu);
    EXPECT_LT(eg, b.gauss);
    EXPECT_LT(eu, b.uniform);
    EXPECT_LT(eg, 0.985 * ng);
    EXPECT_LT(eu, 0.95 * nu);
  }
}

// --- Real files (../shared): llama.cpp wrote them, so they pin nibble's layouts and quantizers.

const std::string kKjv = std::string(NIBBLE_SHARED_DIR) + "/models/kjv-llama/";

// An independent decoder for the formats of the shared files, written from the layout text in
// the order llama.cpp's loops walk a block (64- or 128-element groups), not element by element.
std::vector<float> decode_independently(TensorType t, const uint8_t* p, size_t n) {
  std::vector<float> y;
  y.reserve(n);
  auto f16 = [](const uint8_t* q) {
    uint16_t h;
    std::memcpy(&h, q, 2);
    return fp16_to_fp32(h);
  };
  const TypeTraits* tr = type_traits(t);
  for (size_t blk = 0; blk < n / tr->block_elems; ++blk, p += tr->block_bytes) {
    if (t == TensorType::Q4_1 || t == TensorType::Q5_0 || t == TensorType::Q8_0) {
      float v[32];
      if (t == TensorType::Q8_0) {
        for (int j = 0; j < 32; ++j) v[j] = f16(p) * static_cast<float>(static_cast<int8_t>(p[2 + j]));
      } else if (t == TensorType::Q4_1) {
        for (int j = 0; j < 16; ++j) {
          v[j] = static_cast<float>(p[4 + j] & 15) * f16(p) + f16(p + 2);
          v[j + 16] = static_cast<float>(p[4 + j] >> 4) * f16(p) + f16(p + 2);
        }
      } else {
        uint32_t qh;
        std::memcpy(&qh, p + 2, 4);
        for (int j = 0; j < 16; ++j) {
          v[j] = static_cast<float>(((p[6 + j] & 15) | ((qh >> j) << 4 & 16)) - 16) * f16(p);
          v[j + 16] = static_cast<float>(((p[6 + j] >> 4) | ((qh >> (j + 12)) & 16)) - 16) * f16(p);
        }
      }
      y.insert(y.end(), v, v + 32);
    } else if (t == TensorType::Q4_K) {
      const float d = f16(p), dmin = f16(p + 2);
      const uint8_t* s = p + 4;
      const uint8_t* q = p + 16;
      for (int c = 0; c < 4; ++c) {
        for (int half = 0; half < 2; ++half) {
          const int sub = 2 * c + half;
          const int sc = sub < 4 ? s[sub] & 63 : (s[sub + 4] & 15) | (s[sub - 4] >> 6) << 4;
          const int mn = sub < 4 ? s[sub + 4] & 63 : (s[sub + 4] >> 4) | (s[sub] >> 6) << 4;
          for (int l = 0; l < 32; ++l) {
            const int v = half ? q[32 * c + l] >> 4 : q[32 * c + l] & 15;
            y.push_back(d * static_cast<float>(sc) * static_cast<float>(v) - dmin * static_cast<float>(mn));
          }
        }
      }
    } else if (t == TensorType::Q6_K) {
      const float d = f16(p + 208);
      const int8_t* sc = reinterpret_cast<const int8_t*>(p + 192);
      float v[256];
      for (int h = 0; h < 2; ++h) {
        const uint8_t* ql = p + 64 * h;
        const uint8_t* qh = p + 128 + 32 * h;
        for (int l = 0; l < 32; ++l) {
          const int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
          const int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
          const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
          const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
          const int is = 8 * h + l / 16;
          v[128 * h + l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
          v[128 * h + l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
          v[128 * h + l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
          v[128 * h + l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
        }
      }
      y.insert(y.end(), v, v + 256);
    } else {
      ADD_FAILURE() << "no independent decoder for " << tr->name;
      return y;
    }
  }
  return y;
}

void expect_dequantize_matches(const std::string& file, std::initializer_list<TensorType> types) {
  if (!std::filesystem::exists(kKjv + file)) GTEST_SKIP() << "needs ../shared";
  const ModelFile f = read_gguf(kKjv + file);
  int checked = 0;
  for (const TensorInfo& t : f.tensors) {
    if (std::find(types.begin(), types.end(), t.type) == types.end()) continue;
    // Every row of small tensors; 64 rows spread over the big ones (embeddings, output).
    const uint64_t k = t.row_length(), rows = t.n_rows(), step = std::max<uint64_t>(1, rows / 64);
    const uint64_t rb = row_bytes(static_cast<uint32_t>(t.type), k);
    std::vector<float> ours(k);
    for (uint64_t r = 0; r < rows; r += step) {
      dequantize_row(t.type, t.data + r * rb, static_cast<int64_t>(k), ours.data());
      const auto want = decode_independently(t.type, t.data + r * rb, k);
      ASSERT_EQ(want.size(), k);
      for (uint64_t i = 0; i < k; ++i) {
        ASSERT_NEAR(ours[i], want[i], 1e-6f * std::fabs(want[i])) << t.name << " row " << r << " i " << i;
      }
    }
    ++checked;
  }
  EXPECT_GT(checked, 0) << file;
}

TEST(SharedFiles, DequantizeQ4_K_M) {
  expect_dequantize_matches("kjv-llama-Q4_K_M.gguf", {TensorType::Q4_K, TensorType::Q6_K, TensorType::Q5_0, TensorType::Q8_0});
}
TEST(SharedFiles, DequantizeQ4_1) { expect_dequantize_matches("kjv-llama-Q4_1.gguf", {TensorType::Q4_1}); }
TEST(SharedFiles, DequantizeQ6_K) { expect_dequantize_matches("kjv-llama-Q6_K.gguf", {TensorType::Q6_K}); }

// quantize_row against llama.cpp's output from the same F32 weights (kjv-llama.bin is the
// checkpoint the shared GGUFs were quantized from; output.weight is tied there, so skipped).
void expect_quantize_bit_exact(const std::string& file, TensorType type) {
  if (!std::filesystem::exists(kKjv + file) || !std::filesystem::exists(kKjv + "kjv-llama.bin")) {
    GTEST_SKIP() << "needs ../shared";
  }
  const ModelFile src = open_model_file(kKjv + "kjv-llama.bin");
  const ModelFile theirs = read_gguf(kKjv + file);
  int compared = 0;
  for (const TensorInfo& t : theirs.tensors) {
    if (t.type != type) continue;
    const TensorInfo* s = src.find_tensor(t.name);
    if (s == nullptr || s->type != TensorType::F32) continue;
    const uint64_t k = t.row_length(), rb = row_bytes(static_cast<uint32_t>(type), k);
    std::vector<uint8_t> ours(rb);
    for (uint64_t r = 0; r < t.n_rows(); ++r) {
      quantize_row(type, reinterpret_cast<const float*>(s->data) + r * k, static_cast<int64_t>(k), ours.data());
      ASSERT_EQ(0, std::memcmp(ours.data(), t.data + r * rb, rb)) << file << ": " << t.name << " row " << r;
    }
    ++compared;
  }
  EXPECT_GT(compared, 0) << file;
}

TEST(SharedFiles, Q4_1QuantizerIsBitExact) { expect_quantize_bit_exact("kjv-llama-Q4_1.gguf", TensorType::Q4_1); }
TEST(SharedFiles, Q6_KQuantizerIsBitExact) { expect_quantize_bit_exact("kjv-llama-Q6_K.gguf", TensorType::Q6_K); }
TEST(SharedFiles, Q6_KQuantizerIsBitExactInQ4_K_M) {
  expect_quantize_bit_exact("kjv-llama-Q4_K_M.gguf", TensorType::Q6_K);
}

}  // namespace
}  // namespace nibble
