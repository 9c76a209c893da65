// matmul on every Highway target against matmul_reference, quantize_input against its scalar
// reference, and matmul_reference itself against plain double arithmetic on dequantized rows.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "kernels/amx_matmul.h"
#include "kernels/fp16.h"
#include "kernels/matmul.h"
#include "kernels/matmul_internal.h"
#include "kernels/matmul_neon.h"
#include "kernels/onednn_matmul.h"
#include "kernels/quantize.h"
#include "kernels/repack.h"
#include "kernels/tensor_type.h"
#include "tests/kernels_test_util.h"

namespace nibble {
namespace {

struct Shape {
  int64_t M, N, K;
};

void put_f16(uint8_t* p, float f) {
  const uint16_t h = fp32_to_fp16(f);
  std::memcpy(p, &h, 2);
}

// Overwrites the float scale fields of one block (random quant bytes elsewhere). With
// `unit_scales` every float scale and min is 1 and the integer sub-block scales are small, so
// that every weight is a small integer and products stay exact in float (IntegerPathIsExact).
void set_block_scales(TensorType t, uint8_t* blk, bool unit_scales, std::mt19937& rng) {
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  std::uniform_int_distribution<int> small_scale(-4, 4), tiny(0, 3), zero_to_two(0, 2);
  const float d = unit_scales ? 1.0f : scale(rng);
  const float dmin = unit_scales ? 1.0f : scale(rng);
  switch (t) {
    case TensorType::Q6_K:
      put_f16(blk + 208, d);
      if (unit_scales) {
        for (int s = 0; s < 16; ++s) blk[192 + s] = static_cast<uint8_t>(static_cast<int8_t>(small_scale(rng)));
      }
      return;
    case TensorType::Q4_1:
    case TensorType::Q5_1:
      put_f16(blk, d);
      put_f16(blk + 2, dmin);
      return;
    case TensorType::Q4_K:
    case TensorType::Q5_K:
      put_f16(blk, d);
      put_f16(blk + 2, dmin);
      if (unit_scales) {  // 6-bit scales and mins all in 0..3
        for (int i = 0; i < 8; ++i) blk[4 + i] = static_cast<uint8_t>(tiny(rng));
        for (int i = 8; i < 12; ++i) blk[4 + i] = static_cast<uint8_t>(tiny(rng) | tiny(rng) << 4);
      }
      return;
    case TensorType::Q2_K:  // 4-bit scales and mins are small already
      put_f16(blk + 80, d);
      put_f16(blk + 82, dmin);
      return;
    case TensorType::Q3_K:  // scales −32..31 times levels −4..3
      put_f16(blk + 108, d);
      return;
    case TensorType::IQ4_XS:
      put_f16(blk, d);
      if (unit_scales) {  // ls − 32 in 0..2: high bits 2, low nibbles 0..2
        blk[2] = blk[3] = 0xAA;
        for (int i = 0; i < 4; ++i) blk[4 + i] = static_cast<uint8_t>(zero_to_two(rng) | zero_to_two(rng) << 4);
      }
      return;
    default:  // Q8_0, Q4_0, Q5_0, IQ4_NL: f16 d first
      put_f16(blk, d);
      return;
  }
}

// Random weights in the type's own layout. Integer formats get random quant bytes (every code,
// including Q8_0's −128) with modest scales (see set_block_scales for `unit_scales`).
std::vector<uint8_t> random_weights(TensorType t, int64_t N, int64_t K, std::mt19937& rng, bool unit_scales = false) {
  const uint64_t rb = row_bytes(static_cast<uint32_t>(t), static_cast<uint64_t>(K));
  std::vector<uint8_t> w(rb * N);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  const TypeTraits* tr = type_traits(t);
  if (tr->block_elems == 1) {
    std::vector<float> row(K);
    for (int64_t n = 0; n < N; ++n) {
      for (float& x : row) x = value(rng);
      quantize_row(t, row.data(), K, w.data() + n * rb);
    }
    return w;
  }
  for (uint8_t& b : w) b = static_cast<uint8_t>(byte(rng));
  if (tr->row_header_bytes != 0) {  // Q8_C: a float scale per row, random int8 after it
    std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
    for (int64_t n = 0; n < N; ++n) {
      const float d = unit_scales ? 1.0f : scale(rng);
      std::memcpy(w.data() + n * rb, &d, 4);
    }
    return w;
  }
  const int64_t n_blocks = static_cast<int64_t>(w.size() / tr->block_bytes);
  for (int64_t i = 0; i < n_blocks; ++i) set_block_scales(t, w.data() + i * tr->block_bytes, unit_scales, rng);
  return w;
}

WeightMatrix matrix(TensorType t, const std::vector<uint8_t>& w, int64_t N, int64_t K) {
  WeightMatrix m;
  m.type = t;
  m.data = w.data();
  m.rows = N;
  m.cols = K;
  m.row_bytes = row_bytes(static_cast<uint32_t>(t), static_cast<uint64_t>(K));
  return m;
}

const TensorType kTypes[] = {TensorType::F32,  TensorType::F16,    TensorType::BF16,   TensorType::Q8_0,
                             TensorType::Q4_0, TensorType::Q6_K,   TensorType::Q4_1,   TensorType::Q5_0,
                             TensorType::Q5_1, TensorType::IQ4_NL, TensorType::IQ4_XS, TensorType::Q2_K,
                             TensorType::Q3_K, TensorType::Q4_K,   TensorType::Q5_K,
                             TensorType::Q4_G64, TensorType::Q4_G128, TensorType::Q8_C};
// The block formats (int8 activations).
const TensorType kIntTypes[] = {TensorType::Q8_0, TensorType::Q4_0,   TensorType::Q6_K,   TensorType::Q4_1,
                                TensorType::Q5_0, TensorType::Q5_1,   TensorType::IQ4_NL, TensorType::IQ4_XS,
                                TensorType::Q2_K, TensorType::Q3_K,   TensorType::Q4_K,   TensorType::Q5_K,
                                TensorType::Q4_G64, TensorType::Q4_G128, TensorType::Q8_C};

// Shape classes: M = 1 (GEMV), small M, M that leaves 4-row groups, pairs (AArch64 i8mm) and
// single rows as tails (3, 5, 6, 7, 130), K not a multiple of 256 (32, 96, 512 with 37 and 5 for
// float types, 2080), N tails of the 4-row weight tiles. Every ISA variant of the machine runs
// them (test::for_each_target: Highway targets, and NEON_I8MM / NEON_DOTPROD on AArch64).
std::vector<Shape> shapes_for(TensorType t) {
  const int64_t block = type_traits(t)->block_elems;
  std::vector<Shape> all = {
      {1, 1, 256},   {1, 7, 256},  {3, 33, 256},   {1, 64, 2048}, {5, 8, 2304}, {7, 13, 512},
      {4, 5, 32},    {2, 9, 2080}, {1, 3, 96},     {6, 4, 37},    {3, 17, 5},   {130, 6, 256},
      // Prefill shapes (M ≥ kPanelMinM take the panel GEMM where the target has it): M tails of
      // its activation tiles, N tails of its 16-row panels and 32/64-row chunks, K tails of
      // its L1 slices.
      {16, 16, 256}, {23, 70, 512}, {37, 33, 2304}, {64, 129, 288}, {19, 250, 1024},
  };
  std::vector<Shape> out;
  for (const Shape& s : all) {
    if (s.K % block == 0) out.push_back(s);
  }
  return out;
}

TEST(Matmul, MatchesReferenceOnEveryTarget) {
  std::mt19937 rng(11);
  for (TensorType t : kTypes) {
    SCOPED_TRACE(type_name(static_cast<uint32_t>(t)));
    for (const Shape& s : shapes_for(t)) {
      SCOPED_TRACE("M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K));
      const auto w = random_weights(t, s.N, s.K, rng);
      const auto x = test::random_floats(rng, static_cast<size_t>(s.M * s.K), -2.0f, 2.0f);
      const WeightMatrix W = matrix(t, w, s.N, s.K);
      const int64_t ldy = s.N + 3;  // a padded output stride
      std::vector<float> ref(static_cast<size_t>(s.M * ldy), -7.0f);
      matmul_reference(W, x.data(), s.M, ref.data(), ldy);
      float max_ref = 0.0f;
      for (int64_t m = 0; m < s.M; ++m) {
        for (int64_t n = 0; n < s.N; ++n) max_ref = std::max(max_ref, std::fabs(ref[m * ldy + n]));
      }
      // Float accumulation of K/32 block products (or K products) in a different order than the
      // double reference: relative to the typical output size.
      const float tol = 1e-4f * std::max(max_ref, 1e-3f);
      test::for_each_target([&](const std::string&) {
        for (int threads : {1, 2}) {
          MatmulWorkspace ws;
          ws.n_threads = threads;
          std::vector<float> y(ref.size(), -7.0f);
          matmul(W, x.data(), s.M, y.data(), ldy, ws);
          for (int64_t m = 0; m < s.M; ++m) {
            for (int64_t n = 0; n < ldy; ++n) {
              if (n >= s.N) {
                ASSERT_EQ(y[m * ldy + n], -7.0f) << "wrote past N";
                continue;
              }
              ASSERT_NEAR(y[m * ldy + n], ref[m * ldy + n], tol) << "m=" << m << " n=" << n << " threads=" << threads;
            }
          }
        }
      });
    }
  }
}

// Unit weight scales and activation blocks whose extreme is ±127 (so the activation scale is
// exactly 1): every product and partial sum is an integer below 2^24, so any target's float
// result must equal the reference exactly. This checks the integer block sums, offsets
// (Q4_0 +8, Q6_K +32 with sub-block sums, Q5_0 +16, Q3_K +4), the mins (Q4_1, Q5_1, Q2_K, Q4_K,
// Q5_K), sub-block scale placement and the sign trick (Q8_0, IQ4_NL, IQ4_XS) bit for bit.
TEST(Matmul, IntegerPathIsExact) {
  std::mt19937 rng(12);
  std::uniform_int_distribution<int> small(-20, 20), pos(0, 31);
  for (TensorType t : kIntTypes) {
    SCOPED_TRACE(type_name(static_cast<uint32_t>(t)));
    for (const Shape& s : shapes_for(t)) {
      const auto w = random_weights(t, s.N, s.K, rng, /*unit_scales=*/true);
      std::vector<float> x(static_cast<size_t>(s.M * s.K));
      for (float& v : x) v = static_cast<float>(small(rng));
      for (size_t b = 0; b < x.size() / 32; ++b) x[32 * b + pos(rng)] = (b % 2) ? 127.0f : -127.0f;
      const WeightMatrix W = matrix(t, w, s.N, s.K);
      std::vector<float> ref(static_cast<size_t>(s.M * s.N));
      matmul_reference(W, x.data(), s.M, ref.data(), s.N);
      test::for_each_target([&](const std::string&) {
        MatmulWorkspace ws;
        std::vector<float> y(ref.size());
        matmul(W, x.data(), s.M, y.data(), s.N, ws);
        for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], ref[i]) << "i=" << i << " K=" << s.K;
      });
    }
  }
}

TEST(Matmul, SharedInputEqualsSeparateCalls) {
  std::mt19937 rng(13);
  const int64_t M = 3, K = 512;
  const auto wq = random_weights(TensorType::Q4_0, 10, K, rng);
  const auto wh = random_weights(TensorType::F16, 6, K, rng);
  const auto w6 = random_weights(TensorType::Q6_K, 5, K, rng);
  const WeightMatrix A = matrix(TensorType::Q4_0, wq, 10, K), B = matrix(TensorType::F16, wh, 6, K),
                     C = matrix(TensorType::Q6_K, w6, 5, K);
  const auto x = test::random_floats(rng, M * K, -1.0f, 1.0f);
  MatmulWorkspace ws;
  ws.n_threads = 2;
  std::vector<float> ya(M * 10), yb(M * 6), yc(M * 5), sa(M * 10), sb(M * 6), sc(M * 5);
  const WeightMatrix* ws_list[] = {&A, &B, &C};
  float* ys[] = {ya.data(), yb.data(), yc.data()};
  const int64_t ldys[] = {10, 6, 5};
  matmul_shared_input(ws_list, ys, ldys, 3, x.data(), M, ws);
  matmul(A, x.data(), M, sa.data(), 10, ws);
  matmul(B, x.data(), M, sb.data(), 6, ws);
  matmul(C, x.data(), M, sc.data(), 5, ws);
  EXPECT_EQ(ya, sa);
  EXPECT_EQ(yb, sb);
  EXPECT_EQ(yc, sc);
}

// kLayoutPacked4 (Q4_0, Q8_0, Q4_1, IQ4_NL repacked at load where the target has their packed
// tile) and kLayoutRows16 (Q4_0, Q4_1, Q6_K on AVX-512, IQ4_NL, Q8_0, Q4_K, Q5_K on AVX-512 VNNI)
// on every target: bit-identical to the plain GGUF layout on the same target (random scales; within
// float rounding for the tiles that sum in another order), exactly the reference with unit scales,
// for N tails that leave the last 4-row tile partly padded, 1 and 2 threads; the packed bytes
// unpack to the plain ones. K whose block count is not a multiple of the packing group is left
// unpacked.
TEST(Matmul, PackedLayoutMatchesPlainOnEveryTarget) {
  std::mt19937 rng(15);
  std::uniform_int_distribution<int> small(-20, 20), pos(0, 31);
  for (TensorType t : {TensorType::Q4_0, TensorType::Q8_0, TensorType::Q4_1, TensorType::IQ4_NL,
                       TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    SCOPED_TRACE(type_name(static_cast<uint32_t>(t)));
    const bool k_quant = t == TensorType::Q4_K || t == TensorType::Q5_K;
    const int64_t group_elems = t == TensorType::Q8_0 ? 64 : k_quant ? 256 : 128;
    // The Q4_K / Q5_K packed tile sums each row's lanes in float in another order than the GGUF
    // tile: equal within float rounding (bit for bit on integer-exact inputs, `unit`). The others
    // do the same arithmetic in the same order on both layouts.
    // Q4_0 and Q4_1 on AVX-512 and Q8_0 on AVX-512 VNNI pack into kLayoutRows16 instead (K a
    // multiple of 64), whose tile sums whole blocks per row: another float order too.
    const bool rows16 = detail::rows16_layout_pays(t);
    const bool same_order = !k_quant && !rows16;
    const bool packs = detail::packed_layout_pays(t) || rows16;
    if (t == TensorType::Q6_K) {  // kLayoutRows16 only, on AVX-512
#if HWY_ARCH_X86
      ASSERT_EQ(packs, (hwy::SupportedTargets() & (HWY_AVX3 | HWY_AVX3_DL)) != 0);
#else
      ASSERT_FALSE(packs);
#endif
    }
    if (t == TensorType::Q4_0 || t == TensorType::Q8_0) {
      // Packed where a target reads the layout natively: AVX-512 and AArch64, not AVX2.
#if HWY_ARCH_ARM_A64
      ASSERT_TRUE(packs);
#elif HWY_ARCH_X86
      ASSERT_EQ(packs, (hwy::SupportedTargets() & (HWY_AVX3 | HWY_AVX3_DL)) != 0);
#endif
    }
    for (bool unit : {false, true}) {
      for (const Shape& s : shapes_for(t)) {
        SCOPED_TRACE("M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) +
                     " unit=" + std::to_string(unit));
        const auto w = random_weights(t, s.N, s.K, rng, unit);
        const WeightMatrix W = matrix(t, w, s.N, s.K);
        const PackedWeight P = repack_for_matmul(W);
        const bool fits = rows16 ? detail::rows16_layout_fits(t, s.K) : s.K % group_elems == 0;
        if (!fits || !packs) {
          EXPECT_EQ(P.view.layout, kLayoutGguf);
          EXPECT_EQ(P.view.data, W.data);
          continue;
        }
        ASSERT_EQ(P.view.layout, rows16 ? kLayoutRows16 : kLayoutPacked4);
        ASSERT_EQ(reinterpret_cast<uintptr_t>(P.view.data) % 64, 0u);
        std::vector<uint8_t> back(w.size());
        detail::unpack_rows(P.view, 0, s.N, back.data(), W.row_bytes);
        ASSERT_EQ(back, w);
        if (rows16) {  // a nibble file's kLayoutPacked4 tensor repacks to the same bytes
          const PackedWeight P4 = repack_packed4(W);
          if (P4.view.layout == kLayoutPacked4) {
            const PackedWeight again = repack_for_matmul(P4.view);
            ASSERT_EQ(again.view.layout, kLayoutRows16);
            ASSERT_EQ(again.storage_bytes, P.storage_bytes);
            ASSERT_EQ(std::memcmp(again.storage.get(), P.storage.get(), P.storage_bytes), 0);
          }
        }
        std::vector<float> x(static_cast<size_t>(s.M * s.K));
        if (unit) {
          for (float& v : x) v = static_cast<float>(small(rng));
          for (size_t b = 0; b < x.size() / 32; ++b) x[32 * b + pos(rng)] = (b % 2) ? 127.0f : -127.0f;
        } else {
          x = test::random_floats(rng, x.size(), -2.0f, 2.0f);
        }
        std::vector<float> ref(static_cast<size_t>(s.M * s.N)), ref_packed(ref.size());
        matmul_reference(W, x.data(), s.M, ref.data(), s.N);
        matmul_reference(P.view, x.data(), s.M, ref_packed.data(), s.N);
        ASSERT_EQ(ref_packed, ref);
        test::for_each_target([&](const std::string&) {
          for (int threads : {1, 2}) {
            MatmulWorkspace ws;
            ws.n_threads = threads;
            std::vector<float> plain(ref.size()), packed(ref.size());
            matmul(W, x.data(), s.M, plain.data(), s.N, ws);
            matmul(P.view, x.data(), s.M, packed.data(), s.N, ws);
            if (same_order || unit) {
              ASSERT_EQ(packed, plain) << "threads=" << threads;
            } else {
              float max_ref = 0.0f;
              for (float v : ref) max_ref = std::max(max_ref, std::fabs(v));
              for (size_t i = 0; i < ref.size(); ++i)
                ASSERT_NEAR(packed[i], ref[i], 1e-4f * std::max(max_ref, 1e-3f))
                    << "i=" << i << " threads=" << threads;
            }
            if (unit) {
              ASSERT_EQ(packed, ref) << "threads=" << threads;
            }
          }
        });
      }
    }
  }
}

TEST(Matmul, SharedInputWithPackedWeights) {
  std::mt19937 rng(16);
  const int64_t M = 2, K = 512;
  const auto w4 = random_weights(TensorType::Q4_0, 70, K, rng);
  const auto w8 = random_weights(TensorType::Q8_0, 9, K, rng);
  const WeightMatrix A = matrix(TensorType::Q4_0, w4, 70, K), B = matrix(TensorType::Q8_0, w8, 9, K);
  const PackedWeight PA = repack_for_matmul(A), PB = repack_for_matmul(B);
  const auto x = test::random_floats(rng, M * K, -1.0f, 1.0f);
  MatmulWorkspace ws;
  ws.n_threads = 2;
  std::vector<float> ya(M * 70), yb(M * 9), sa(M * 70), sb(M * 9);
  const WeightMatrix* list[] = {&PA.view, &PB.view};
  float* ys[] = {ya.data(), yb.data()};
  const int64_t ldys[] = {70, 9};
  matmul_shared_input(list, ys, ldys, 2, x.data(), M, ws);
  matmul(PA.view, x.data(), M, sa.data(), 70, ws);
  matmul(PB.view, x.data(), M, sb.data(), 9, ws);
  EXPECT_EQ(ya, sa);
  EXPECT_EQ(yb, sb);
}

// Decode matmuls remember which matmul followed which and where each thread's first rows of it
// start (run_jobs prefetches them while waiting at the join); prompts (M > 2) leave the record
// alone, and results do not depend on it.
TEST(Matmul, DecodeLookaheadRecordsTheNextMatmul) {
  std::mt19937 rng(17);
  const int64_t K = 512, NA = 64, NB = 128;
  const auto wa = random_weights(TensorType::Q6_K, NA, K, rng);
  const auto wb = random_weights(TensorType::Q4_0, NB, K, rng);
  const WeightMatrix A = matrix(TensorType::Q6_K, wa, NA, K),
                     B = matrix(TensorType::Q4_0, wb, NB, K);
  const PackedWeight PB = repack_for_matmul(B);
  const auto x = test::random_floats(rng, 16 * K, -1.0f, 1.0f);
  MatmulWorkspace ws;
  ws.n_threads = 2;
  std::vector<float> ya(16 * NA), yb(NB), first(NA);
  matmul(A, x.data(), 1, first.data(), NA, ws);
  matmul(PB.view, x.data(), 1, yb.data(), NB, ws);
  matmul(A, x.data(), 16, ya.data(), NA, ws);  // a prompt: not recorded
  matmul(A, x.data(), 1, ya.data(), NA, ws);
  EXPECT_TRUE(std::equal(first.begin(), first.end(), ya.begin()));
  EXPECT_EQ(ws.lookahead.previous, A.data);

  const auto after_a = ws.lookahead.next.find(A.data);
  ASSERT_NE(after_a, ws.lookahead.next.end());
  ASSERT_EQ(after_a->second.size(), 2u);
  const uint8_t* b_end = PB.view.data + PB.storage_bytes;
  EXPECT_EQ(after_a->second[0].bytes, PB.view.data);  // thread 0 starts B at its first tile
  for (const WeightPrefetch& p : after_a->second) {
    EXPECT_GT(p.size, 0u);
    EXPECT_GE(p.bytes, PB.view.data);
    EXPECT_LE(p.bytes + p.size, b_end);
  }
  EXPECT_GT(after_a->second[1].bytes, after_a->second[0].bytes);

  const auto after_b = ws.lookahead.next.find(PB.view.data);
  ASSERT_NE(after_b, ws.lookahead.next.end());
  ASSERT_EQ(after_b->second.size(), 2u);
  EXPECT_EQ(after_b->second[0].bytes, A.data);
  EXPECT_GT(after_b->second[1].bytes, A.data);
  EXPECT_EQ((after_b->second[1].bytes - A.data) % static_cast<int64_t>(A.row_bytes), 0);
  EXPECT_LE(after_b->second[1].bytes + after_b->second[1].size, A.data + NA * A.row_bytes);
}

// Decode shares rows as per-thread ranges of pieces, a thread that is done taking pieces from the
// back of the others' ranges. A region that gets fewer threads than asked (here one: nested in an
// active region with nesting off) must still compute every row, the missing threads' rows taken
// over: the same results as one thread, for every weight of a shared-input call.
TEST(Matmul, DecodeRowsOfMissingThreadsAreTakenOver) {
  std::mt19937 rng(18);
  const int64_t K = 512, N1 = 200, N2 = 132;
  const auto w1 = random_weights(TensorType::Q4_0, N1, K, rng);
  const auto w2 = random_weights(TensorType::Q6_K, N2, K, rng);
  const WeightMatrix A = matrix(TensorType::Q4_0, w1, N1, K),
                     B = matrix(TensorType::Q6_K, w2, N2, K);
  const auto x = test::random_floats(rng, K, -1.0f, 1.0f);
  const WeightMatrix* list[] = {&A, &B};
  const int64_t ldys[] = {N1, N2};

  MatmulWorkspace one;
  std::vector<float> ya(N1), yb(N2);
  float* ys[] = {ya.data(), yb.data()};
  matmul_shared_input(list, ys, ldys, 2, x.data(), 1, one);

  MatmulWorkspace four;
  four.n_threads = 4;
  std::vector<float> za(N1, -1.0f), zb(N2, -1.0f);
  float* zs[] = {za.data(), zb.data()};
  const int levels = omp_get_max_active_levels();
  omp_set_max_active_levels(1);
  int inner_threads = 0;
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    {
#pragma omp parallel num_threads(4)
      {
#pragma omp single
        inner_threads = omp_get_num_threads();
      }
      matmul_shared_input(list, zs, ldys, 2, x.data(), 1, four);
    }
  }
  omp_set_max_active_levels(levels);
  EXPECT_EQ(inner_threads, 1);
  EXPECT_EQ(za, ya);
  EXPECT_EQ(zb, yb);
}

#if defined(__aarch64__)
// The variants really switch kernels: every int8 format, in both Q4_0/Q8_0 layouts, runs the
// i8mm, dot-product or plain NEON row function of the active ISA name, and float types none.
TEST(Matmul, ArmInt8KernelsFollowDispatch) {
  for (const std::string& name : available_isas()) {
    set_isa(name);
    for (TensorType t : kIntTypes) {
      const auto want = name == "NEON_I8MM"      ? detail::neon_i8mm_rows(t, kLayoutGguf)
                        : name == "NEON_DOTPROD" ? detail::neon_dotprod_rows(t, kLayoutGguf)
                                                 : detail::neon_plain_rows(t, kLayoutGguf);
      ASSERT_NE(want, nullptr) << type_name(static_cast<uint32_t>(t));
      EXPECT_EQ(detail::arm_int8_rows(t, kLayoutGguf), want) << name << " " << type_name(static_cast<uint32_t>(t));
    }
    for (TensorType t : {TensorType::Q4_0, TensorType::Q8_0}) {
      EXPECT_NE(detail::arm_int8_rows(t, kLayoutPacked4), nullptr) << name;
      EXPECT_NE(detail::arm_int8_rows(t, kLayoutPacked4), detail::arm_int8_rows(t, kLayoutGguf)) << name;
    }
    EXPECT_EQ(detail::arm_int8_rows(TensorType::F16, kLayoutGguf), nullptr);
  }
  EXPECT_NE(detail::neon_plain_rows(TensorType::Q4_0, kLayoutGguf), detail::neon_dotprod_rows(TensorType::Q4_0, kLayoutGguf));
  EXPECT_NE(detail::neon_dotprod_rows(TensorType::Q4_0, kLayoutGguf), detail::neon_i8mm_rows(TensorType::Q4_0, kLayoutGguf));
  set_isa("auto");
}
#endif

TEST(Matmul, RejectsBadShapesAndTypes) {
  std::vector<uint8_t> w(4096);
  std::vector<float> x(512), y(64);
  MatmulWorkspace ws;
  WeightMatrix W = matrix(TensorType::Q4_0, w, 2, 48);
  W.row_bytes = 100;
  EXPECT_THROW(matmul(W, x.data(), 1, y.data(), 2, ws), std::invalid_argument);
  W = matrix(TensorType::Q6_K, w, 2, 128);
  W.row_bytes = 210;
  EXPECT_THROW(matmul(W, x.data(), 1, y.data(), 2, ws), std::invalid_argument);
  W = matrix(static_cast<TensorType>(16), w, 2, 256);
  EXPECT_THROW(matmul(W, x.data(), 1, y.data(), 2, ws), std::invalid_argument);
  EXPECT_THROW(matmul_reference(W, x.data(), 1, y.data(), 2), std::invalid_argument);
  EXPECT_FALSE(matmul_supports(static_cast<TensorType>(16)));  // IQ2_XXS
  EXPECT_FALSE(matmul_supports(TensorType::Q8_K));  // activation-only format
  for (TensorType t : kTypes) {
    EXPECT_TRUE(matmul_supports(t)) << type_name(static_cast<uint32_t>(t));
    EXPECT_TRUE(type_traits(t)->runnable) << type_name(static_cast<uint32_t>(t));
  }
  W = matrix(TensorType::Q4_1, w, 2, 48);  // K not a multiple of 32
  W.cols = 48;
  EXPECT_THROW(matmul(W, x.data(), 1, y.data(), 2, ws), std::invalid_argument);
  QuantizedInput q;
  EXPECT_THROW(quantize_input(x.data(), 1, 40, q), std::invalid_argument);
}

TEST(QuantizeInput, BitIdenticalToReferenceOnEveryTarget) {
  std::mt19937 rng(14);
  const int64_t M = 5, K = 2304;
  auto x = test::random_floats(rng, M * K, -3.0f, 3.0f);
  // Exact .5 ties: a block whose extreme is 127 has d = 1, so x itself is the quantised value.
  const float ties[] = {127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 1.5f, -126.5f, 0.49999997f, -0.49999997f, 3.5f};
  for (int j = 0; j < 10; ++j) x[j] = ties[j];
  for (int j = 32; j < 64; ++j) x[j] = 0.0f;     // all-zero block
  for (int j = 64; j < 96; ++j) x[j] = 1e-30f;   // tiny block
  x[100] = 1e30f;                                // huge element
  QuantizedInput ref;
  quantize_input_reference(x.data(), M, K, ref);
  EXPECT_EQ(ref.q[1], 3);
  EXPECT_EQ(ref.q[2], -3);
  EXPECT_EQ(ref.q[4], -1);
  EXPECT_EQ(ref.q[7], 0);
  EXPECT_EQ(ref.d[1], 0.0f);
  test::for_each_target([&](const std::string&) {
    QuantizedInput q;
    quantize_input(x.data(), M, K, q);
    ASSERT_EQ(q.M, M);
    ASSERT_EQ(q.K, K);
    EXPECT_EQ(q.q, ref.q);
    EXPECT_EQ(q.sum, ref.sum);
    EXPECT_EQ(q.sum16, ref.sum16);
    ASSERT_EQ(q.d.size(), ref.d.size());
    for (size_t i = 0; i < q.d.size(); ++i) ASSERT_EQ(q.d[i], ref.d[i]) << i;
  });
  // Sums are the sums of the stored q.
  for (int64_t b = 0; b < M * K / 32; ++b) {
    int s0 = 0, s1 = 0;
    for (int j = 0; j < 16; ++j) {
      s0 += ref.q[32 * b + j];
      s1 += ref.q[32 * b + 16 + j];
    }
    ASSERT_EQ(ref.sum16[2 * b], s0);
    ASSERT_EQ(ref.sum16[2 * b + 1], s1);
    ASSERT_EQ(ref.sum[b], s0 + s1);
  }
}

// One scale per 256 (llama.cpp's q8_K, what matmul uses for the K-quants): every block of a
// group stores the group's d, unrounded (amax/127, a tiny floor for an all-zero group), and
// every target's quantisation is bit-identical to the reference.
TEST(QuantizeInput, GroupedScaleBitIdenticalOnEveryTarget) {
  std::mt19937 rng(17);
  const int64_t M = 3, K = 2304;
  auto x = test::random_floats(rng, M * K, -3.0f, 3.0f);
  for (int j = 256; j < 512; ++j) x[j] = 0.0f;  // an all-zero group
  x[600] = 127.0f;                              // group 2's extreme: d = 1 exactly
  x[601] = 2.5f;                                // a tie, rounded away from zero
  QuantizedInput ref;
  quantize_input_reference(x.data(), M, K, ref, 8);
  EXPECT_EQ(ref.group_blocks, 8);
  EXPECT_EQ(ref.d[16], 1.0f);
  EXPECT_EQ(ref.q[601], 3);
  EXPECT_GT(ref.d[8], 0.0f);
  EXPECT_LT(ref.d[8], 1e-29f);
  for (int64_t g = 0; g < M * K / 256; ++g) {
    float amax = 0.0f;
    for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[256 * g + j]));
    if (amax > 0.0f) {
      ASSERT_EQ(ref.d[8 * g], amax / 127.0f) << "group " << g;
    }
    for (int b = 1; b < 8; ++b) ASSERT_EQ(ref.d[8 * g + b], ref.d[8 * g]) << "group " << g;
  }
  test::for_each_target([&](const std::string&) {
    QuantizedInput q;
    quantize_input(x.data(), M, K, q, 8);
    EXPECT_EQ(q.group_blocks, 8);
    EXPECT_EQ(q.q, ref.q);
    EXPECT_EQ(q.sum16, ref.sum16);
    EXPECT_EQ(q.d, ref.d);
    EXPECT_EQ(q.dsum, ref.dsum);
  });
  QuantizedInput q;
  EXPECT_THROW(quantize_input(x.data(), 1, 2080, q, 8), std::invalid_argument);
  EXPECT_THROW(quantize_input(x.data(), 1, 256, q, 4), std::invalid_argument);
  // K-quants always; the other sub-8-bit formats in prefill (M ≥ 16) where K allows, not in
  // decode; 8-bit weights never.
  EXPECT_EQ(activation_group_blocks(TensorType::Q4_K, 1, 256), 8);
  EXPECT_EQ(activation_group_blocks(TensorType::IQ4_XS, 1, 256), 8);
  EXPECT_EQ(activation_group_blocks(TensorType::Q4_0, 1, 2048), 1);
  EXPECT_EQ(activation_group_blocks(TensorType::Q4_0, 15, 2048), 1);
  EXPECT_EQ(activation_group_blocks(TensorType::Q4_0, 16, 2048), 8);
  EXPECT_EQ(activation_group_blocks(TensorType::Q4_0, 512, 2080), 1);
  EXPECT_EQ(activation_group_blocks(TensorType::Q8_0, 512, 2048), 1);
  EXPECT_EQ(activation_group_blocks(TensorType::Q8_C, 512, 2048), 1);
  EXPECT_EQ(activation_group_blocks(TensorType::Q4_1, 512, 5632), 8);
}

