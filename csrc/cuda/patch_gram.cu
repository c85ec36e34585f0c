// CUDA kernels of gramgan::patch_gram and its backward: one thread per patch.
#include "cuda_common.cuh"
#include "cuda_ops.h"

namespace gramgan {
namespace cuda {
namespace {

template <typename scalar_t>
__global__ void patch_gram_kernel(const scalar_t* __restrict__ x, acc_type_t<scalar_t>* __restrict__ out, int64_t B,
                                  int C, int K, int64_t H, int64_t W) {
  using acc_t = acc_type_t<scalar_t>;
  const int64_t Hp = H / K, Wp = W / K, N = B * Hp * Wp;
  for (int64_t n = global_thread(); n < N; n += grid_stride()) {
    const int64_t b = n / (Hp * Wp), i = (n / Wp) % Hp, j = n % Wp;
    acc_t G[kMaxPairs];
    patch_gram<kMaxChannels>(x + b * C * H * W + (i * K) * W + j * K, H * W, W, C, K, G);
    acc_t* dst = out + n * C * C;
    int q = 0;
#pragma unroll
    for (int a = 0; a < kMaxChannels; ++a) {
#pragma unroll
      for (int c = a; c < kMaxChannels; ++c, ++q) {
        if (c < C) dst[a * C + c] = dst[c * C + a] = G[q];
      }
    }
  }
}

// dx_u = (1/K^2) (dG + dG^T) x_u for every pixel u of every patch.
template <typename scalar_t>
__global__ void patch_gram_backward_kernel(const acc_type_t<scalar_t>* __restrict__ grad,
                                           const scalar_t* __restrict__ x, scalar_t* __restrict__ dx, int64_t B, int C,
                                           int K, int64_t H, int64_t W) {
  using acc_t = acc_type_t<scalar_t>;
  const int64_t Hp = H / K, Wp = W / K, N = B * Hp * Wp, HW = H * W;
  for (int64_t n = global_thread(); n < N; n += grid_stride()) {
    const int64_t b = n / (Hp * Wp), i = (n / Wp) % Hp, j = n % Wp;
    acc_t S[kMaxChannels][kMaxChannels];
    patch_gram_grad_matrix<kMaxChannels>(grad + n * C * C, C, K, S);
    const int64_t offset = b * C * HW + (i * K) * W + j * K;
    apply_patch_matrix<kMaxChannels>(S, x + offset, HW, W, C, K, dx + offset);
  }
}

}  // namespace

at::Tensor patch_gram_cuda(const at::Tensor& x_in, int64_t k) {
  check_image(x_in, "x", k);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  at::Tensor out = at::empty({B, H / k, W / k, C, C}, x.options().dtype(acc_scalar_type(x.scalar_type())));
  const int64_t N = B * (H / k) * (W / k);
  if (N == 0) return out;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gramgan_patch_gram_cuda", [&] {
    GRAMGAN_LAUNCH(patch_gram_kernel<scalar_t>, grid_for(N), kThreads, 0, stream)(
        x.data_ptr<scalar_t>(), out.data_ptr<acc_type_t<scalar_t>>(), B, static_cast<int>(C), static_cast<int>(k), H,
        W);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor patch_gram_backward_cuda(const at::Tensor& grad_in, const at::Tensor& x_in, int64_t k) {
  check_image(x_in, "x", k);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  check_gram_grad(grad_in, x, k);
  const at::Tensor grad = grad_in.to(acc_scalar_type(x.scalar_type())).contiguous();
  at::Tensor dx = at::empty_like(x);
  const int64_t N = B * (H / k) * (W / k);
  if (N == 0) return dx;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gramgan_patch_gram_bwd_cuda", [&] {
    GRAMGAN_LAUNCH(patch_gram_backward_kernel<scalar_t>, grid_for(N), kThreads, 0, stream)(
        grad.data_ptr<acc_type_t<scalar_t>>(), x.data_ptr<scalar_t>(), dx.data_ptr<scalar_t>(), B, static_cast<int>(C),
        static_cast<int>(k), H, W);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return dx;
}

}  // namespace cuda
}  // namespace gramgan
