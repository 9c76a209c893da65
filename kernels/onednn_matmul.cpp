#include "kernels/onednn_matmul.h"

#include <stdexcept>

#include "kernels/matmul_internal.h"

#if defined(NIBBLE_HAVE_DNNL)
#include <dnnl.h>
#include <omp.h>

#include <algorithm>
#include <dnnl.hpp>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/ops.h"
#include "kernels/quantize.h"
#include "kernels/repack.h"
#endif

namespace nibble {

// The threshold of nibble's own panel GEMM, so both prompt paths start at the same prompt length
// and shorter prompts stay on the int8 row kernels either way.
int64_t OneDnnMatmul::min_rows() const { return detail::kPanelMinM; }

#if defined(NIBBLE_HAVE_DNNL)

namespace {

using dnnl::memory;

// W's rows dequantised to bf16, row n at n·K: as a {K, N} matrix that is format `ba`.
std::vector<uint16_t> bf16_rows(const WeightMatrix& W, int n_threads) {
  const int64_t N = W.rows, K = W.cols;
  std::vector<uint16_t> out(static_cast<size_t>(N * K));
  const bool packed = W.layout != kLayoutGguf;
#pragma omp parallel num_threads(n_threads)
  {
    std::vector<float> row(static_cast<size_t>(K));
    std::vector<uint8_t> gguf(packed ? W.row_bytes : 0);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const uint8_t* src = W.data + n * W.row_bytes;
      if (packed) {
        detail::unpack_rows(W, n, 1, gguf.data(), W.row_bytes);
        src = gguf.data();
      }
      dequantize_row(W.type, src, K, row.data());
      to_bf16(row.data(), K, out.data() + n * K);
    }
  }
  return out;
}

// oneDNN's OpenMP regions use the calling thread's thread count: set for one call, restored
// after it, also when it throws.
class OmpThreads {
 public:
  explicit OmpThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~OmpThreads() { omp_set_num_threads(saved_); }
  OmpThreads(const OmpThreads&) = delete;
  OmpThreads& operator=(const OmpThreads&) = delete;

 private:
  int saved_;
};

}  // namespace

struct OneDnnMatmul::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  // One weight as oneDNN wants it: the bf16 copy in the blocked layout of the first primitive
  // that used it (another M may choose another layout: then a copy in that one is added), and
  // a primitive per (M, ldy).
  struct Weight {
    std::vector<memory> layouts;
    std::map<std::pair<int64_t, int64_t>, std::pair<dnnl::matmul, size_t>> primitives;
  };
  std::unordered_map<const uint8_t*, Weight> weights;  // by W.data: a model's weights do not move
  std::vector<uint16_t> src;
};

bool OneDnnMatmul::available() { return true; }

OneDnnMatmul::OneDnnMatmul() : impl_(std::make_unique<Impl>()) {}
OneDnnMatmul::~OneDnnMatmul() = default;

std::string OneDnnMatmul::isa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

bool OneDnnMatmul::runs_on_amx() {
  // get_effective_cpu_isa() already accounts for what the kernel permits (oneDNN asks Linux for
  // the AMX tile state itself).
  return dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_amx;
}

void OneDnnMatmul::run_shared_input(const WeightMatrix* const* Ws, float* const* Ys,
                                    const int64_t* ldys, int n_weights, const float* X, int64_t M,
                                    int n_threads) {
  if (M <= 0 || n_weights <= 0) return;
  const int64_t K = Ws[0]->cols;
  for (int i = 0; i < n_weights; ++i) {
    if (Ws[i]->cols != K) throw std::invalid_argument("onednn matmul: weights differ in K");
    if (ldys[i] < Ws[i]->rows) throw std::invalid_argument("onednn matmul: ldy smaller than N");
    // matmul() keeps weights with an outlier part (q8o) on its own kernels; this path ignores it.
    if (Ws[i]->n_outliers != 0)
      throw std::invalid_argument("onednn matmul: weights with outliers are not supported");
  }
  const OmpThreads threads(n_threads);
  // X in bf16, once for all the weights that read it.
  impl_->src.resize(static_cast<size_t>(M * K));
  uint16_t* src = impl_->src.data();
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int64_t m = 0; m < M; ++m) to_bf16(X + m * K, K, src + m * K);
  for (int i = 0; i < n_weights; ++i) {
    if (Ws[i]->rows > 0) execute(*Ws[i], M, Ys[i], ldys[i], n_threads);
  }
}