// The block-major copy the panel GEMM reads (straight from the floats on targets that have the
// panel GEMM, 16 rows at a time) equals the reference quantisation stored block by block:
// every byte and factor, for per-block scales, per-256 scales and a static step, with a
// partial 16-row tile (M = 37) and K slices that end inside a 32-block tile (K = 2304), and an
// odd block count (K = 2336: the last pair of block sums has no second block).
TEST(QuantizeInput, PanelCopyBitIdenticalOnEveryTarget) {
  for (const int64_t K : {int64_t{2304}, int64_t{2336}}) {
    SCOPED_TRACE("K " + std::to_string(K));
    std::mt19937 rng(23);
    const int64_t M = 37;
    auto x = test::random_floats(rng, M * K, -3.0f, 3.0f);
    const float ties[] = {127.0f, 2.5f,    -2.5f,       0.5f,         -0.5f,
                          1.5f,   -126.5f, 0.49999997f, -0.49999997f, 3.5f};
    for (int j = 0; j < 10; ++j) x[j] = ties[j];
    for (int j = 32; j < 64; ++j) x[j] = 0.0f;      // all-zero block
    for (int j = 4096; j < 4352; ++j) x[j] = 0.0f;  // all-zero group of 256
    x[K * 17 + 5] = 40.0f;                          // beyond a static step's range: clamped
    struct Case {
      int group_blocks;
      float step;
    };
    for (const Case c : {Case{1, 0.0f}, Case{8, 0.0f}, Case{1, 0.05f}}) {
      if (K % (32 * c.group_blocks) != 0) continue;
      SCOPED_TRACE("group_blocks " + std::to_string(c.group_blocks) + " step " +
                   std::to_string(c.step));
      QuantizedInput ref;
      if (c.step > 0.0f) {
        quantize_input_static_reference(x.data(), M, K, c.step, ref);
      } else {
        quantize_input_reference(x.data(), M, K, ref, c.group_blocks);
      }
      detail::resize_panel_input(ref);
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t blk = 0; blk < K / 32; ++blk) detail::store_panel_block(ref, m, blk);
      }
      test::for_each_target([&](const std::string&) {
        for (int threads : {1, 2}) {
          QuantizedInput q;
          detail::quantize_panel_input(x.data(), M, K, q, threads, c.group_blocks, c.step);
          ASSERT_EQ(q.panel_M, M);
          EXPECT_EQ(q.panel_q, ref.panel_q);
          EXPECT_EQ(q.panel_d, ref.panel_d);
          EXPECT_EQ(q.panel_dsum, ref.panel_dsum);
          EXPECT_EQ(q.panel_dsum_q8_1, ref.panel_dsum_q8_1);
          EXPECT_EQ(q.panel_dsum16, ref.panel_dsum16);
          EXPECT_EQ(q.panel_sum_pairs, ref.panel_sum_pairs);
        }
      });
    }
  }
}

