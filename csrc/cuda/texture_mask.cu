// CUDA kernels of gramgan::texture_mask, mask_pair and mask_pair_backward (docs/ops.md).
//
// Statistics in float64, as the reference. Grid mode: one thread per (clipped) cell, two passes over
// its few pixels. Sliding mode: one thread per column keeps running window sums down the rows, then one
// thread per row runs along them, so the cost is O(H * W) whatever the window; non-finite values are
// counted instead of summed so that a NaN poisons only the windows that contain it. The per-cell and
// per-row arithmetic is the shared code of gramgan_patch.h.
#include <limits>
#include <tuple>

#include "cuda_common.cuh"
#include "cuda_ops.h"

namespace gramgan {
namespace cuda {
namespace {

template <typename scalar_t>
__global__ void grid_mask_kernel(const scalar_t* __restrict__ x, int64_t B, int C, int64_t H, int64_t W, int64_t k,
                                 int64_t oy, int64_t ox, double threshold, MaskOut<scalar_t> out) {
  const int64_t rows = (H + oy + k - 1) / k, cols = (W + ox + k - 1) / k, N = B * rows * cols, HW = H * W;
  for (int64_t n = global_thread(); n < N; n += grid_stride()) {
    const int64_t b = n / (rows * cols), ci = (n / cols) % rows, cj = n % cols;
    int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;
    cell_range(ci, k, oy, H, &y0, &y1);
    cell_range(cj, k, ox, W, &x0, &x1);
    out.write_cell(LumaImage<scalar_t>{x + b * C * HW, HW, W, C}, threshold, b, y0, y1, x0, x1);
  }
}

// Window sums of the luminance, its square and the count of non-finite values down every column
// (reflect padding): col[(b * H + y) * W + x] covers rows y - r .. y + r of column x.
template <typename scalar_t>
__global__ void column_sums_kernel(const scalar_t* __restrict__ x, int64_t B, int C, int64_t H, int64_t W, int64_t r,
                                   double* __restrict__ col1, double* __restrict__ col2, int* __restrict__ col_bad) {
  const int64_t N = B * W, HW = H * W;
  for (int64_t n = global_thread(); n < N; n += grid_stride()) {
    const int64_t b = n / W, xx = n % W;
    const scalar_t* column = x + b * C * HW + xx;
    double s1 = 0.0, s2 = 0.0;
    int bad = 0;
    auto add = [&](int64_t y, int sign) {
      window_add(luminance_at(column + reflect_index(y, H) * W, HW, C), sign, s1, s2, bad);
    };
    for (int64_t dy = -r; dy <= r; ++dy) add(dy, 1);
    for (int64_t y = 0; y < H; ++y) {
      if (y > 0) {
        add(y + r, 1);
        add(y - 1 - r, -1);
      }
      const int64_t q = (b * H + y) * W + xx;
      col1[q] = s1;
      col2[q] = s2;
      col_bad[q] = bad;
    }
  }
}

// Runs along every row over the column sums and writes the mask.
template <typename scalar_t>
__global__ void row_mask_kernel(const double* __restrict__ col1, const double* __restrict__ col2,
                                const int* __restrict__ col_bad, int64_t B, int64_t H, int64_t W, int64_t r,
                                int64_t window, double threshold, MaskOut<scalar_t> out) {
  const int64_t N = B * H;
  for (int64_t n = global_thread(); n < N; n += grid_stride()) {
    sliding_row(col1 + n * W, col2 + n * W, col_bad + n * W, W, r, window, threshold, out, n / H, n % H);
  }
}

template <typename scalar_t>
void launch_mask(const at::Tensor& x, int64_t k, double threshold, int64_t oy, int64_t ox, bool sliding, int64_t window,
                 const MaskOut<scalar_t>& out) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  if (B * H * W == 0) return;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  if (!sliding) {
    const int64_t cells = B * ((H + oy + k - 1) / k) * ((W + ox + k - 1) / k);
    GRAMGAN_LAUNCH(grid_mask_kernel<scalar_t>, grid_for(cells), kThreads, 0, stream)(
        x.data_ptr<scalar_t>(), B, static_cast<int>(C), H, W, k, oy, ox, threshold, out);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }
  const int64_t r = window / 2;
  at::Tensor col1 = at::empty({B, H, W}, x.options().dtype(at::kDouble));
  at::Tensor col2 = at::empty({B, H, W}, x.options().dtype(at::kDouble));
  at::Tensor col_bad = at::empty({B, H, W}, x.options().dtype(at::kInt));
  GRAMGAN_LAUNCH(column_sums_kernel<scalar_t>, grid_for(B * W), kThreads, 0, stream)(
      x.data_ptr<scalar_t>(), B, static_cast<int>(C), H, W, r, col1.data_ptr<double>(), col2.data_ptr<double>(),
      col_bad.data_ptr<int>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  GRAMGAN_LAUNCH(row_mask_kernel<scalar_t>, grid_for(B * H), kThreads, 0, stream)(
      col1.data_ptr<double>(), col2.data_ptr<double>(), col_bad.data_ptr<int>(), B, H, W, r, window, threshold, out);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// launch_mask for any dtype, as the shared entry points of gramgan_host.h call it.
// clang-format off: it would put the body on the parameters' last line
const auto launch_any_mask = [](const at::Tensor& x, int64_t k, double threshold, int64_t oy, int64_t ox, bool sliding,
                                int64_t window, const auto& out) {
  launch_mask(x, k, threshold, oy, ox, sliding, window, out);
};
// clang-format on

}  // namespace

at::Tensor texture_mask_cuda(const at::Tensor& x, int64_t k, double threshold, int64_t oy, int64_t ox,
                             c10::string_view mode, int64_t window) {
  const c10::cuda::CUDAGuard guard(x.device());
  return texture_mask_entry(x, k, threshold, oy, ox, mode, window, launch_any_mask);
}

std::tuple<at::Tensor, at::Tensor> mask_pair_cuda(const at::Tensor& sr, const at::Tensor& hr, int64_t k,
                                                  double threshold, int64_t oy, int64_t ox, c10::string_view mode,
                                                  int64_t window) {
  const c10::cuda::CUDAGuard guard(hr.device());
  return mask_pair_entry(sr, hr, k, threshold, oy, ox, mode, window, launch_any_mask);
}

at::Tensor mask_pair_backward_cuda(const at::Tensor& grad, const at::Tensor& hr, int64_t k, double threshold,
                                   int64_t oy, int64_t ox, c10::string_view mode, int64_t window) {
  const c10::cuda::CUDAGuard guard(hr.device());
  return mask_pair_backward_entry(grad, hr, k, threshold, oy, ox, mode, window, launch_any_mask);
}

}  // namespace cuda
}  // namespace gramgan
