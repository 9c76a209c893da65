// Per-target portable sgemm (included by linalg.cpp through foreach_target.h): the path used when
// nibble is built without oneDNN. Goto-style: op(B) is packed in kKc × kNc slabs shared by all
// threads, each thread packs kMc × kKc blocks of op(A), and a 6 × (2 vectors) register tile does
// the multiply-adds. Edge tiles are zero-padded in the packed copies, so the kernel has no tails.

#include <algorithm>
#include <cstdint>

#if defined(NIBBLE_QUANT_LINALG_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_QUANT_LINALG_INL_H_
#undef NIBBLE_QUANT_LINALG_INL_H_
#else
#define NIBBLE_QUANT_LINALG_INL_H_
#endif

#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::linalg {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int64_t kMr = 6;     // C rows per register tile
constexpr int64_t kKc = 256;   // depth of one packed slab (A and B panels stay in L1/L2)
constexpr int64_t kMc = 96;    // op(A) rows per packed block (a multiple of kMr)
constexpr int64_t kNc = 1024;  // op(B) columns per packed slab

// C[6 × 2N] += alpha · Ap · Bp over kc steps; Ap is kc × 6 (k-major), Bp kc × 2N. Rows/columns
// past mr/nr are computed on zero padding and not stored.
template <class D>
HWY_INLINE void Tile(D d, int64_t kc, const float* HWY_RESTRICT ap, const float* HWY_RESTRICT bp, float alpha,
                     float* c, int64_t ldc, int64_t mr, int64_t nr) {
  const auto N = static_cast<int64_t>(hn::Lanes(d));
  auto c00 = hn::Zero(d), c01 = hn::Zero(d), c10 = hn::Zero(d), c11 = hn::Zero(d);
  auto c20 = hn::Zero(d), c21 = hn::Zero(d), c30 = hn::Zero(d), c31 = hn::Zero(d);
  auto c40 = hn::Zero(d), c41 = hn::Zero(d), c50 = hn::Zero(d), c51 = hn::Zero(d);
  for (int64_t p = 0; p < kc; ++p) {
    const auto b0 = hn::Load(d, bp + p * 2 * N);
    const auto b1 = hn::Load(d, bp + p * 2 * N + N);
    const float* a = ap + p * kMr;
    auto av = hn::Set(d, a[0]);
    c00 = hn::MulAdd(av, b0, c00);
    c01 = hn::MulAdd(av, b1, c01);
    av = hn::Set(d, a[1]);
    c10 = hn::MulAdd(av, b0, c10);
    c11 = hn::MulAdd(av, b1, c11);
    av = hn::Set(d, a[2]);
    c20 = hn::MulAdd(av, b0, c20);
    c21 = hn::MulAdd(av, b1, c21);
    av = hn::Set(d, a[3]);
    c30 = hn::MulAdd(av, b0, c30);
    c31 = hn::MulAdd(av, b1, c31);
    av = hn::Set(d, a[4]);
    c40 = hn::MulAdd(av, b0, c40);
    c41 = hn::MulAdd(av, b1, c41);
    av = hn::Set(d, a[5]);
    c50 = hn::MulAdd(av, b0, c50);
    c51 = hn::MulAdd(av, b1, c51);
  }
  const auto va = hn::Set(d, alpha);
  if (mr == kMr && nr == 2 * N) {
    auto store = [&](int64_t r, decltype(c00) lo, decltype(c00) hi) {
      float* row = c + r * ldc;
      hn::StoreU(hn::MulAdd(va, lo, hn::LoadU(d, row)), d, row);
      hn::StoreU(hn::MulAdd(va, hi, hn::LoadU(d, row + N)), d, row + N);
    };
    store(0, c00, c01);
    store(1, c10, c11);
    store(2, c20, c21);
    store(3, c30, c31);
    store(4, c40, c41);
    store(5, c50, c51);
    return;
  }
  HWY_ALIGN float tile[kMr * 2 * (HWY_MAX_BYTES / sizeof(float))];
  const auto put = [&](int64_t r, decltype(c00) lo, decltype(c00) hi) {
    hn::Store(hn::Mul(va, lo), d, tile + r * 2 * N);
    hn::Store(hn::Mul(va, hi), d, tile + r * 2 * N + N);
  };
  put(0, c00, c01);
  put(1, c10, c11);
  put(2, c20, c21);
  put(3, c30, c31);
  put(4, c40, c41);
  put(5, c50, c51);
  for (int64_t r = 0; r < mr; ++r) {
    for (int64_t j = 0; j < nr; ++j) c[r * ldc + j] += tile[r * 2 * N + j];
  }
}