// matmul_reference for the integer formats equals Σ dequantize_row(W)·(d_a·q_a) in double (the
// block math is right), and is within activation-quantisation error of Σ dequantize_row(W)·x.
TEST(MatmulReference, AgreesWithDequantizedDoubleDot) {
  std::mt19937 rng(15);
  const int64_t M = 3, N = 9, K = 2304;
  for (TensorType t : kIntTypes) {
    SCOPED_TRACE(type_name(static_cast<uint32_t>(t)));
    const auto w = random_weights(t, N, K, rng);
    const auto x = test::random_floats(rng, M * K, -2.0f, 2.0f);
    const WeightMatrix W = matrix(t, w, N, K);
    std::vector<float> ref(M * N);
    matmul_reference(W, x.data(), M, ref.data(), N);
    QuantizedInput q;  // as matmul quantises for this type (one scale per 256 for K-quants)
    quantize_input_reference(x.data(), M, K, q, activation_group_blocks(t, M, K));
    std::vector<float> wrow(K);
    for (int64_t n = 0; n < N; ++n) {
      dequantize_row(t, w.data() + n * W.row_bytes, K, wrow.data());
      for (int64_t m = 0; m < M; ++m) {
        double dot_q = 0, abs_q = 0, dot_x = 0, quant_err = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double a = static_cast<double>(q.d[(m * K + k) / 32]) * q.q[m * K + k];
          dot_q += wrow[k] * a;
          abs_q += std::fabs(wrow[k] * a);
          dot_x += static_cast<double>(wrow[k]) * x[m * K + k];
          quant_err += std::fabs(wrow[k]) * 0.5001 * q.d[(m * K + k) / 32];
        }
        // Q4_1/Q5_1 mins multiply d·Σq rounded to fp16 (llama.cpp's q8_1 blocks): half an fp16
        // ulp of it per block.
        double q8_1_err = 0;
        if (t == TensorType::Q4_1 || t == TensorType::Q5_1) {
          const int64_t block_bytes = t == TensorType::Q4_1 ? 20 : 24;
          for (int64_t b = 0; b < K / 32; ++b) {
            uint16_t h;
            std::memcpy(&h, w.data() + n * W.row_bytes + block_bytes * b + 2, 2);
            q8_1_err += std::fabs(fp16_to_fp32(h) * q.dsum[m * K / 32 + b]) * std::ldexp(1.0, -11);
          }
        }
        const double r = ref[m * N + n];
        // dequantize_row rounds d·sc·q to float (Q6_K) and ref is stored as float.
        EXPECT_NEAR(r, dot_q, 1e-6 * abs_q + 1e-6 * std::fabs(dot_q) + q8_1_err) << "m=" << m << " n=" << n;
        EXPECT_NEAR(r, dot_x, quant_err + 1e-6 * abs_q) << "m=" << m << " n=" << n;
      }
    }
  }
}

