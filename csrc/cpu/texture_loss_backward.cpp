// CPU kernels of the texture losses' backward (docs/ops.md): local and sampled scope from the forward's
// residual, global scope from the saved index and the candidate images. The Gram target runs the vector
// kernels of texture_loss_backward_kernels.h, the pixel target a patch at a time.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstring>
#include <type_traits>
#include <utility>

#include "cpu_common.h"

namespace gramgan {
namespace cpu {
namespace {

#define GRAMGAN_TARGET_KERNELS "texture_loss_backward_kernels.h"
#include "cpu_targets.h"

// Backward of the global pixel target: gradient of sum(grad * loss) with respect to sr, from the saved
// index. locate(b, i, j, m, &cH, &cW) returns the chosen candidate m's patch for SR patch (b, i, j), from a
// (C, cH, cW) image; m must lie in [0, count).
template <typename T, int K, int C, typename Locate>
void pixel_backward_kernel(const at::Tensor& grad, const at::Tensor& sr, const at::Tensor& index, at::Tensor& dx,
                           int64_t count, const Locate& locate, int criterion) {
  const int64_t B = sr.size(0), H = sr.size(2), W = sr.size(3);
  const T* sp = sr.data_ptr<T>();
  const int64_t* ip = index.data_ptr<int64_t>();
  const T* gp = grad.data_ptr<T>();
  T* dp = dx.data_ptr<T>();
  for_each_patch(B, H / K, W / K, [&](int64_t u, int64_t b, int64_t i, int64_t j) {
    const int64_t m = ip[u];
    TORCH_CHECK(m >= 0 && m < count, "gramgan: saved index ", m, " out of range [0, ", count, ")");
    int64_t cH = H, cW = W;
    const T* c = locate(b, i, j, m, &cH, &cW);
    const int64_t offset = b * C * H * W + i * K * W + j * K;
    pixel_target_grad<T>(sp + offset, H * W, W, c, cH * cW, cW, C, K, gp[u], criterion, dp + offset);
  });
}

// Runs kernel(T{}, K-constant, C-constant, grad, sr, saved, dx) on the inputs in the computation type (saved:
// the forward's index or residual, contiguous); returns dx in sr_in's dtype.
template <typename F>
at::Tensor run_backward(const at::Tensor& grad_in, const at::Tensor& sr_in, const at::Tensor& saved_in, int64_t k,
                        const F& kernel) {
  const at::ScalarType compute = acc_scalar_type(sr_in.scalar_type());
  const at::Tensor sr = sr_in.to(compute).contiguous();
  const at::Tensor saved = saved_in.contiguous(), grad = grad_in.to(compute).contiguous();
  at::Tensor dx = at::empty_like(sr);
  dispatch_kernel(compute, k, sr.size(1), [&](auto t, auto kc, auto cc) { kernel(t, kc, cc, grad, sr, saved, dx); });
  return dx.to(sr_in.scalar_type());
}

at::Tensor texture_loss_global_backward_cpu(const at::Tensor& grad_in, const at::Tensor& sr_in,
                                            at::TensorList candidates, const at::Tensor& index_in, int64_t k,
                                            c10::string_view target, c10::string_view criterion) {
  check_image(sr_in, "sr", k);
  const Levels levels(sr_in, candidates, k, acc_scalar_type(sr_in.scalar_type()));
  const int tg = parse_target(target), cr = parse_criterion(criterion);
  check_backward_args(grad_in, index_in, sr_in, k);
  return run_backward(grad_in, sr_in, index_in, k, [&](auto t, auto kc, auto cc, auto&... args) {
    using T = decltype(t);
    constexpr int K = decltype(kc)::value, C = decltype(cc)::value;
    auto locate = [&](int64_t b, int64_t, int64_t, int64_t m, int64_t* cH, int64_t* cW) {
      return global_patch<T, K, C>(levels, b, m, cH, cW);
    };
    if (tg == kTargetGram) {
      GRAMGAN_ON_VECTOR_TARGET(gram_backward_strips<T, K, C>(args..., levels.total, locate, cr));
    } else {
      pixel_backward_kernel<T, K, C>(args..., levels.total, locate, cr);
    }
  });
}

// The backward of the local and sampled losses from the forward's residual (docs/ops.md). Reads SR (Gram
// target) and the residual only.
at::Tensor texture_loss_residual_backward_cpu(const at::Tensor& grad_in, const at::Tensor& sr_in,
                                              const at::Tensor& residual_in, int64_t k, c10::string_view target,
                                              c10::string_view criterion) {
  const int tg = parse_target(target), cr = parse_criterion(criterion);
  check_residual_backward_args(grad_in, sr_in, residual_in, k, tg);
  return run_backward(grad_in, sr_in, residual_in, k,
                      [&](auto t, auto kc, auto cc, const at::Tensor& grad, const at::Tensor& sr,
                          const at::Tensor& residual, at::Tensor& dx) {
    using T = decltype(t);
    constexpr int K = decltype(kc)::value, C = decltype(cc)::value;
    if (tg == kTargetGram) {
      GRAMGAN_ON_VECTOR_TARGET(residual_backward_strips<T, K, C>(grad, sr, residual, dx, cr));
      return;
    }
    const int64_t H = sr.size(2), W = sr.size(3);
    const T* rp = residual.data_ptr<T>();
    const T* gp = grad.data_ptr<T>();
    T* dp = dx.data_ptr<T>();
    for_each_patch(sr.size(0), H / K, W / K, [&](int64_t u, int64_t b, int64_t i, int64_t j) {
      const int64_t offset = b * C * H * W + i * K * W + j * K;
      pixel_residual_grad<T>(rp + offset, H * W, W, C, K, gp[u], cr, dp + offset);
    });
  });
}

}  // namespace
}  // namespace cpu
}  // namespace gramgan

TORCH_LIBRARY_IMPL(gramgan, CPU, m) {
  m.impl("texture_loss_residual_backward", &gramgan::cpu::texture_loss_residual_backward_cpu);
  m.impl("texture_loss_global_backward", &gramgan::cpu::texture_loss_global_backward_cpu);
}