void GemmPortable(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const hn::ScalableTag<float> d;
  const auto N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t nr_w = 2 * N;  // register tile width
  const int64_t nc_max = std::min(kNc, (n + nr_w - 1) / nr_w * nr_w);
  const int64_t kc_max = std::min(kKc, k);
  auto bp = hwy::AllocateAligned<float>(static_cast<size_t>(std::max<int64_t>(1, kc_max * nc_max)));

#pragma omp parallel
  {
    auto ap = hwy::AllocateAligned<float>(static_cast<size_t>(std::max<int64_t>(1, kMc * kc_max)));
    if (beta != 1.0f) {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < m; ++i) {
        float* c = C + i * ldc;
        if (beta == 0.0f) {
          std::fill(c, c + n, 0.0f);
        } else {
          for (int64_t j = 0; j < n; ++j) c[j] *= beta;
        }
      }
    }
    for (int64_t j0 = 0; j0 < n; j0 += kNc) {
      const int64_t nc = std::min(kNc, n - j0);
      const int64_t npanels = (nc + nr_w - 1) / nr_w;
      for (int64_t p0 = 0; p0 < k; p0 += kKc) {
        const int64_t kc = std::min(kKc, k - p0);
        // Pack op(B)[p0:p0+kc, j0:j0+nc] as panels of nr_w columns, zero beyond n.
#pragma omp for schedule(static)
        for (int64_t jp = 0; jp < npanels; ++jp) {
          float* dst = bp.get() + jp * kc * nr_w;
          for (int64_t p = 0; p < kc; ++p) {
            for (int64_t x = 0; x < nr_w; ++x) {
              const int64_t j = j0 + jp * nr_w + x;
              dst[p * nr_w + x] =
                  j < j0 + nc ? (tb ? B[j * ldb + p0 + p] : B[(p0 + p) * ldb + j]) : 0.0f;
            }
          }
        }  // implicit barrier: the slab is complete
#pragma omp for schedule(dynamic, 1)
        for (int64_t i0 = 0; i0 < m; i0 += kMc) {
          const int64_t mc = std::min(kMc, m - i0);
          const int64_t mpanels = (mc + kMr - 1) / kMr;
          for (int64_t ip = 0; ip < mpanels; ++ip) {
            float* dst = ap.get() + ip * kc * kMr;
            for (int64_t p = 0; p < kc; ++p) {
              for (int64_t r = 0; r < kMr; ++r) {
                const int64_t i = i0 + ip * kMr + r;
                dst[p * kMr + r] = i < i0 + mc ? (ta ? A[(p0 + p) * lda + i] : A[i * lda + p0 + p]) : 0.0f;
              }
            }
          }
          for (int64_t jp = 0; jp < npanels; ++jp) {
            const int64_t nr = std::min(nr_w, nc - jp * nr_w);
            for (int64_t ip = 0; ip < mpanels; ++ip) {
              const int64_t mr = std::min(kMr, mc - ip * kMr);
              Tile(d, kc, ap.get() + ip * kc * kMr, bp.get() + jp * kc * nr_w, alpha,
                   C + (i0 + ip * kMr) * ldc + j0 + jp * nr_w, ldc, mr, nr);
            }
          }
        }  // implicit barrier before the slab is repacked
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace nibble::linalg
HWY_AFTER_NAMESPACE();

#endif  // NIBBLE_QUANT_LINALG_INL_H_
