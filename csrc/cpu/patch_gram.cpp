// CPU kernels of gramgan::patch_gram and its backward: threads over patch-rows.
#include <torch/library.h>

#include "cpu_gram.h"

namespace gramgan {
namespace cpu {
namespace {

template <typename T, int K, int C>
void patch_gram_kernel(const at::Tensor& x, at::Tensor& out) {
  constexpr int P = pair_count<C>();
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3), Hp = H / K, Wp = W / K;
  const T* xp = x.data_ptr<T>();
  T* op = out.data_ptr<T>();
  for_each_patch(B, Hp, Wp, [&](int64_t n, int64_t b, int64_t i, int64_t j) {
    T g[P];
    patch_gram<T, K, C>(xp + (b * C * H + i * K) * W + j * K, H * W, W, g, 1);
    T* dst = op + n * C * C;
    int q = 0;
    for (int a = 0; a < C; ++a) {
      for (int c = a; c < C; ++c, ++q) dst[a * C + c] = dst[c * C + a] = g[q];
    }
  });
}

// dx_u = (1/K^2) (dG + dG^T) x_u for every pixel u of every patch.
template <typename T, int K, int C>
void patch_gram_backward_kernel(const at::Tensor& grad, const at::Tensor& x, at::Tensor& dx) {
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3), Hp = H / K, Wp = W / K, HW = H * W;
  const T* xp = x.data_ptr<T>();
  const T* gp = grad.data_ptr<T>();
  T* dp = dx.data_ptr<T>();
  for_each_patch(B, Hp, Wp, [&](int64_t n, int64_t b, int64_t i, int64_t j) {
    T S[C][C];
    patch_gram_grad_matrix<C>(gp + n * C * C, C, K, S);
    const int64_t offset = (b * C * H + i * K) * W + j * K;
    apply_patch_rows<T, K, C>(S, xp + offset, HW, W, dp + offset);
  });
}

at::Tensor patch_gram_cpu(const at::Tensor& x_in, int64_t k) {
  check_image(x_in, "x", k);
  const at::ScalarType compute = acc_scalar_type(x_in.scalar_type());
  const at::Tensor x = x_in.to(compute).contiguous();
  const int64_t C = x.size(1);
  at::Tensor out = at::empty({x.size(0), x.size(2) / k, x.size(3) / k, C, C}, x.options());
  dispatch_kernel(compute, k, C, [&](auto t, auto kc, auto cc) {
    patch_gram_kernel<decltype(t), decltype(kc)::value, decltype(cc)::value>(x, out);
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
    patch_gram_backward_kernel<decltype(t), decltype(kc)::value, decltype(cc)::value>(grad, x, dx);
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