TEST(MatmulReference, FloatTypesAreDoubleDots) {
  std::mt19937 rng(16);
  const int64_t M = 2, N = 5, K = 37;
  for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::BF16}) {
    const auto w = random_weights(t, N, K, rng);
    const auto x = test::random_floats(rng, M * K, -2.0f, 2.0f);
    const WeightMatrix W = matrix(t, w, N, K);
    std::vector<float> ref(M * N), wrow(K);
    matmul_reference(W, x.data(), M, ref.data(), N);
    for (int64_t n = 0; n < N; ++n) {
      dequantize_row(t, w.data() + n * W.row_bytes, K, wrow.data());
      for (int64_t m = 0; m < M; ++m) {
        double dot = 0;
        for (int64_t k = 0; k < K; ++k) dot += static_cast<double>(wrow[k]) * x[m * K + k];
        EXPECT_EQ(ref[m * N + n], static_cast<float>(dot));
      }
    }
  }
}

// A prompt matmul (bf16 weights and activations, f32 results) against the reference: within
// bf16 rounding for the given types, file and packed layouts, padded output stride, 1 and 2
// threads.
void expect_prompt_matmul_within_bf16(const std::function<std::shared_ptr<PromptMatmul>()>& make,
                                      const std::vector<TensorType>& types,
                                      const std::vector<Shape>& shapes, std::mt19937& rng) {
  for (TensorType t : types) {
    SCOPED_TRACE(type_name(static_cast<uint32_t>(t)));
    for (const Shape& s : shapes) {
      if (s.K % type_traits(t)->block_elems != 0) continue;
      SCOPED_TRACE("M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) +
                   " K=" + std::to_string(s.K));
      const auto w = random_weights(t, s.N, s.K, rng);
      const auto x = test::random_floats(rng, static_cast<size_t>(s.M * s.K), -2.0f, 2.0f);
      const WeightMatrix W = matrix(t, w, s.N, s.K);
      const PackedWeight P = repack_for_matmul(W);
      const int64_t ldy = s.N + 5;
      std::vector<float> ref(static_cast<size_t>(s.M * ldy));
      matmul_reference(W, x.data(), s.M, ref.data(), ldy);
      float max_ref = 0.0f;
      for (float v : ref) max_ref = std::max(max_ref, std::fabs(v));
      for (int threads : {1, 2}) {
        MatmulWorkspace ws;
        ws.n_threads = threads;
        ws.prompt = make();
        for (const WeightMatrix* view : {&W, &P.view}) {
          std::vector<float> y(ref.size(), -7.0f);
          matmul(*view, x.data(), s.M, y.data(), ldy, ws);
          for (int64_t m = 0; m < s.M; ++m) {
            for (int64_t n = 0; n < ldy; ++n) {
              if (n >= s.N) {
                ASSERT_EQ(y[m * ldy + n], -7.0f) << "wrote past N";
                continue;
              }
              ASSERT_NEAR(y[m * ldy + n], ref[m * ldy + n], 1e-2f * max_ref) << "m=" << m << " n=" << n;
            }
          }
        }
      }
    }
  }
}