void OneDnnMatmul::execute(const WeightMatrix& W, int64_t M, float* Y, int64_t ldy, int n_threads) {
  const int64_t N = W.rows, K = W.cols;

  const memory::desc src_md({M, K}, memory::data_type::bf16, memory::format_tag::ab);
  const memory::desc dst_md({M, N}, memory::data_type::f32, memory::dims{ldy, 1});
  Impl::Weight& w = impl_->weights[W.data];
  auto found = w.primitives.find({M, ldy});
  if (found == w.primitives.end()) {
    const memory::desc any_md({K, N}, memory::data_type::bf16, memory::format_tag::any);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, any_md, dst_md), impl_->engine);
    size_t layout = 0;
    while (layout < w.layouts.size() && w.layouts[layout].get_desc() != pd.weights_desc()) ++layout;
    if (layout == w.layouts.size()) {
      memory packed(pd.weights_desc(), impl_->engine);
      if (w.layouts.empty()) {
        std::vector<uint16_t> rows = bf16_rows(W, n_threads);
        memory plain({{K, N}, memory::data_type::bf16, memory::format_tag::ba}, impl_->engine, rows.data());
        dnnl::reorder(plain, packed).execute(impl_->stream, plain, packed);
      } else {
        dnnl::reorder(w.layouts[0], packed).execute(impl_->stream, w.layouts[0], packed);
      }
      impl_->stream.wait();
      w.layouts.push_back(packed);
    }
    found = w.primitives.emplace(std::make_pair(M, ldy), std::make_pair(dnnl::matmul(pd), layout)).first;
  }

  memory src_mem(src_md, impl_->engine, impl_->src.data());
  memory dst_mem(dst_md, impl_->engine, Y);
  found->second.first.execute(impl_->stream, {{DNNL_ARG_SRC, src_mem},
                                              {DNNL_ARG_WEIGHTS, w.layouts[found->second.second]},
                                              {DNNL_ARG_DST, dst_mem}});
  impl_->stream.wait();
}

bool onednn_float_gemm(const WeightMatrix& W, const float* X, int64_t M, float* Y, int64_t ldy,
                       int n_threads) {
  if (W.type != TensorType::F32 && W.type != TensorType::F16 && W.type != TensorType::BF16) return false;
  if (W.layout != kLayoutGguf) return false;
  const int64_t N = W.rows, K = W.cols;
  // Panels of rows small enough to stay in cache while sgemm streams X past them.
  const int64_t panel = std::max<int64_t>(64, std::min<int64_t>(N, (1 << 20) / std::max<int64_t>(K, 1)));
  std::vector<float> wf(static_cast<size_t>(panel * K));
  const OmpThreads threads(n_threads);
  for (int64_t n0 = 0; n0 < N; n0 += panel) {
    const int64_t rows = std::min(panel, N - n0);
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(W.type, W.data + (n0 + r) * W.row_bytes, K, wf.data() + r * K);
    }
    // Row-major: Y[:, n0:n0+rows] = X (M×K) · Wpanelᵀ (K×rows).
    if (dnnl_sgemm('N', 'T', M, rows, K, 1.0f, X, K, wf.data(), K, 0.0f, Y + n0, ldy) !=
        dnnl_success) {
      throw std::runtime_error("oneDNN sgemm failed");
    }
  }
  return true;
}

#else  // built without oneDNN

bool onednn_float_gemm(const WeightMatrix&, const float*, int64_t, float*, int64_t, int) { return false; }

struct OneDnnMatmul::Impl {};

bool OneDnnMatmul::available() { return false; }

OneDnnMatmul::OneDnnMatmul() {
  throw std::runtime_error("this nibble was built without oneDNN (libdnnl-dev): the onednn matmul is unavailable");
}
OneDnnMatmul::~OneDnnMatmul() = default;

void OneDnnMatmul::run_shared_input(const WeightMatrix* const*, float* const*, const int64_t*, int,
                                    const float*, int64_t, int) {
  throw std::runtime_error("this nibble was built without oneDNN");
}

std::string OneDnnMatmul::isa() { return "none"; }

bool OneDnnMatmul::runs_on_amx() { return false; }

#endif

}  // namespace nibble
