// CUDA kernel of gramgan::downsample_half: MATLAB's bicubic imresize(x, 0.5) with the 8-tap filter of
// csrc/include/gramgan_resize.h, one thread per output pixel (8 x 8 taps: rows first, then columns, as
// the CPU kernel and imresize order them).
#include "cuda_common.cuh"
#include "cuda_ops.h"
#include "gramgan_resize.h"

namespace gramgan {
namespace cuda {
namespace {

template <typename scalar_t>
__global__ void downsample_half_kernel(const scalar_t* __restrict__ x, acc_type_t<scalar_t>* __restrict__ out,
                                       int64_t planes, int64_t H, int64_t W) {
  using acc_t = acc_type_t<scalar_t>;
  const int64_t Ho = H / 2, Wo = W / 2, N = planes * Ho * Wo;
  for (int64_t n = global_thread(); n < N; n += grid_stride()) {
    const int64_t plane = n / (Ho * Wo), o = (n / Wo) % Ho, p = n % Wo;
    const scalar_t* image = x + plane * H * W;
    acc_t sum = 0;
    for (int c = 0; c < kHalfTaps; ++c) {
      const int64_t col = half_tap_index(p, c, W);
      acc_t column = 0;
      for (int r = 0; r < kHalfTaps; ++r) {
        column += half_tap_weight<acc_t>(r) * static_cast<acc_t>(image[half_tap_index(o, r, H) * W + col]);
      }
      sum += half_tap_weight<acc_t>(c) * column;
    }
    out[n] = sum;
  }
}

}  // namespace

at::Tensor downsample_half_cuda(const at::Tensor& x_in) {
  check_image(x_in, "x", 2);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  at::Tensor out = at::empty({B, C, H / 2, W / 2}, x.options().dtype(acc_scalar_type(x.scalar_type())));
  const int64_t N = out.numel();
  if (N == 0) return out;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gramgan_downsample_half_cuda", [&] {
    GRAMGAN_LAUNCH(downsample_half_kernel<scalar_t>, grid_for(N), kThreads, 0, stream)(
        x.data_ptr<scalar_t>(), out.data_ptr<acc_type_t<scalar_t>>(), B * C, H, W);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace cuda
}  // namespace gramgan