// Weights that share an input (q/k/v, gate/up) go to the prompt matmul together, X prepared
// once: the results are those of one matmul() per weight, bit for bit.
void expect_shared_input_equals_each(const std::shared_ptr<PromptMatmul>& prompt, int64_t M,
                                     std::mt19937& rng) {
  const int64_t K = 512;
  const int64_t Ns[3] = {64, 16, 40};
  const TensorType types[3] = {TensorType::Q4_K, TensorType::Q8_0, TensorType::Q6_K};
  std::vector<std::vector<uint8_t>> w;
  std::vector<WeightMatrix> W;
  for (int i = 0; i < 3; ++i) w.push_back(random_weights(types[i], Ns[i], K, rng));
  for (int i = 0; i < 3; ++i) W.push_back(matrix(types[i], w[i], Ns[i], K));
  const auto x = test::random_floats(rng, M * K, -1.0f, 1.0f);
  MatmulWorkspace ws;
  ws.n_threads = 2;
  ws.prompt = prompt;
  std::vector<std::vector<float>> one(3), shared(3);
  const WeightMatrix* ptrs[3];
  float* ys[3];
  int64_t ldys[3];
  for (int i = 0; i < 3; ++i) {
    one[i].assign(M * Ns[i], 0.0f);
    shared[i].assign(M * Ns[i], -1.0f);
    matmul(W[i], x.data(), M, one[i].data(), Ns[i], ws);
    ptrs[i] = &W[i];
    ys[i] = shared[i].data();
    ldys[i] = Ns[i];
  }
  matmul_shared_input(ptrs, ys, ldys, 3, x.data(), M, ws);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(one[i], shared[i]) << "weight " << i;
}

