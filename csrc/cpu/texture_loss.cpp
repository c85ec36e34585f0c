// CPU kernels of the Gram selection and the texture loss (docs/ops.md), local and global scope.
//
// Local scope: one pass per band of patch-rows computes the SR Grams, each candidate's Grams, the score,
// the running argmin and the loss; nothing bigger than a few rows of the image is ever held. Global
// scope: the candidate Gram bank (B, M, P) is computed first (small), then blocks of SR patches scan it
// with running argmins held in registers, every distance a direct sum of squared differences, so no
// (N x M) score matrix exists. The kernels (texture_loss_kernels.h) run strips of patches, one per vector
// lane (cpu_strips.h), compiled per vector target; the backward kernels are texture_loss_backward.cpp.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpu_common.h"

namespace gramgan {
namespace cpu {
namespace {

// Image rows per task of the local forward: each task streams a band of this many rows of every
// candidate image in turn (long contiguous reads the hardware prefetcher follows), keeping the running
// selection of the band's patches in cache.
constexpr int64_t kBandRows = 16;
// How many strips ahead the candidate scan prefetches.
constexpr int kPrefetchStrips = 2;
// Vectors of SR patches per task of the global search, whose running argmins stay in registers while the
// image's whole bank streams past (from L2: M x P values).
constexpr int kQueryVectors = 4;

#define GRAMGAN_TARGET_KERNELS "texture_loss_kernels.h"
#include "cpu_targets.h"

// ---- entry points -------------------------------------------------------------------------------
// float16 / bfloat16 inputs are converted to float32 once here; the kernels read T = float or double.

// Allocates the index (and with with_loss the loss) of sr's patches and runs
// kernel(T{}, K-constant, C-constant, index, loss or nullptr) for sr's type (float or double).
template <typename F>
std::tuple<at::Tensor, at::Tensor> run_forward(const at::Tensor& sr, int64_t k, bool with_loss, const F& kernel) {
  const int64_t B = sr.size(0), Hp = sr.size(2) / k, Wp = sr.size(3) / k;
  at::Tensor index = at::empty({B, Hp, Wp}, sr.options().dtype(at::kLong));
  at::Tensor loss;
  if (with_loss) loss = at::empty({B, Hp, Wp}, sr.options());
  dispatch_kernel(sr.scalar_type(), k, sr.size(1),
                  [&](auto t, auto kc, auto cc) { kernel(t, kc, cc, index, with_loss ? &loss : nullptr); });
  return {loss, index};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> local_forward(const at::Tensor& sr_in, const at::Tensor& cand_in,
                                                             int64_t k, double gt_weight, int target, int criterion,
                                                             bool with_loss) {
  check_local(sr_in, cand_in, k);
  const at::ScalarType compute = acc_scalar_type(sr_in.scalar_type());
  const at::Tensor sr = sr_in.to(compute).contiguous(), cand = cand_in.to(compute).contiguous();
  at::Tensor residual;
  if (with_loss) residual = at::empty(residual_shape(sr, k, target), sr.options());
  auto [loss, index] =
      run_forward(sr, k, with_loss, [&](auto t, auto kc, auto cc, at::Tensor& index, at::Tensor* loss) {
    constexpr int K = decltype(kc)::value, C = decltype(cc)::value;
    using T = decltype(t);
    GRAMGAN_ON_VECTOR_TARGET(
        local_forward_strips<T, K, C>(sr, cand, gt_weight, target, criterion, index, loss, &residual));
  });
  return {loss, index, residual};
}

std::tuple<at::Tensor, at::Tensor> global_forward(const at::Tensor& sr_in, at::TensorList candidates, int64_t k,
                                                  double gt_weight, int target, int criterion, bool with_loss) {
  check_image(sr_in, "sr", k);
  const at::ScalarType compute = acc_scalar_type(sr_in.scalar_type());
  const Levels levels(sr_in, candidates, k, compute);
  TORCH_CHECK(compute != at::kFloat || levels.total < kMaxFloatIndex, "gramgan: the global scope's ", levels.total,
              " candidate patches per image exceed the cpu kernels' float32 index range (2^24); use float64 inputs");
  const at::Tensor sr = sr_in.to(compute).contiguous();
  return run_forward(sr, k, with_loss, [&](auto t, auto kc, auto cc, at::Tensor& index, at::Tensor* loss) {
    constexpr int K = decltype(kc)::value, C = decltype(cc)::value;
    using T = decltype(t);
    GRAMGAN_ON_VECTOR_TARGET(global_forward_strips<T, K, C>(sr, levels, gt_weight, target, criterion, index, loss));
  });
}

using Ops = SelectionOps<local_forward, global_forward>;

}  // namespace
}  // namespace cpu
}  // namespace gramgan

TORCH_LIBRARY_IMPL(gramgan, CPU, m) {
  m.impl("gram_select_local", &gramgan::cpu::Ops::select_local);
  m.impl("gram_select_global", &gramgan::cpu::Ops::select_global);
  m.impl("texture_loss_local", &gramgan::cpu::Ops::loss_local);
  m.impl("texture_loss_global", &gramgan::cpu::Ops::loss_global);
}
