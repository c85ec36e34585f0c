// CPU kernels of gramgan::patch_gram and its backward (patch_gram_kernels.h): threads over patch-rows.
#include <torch/library.h>

#include "cpu_common.h"

namespace gramgan {
namespace cpu {
namespace {

#define GRAMGAN_TARGET_KERNELS "patch_gram_kernels.h"
#include "cpu_targets.h"

at::Tensor patch_gram_cpu(const at::Tensor& x_in, int64_t k) {
  check_image(x_in, "x", k);
  const at::ScalarType compute = acc_scalar_type(x_in.scalar_type());
  const at::Tensor x = x_in.to(compute).contiguous();
  const int64_t C = x.size(1);
  at::Tensor out = at::empty({x.size(0), x.size(2) / k, x.size(3) / k, C, C}, x.options());
  dispatch_kernel(compute, k, C, [&](auto t, auto kc, auto cc) {
    GRAMGAN_ON_VECTOR_TARGET(patch_gram_strips<decltype(t), decltype(kc)::value, decltype(cc)::value>(x, out));
  });
  return out;
}

at::Tensor patch_gram_backward_cpu(const at::Tensor& grad_in, const at::Tensor& x_in, int64_t k) {
  check_image(x_in, "x", k);
  const at::ScalarType compute = acc_scalar_type(x_in.scalar_type());
  const at::Tensor x = x_in.to(compute).contiguous();
  const int64_t C = x.size(1);
  check_gram_grad(grad_in, x, k);
  const at::Tensor grad = grad_in.to(compute).contiguous();
  at::Tensor dx = at::empty_like(x);
  dispatch_kernel(compute, k, C, [&](auto t, auto kc, auto cc) {
    GRAMGAN_ON_VECTOR_TARGET(
        patch_gram_backward_strips<decltype(t), decltype(kc)::value, decltype(cc)::value>(grad, x, dx));
  });
  return dx.to(x_in.scalar_type());
}

}  // namespace
}  // namespace cpu
}  // namespace gramgan

TORCH_LIBRARY_IMPL(gramgan, CPU, m) {
  m.impl("patch_gram", &gramgan::cpu::patch_gram_cpu);
  m.impl("patch_gram_backward", &gramgan::cpu::patch_gram_backward_cpu);
}