// matmul() with and without the prompt matmul give the same bits: for products it must leave to
// nibble's kernels (float weights, which bf16 would round; fewer rows than min_rows()).
void expect_left_to_nibble(const std::shared_ptr<PromptMatmul>& prompt, TensorType t, int64_t M,
                           std::mt19937& rng) {
  SCOPED_TRACE(type_name(static_cast<uint32_t>(t)) + " M=" + std::to_string(M));
  const int64_t N = 24, K = 256;
  const auto w = random_weights(t, N, K, rng);
  const auto x = test::random_floats(rng, M * K, -1.0f, 1.0f);
  const WeightMatrix W = matrix(t, w, N, K);
  MatmulWorkspace plain, with;
  with.prompt = prompt;
  std::vector<float> a(M * N), b(M * N);
  matmul(W, x.data(), M, a.data(), N, plain);
  matmul(W, x.data(), M, b.data(), N, with);
  EXPECT_EQ(a, b);
}

TEST(OneDnnMatmul, PrefillWithinBf16OfReference) {
  if (!OneDnnMatmul::available()) GTEST_SKIP() << "built without oneDNN";
  std::mt19937 rng(21);
  expect_prompt_matmul_within_bf16([] { return std::make_shared<OneDnnMatmul>(); },
                                   {TensorType::Q4_0, TensorType::Q8_0, TensorType::Q4_K,
                                    TensorType::Q6_K, TensorType::Q4_1, TensorType::F16},
                                   {{16, 33, 256}, {40, 64, 512}, {17, 8, 2304}}, rng);
}

