// CPU entry points of the Gram selection and the texture loss (docs/ops.md), local and global scope. The
// kernels are texture_loss_kernels.h; no (N x M) score matrix ever exists. The backward is
// texture_loss_backward.cpp.
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

// Image rows per task of the local forward (local_forward_strips).
constexpr int64_t kBandRows = 16;
// How many strips ahead the candidate scan prefetches.
constexpr int kPrefetchStrips = 2;
// Vectors of SR patches per task of the global search (global_search_block).
constexpr int kQueryVectors = 4;

#define GRAMGAN_TARGET_KERNELS "texture_loss_kernels.h"
#include "cpu_targets.h"

// Entry points: float16 / bfloat16 inputs are converted to float32 once here.

// Allocates the index (and with_loss, the loss) of sr's patches; runs kernel(T{}, K, C, index, loss or null).
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