TEST(OneDnnMatmul, SharedInputGivesEachWeightsResult) {
  if (!OneDnnMatmul::available()) GTEST_SKIP() << "built without oneDNN";
  std::mt19937 rng(24);
  expect_shared_input_equals_each(std::make_shared<OneDnnMatmul>(), 20, rng);
}

TEST(OneDnnMatmul, FloatWeightsAndDecodeKeepNibblesKernels) {
  if (!OneDnnMatmul::available()) GTEST_SKIP() << "built without oneDNN";
  std::mt19937 rng(23);
  const auto onednn = std::make_shared<OneDnnMatmul>();
  expect_left_to_nibble(onednn, TensorType::F32, 32, rng);
  expect_left_to_nibble(onednn, TensorType::F16, 32, rng);
  expect_left_to_nibble(onednn, TensorType::Q4_0, 3, rng);
}

// nibble's AMX tile kernel: every quantised type matmul() runs, M and N tails around the 32 × 32
// tile block and the 64-row panel, K from one 32-block to 9 super-blocks.
TEST(AmxMatmul, PrefillWithinBf16OfReference) {
  if (!AmxMatmul::available())
    GTEST_SKIP() << "this CPU has no AMX-BF16 tiles (or the kernel withholds them)";
  std::mt19937 rng(31);
  expect_prompt_matmul_within_bf16(
      [] { return std::make_shared<AmxMatmul>(); },
      std::vector<TensorType>(std::begin(kIntTypes), std::end(kIntTypes)),
      {{32, 33, 256}, {70, 130, 512}, {33, 8, 2304}, {40, 64, 32}}, rng);
}

TEST(AmxMatmul, SharedInputGivesEachWeightsResult) {
  if (!AmxMatmul::available()) GTEST_SKIP() << "no AMX-BF16 tiles here";
  std::mt19937 rng(32);
  expect_shared_input_equals_each(std::make_shared<AmxMatmul>(), 45, rng);
}

TEST(AmxMatmul, FloatWeightsAndSmallMKeepNibblesKernels) {
  if (!AmxMatmul::available()) GTEST_SKIP() << "no AMX-BF16 tiles here";
  std::mt19937 rng(33);
  const auto amx = std::make_shared<AmxMatmul>();
  expect_left_to_nibble(amx, TensorType::F16, 64, rng);
  expect_left_to_nibble(amx, TensorType::Q4_0, amx->min_rows() - 1, rng);
}

TEST(AmxMatmul, UnavailableIsAClearError) {
  if (AmxMatmul::available()) GTEST_SKIP() << "AMX is available here";
  EXPECT_THROW(AmxMatmul(), std::runtime_error);
}

}  // namespace
}  // namespace nibble
