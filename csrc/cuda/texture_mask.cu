// CUDA kernels of gramgan::texture_mask and gramgan::mask_pair (SPEC §1, Eq. 10).
//
// Statistics in float64, as the reference. Grid mode: one thread per (clipped) cell, two passes over
// its few pixels. Sliding mode: one thread per column keeps running window sums down the rows, then one
// thread per row runs along them, so the cost is O(H * W) whatever the window; non-finite values are
// counted instead of summed so that a NaN poisons only the windows that contain it.
#include <limits>
#include <tuple>

#include "cuda_common.cuh"
#include "cuda_ops.h"

namespace gramgan {
namespace cuda {
namespace {

// Where the mask (and with a pair, the masked images) go.
template <typename scalar_t>
struct MaskOut {
  scalar_t* mask;      // (B, 1, H, W)
  const scalar_t* sr;  // (B, C, H, W), nullptr without a pair
  const scalar_t* hr;
  scalar_t* sr_out;
  scalar_t* hr_out;
  int C;
  int64_t H, W;

  __device__ __forceinline__ void write(int64_t b, int64_t y, int64_t x, scalar_t m) const {
    const int64_t pixel = y * W + x;
    mask[b * H * W + pixel] = m;
    if (sr == nullptr) return;
    using acc_t = acc_type_t<scalar_t>;
    const acc_t mf = static_cast<acc_t>(m);
    for (int c = 0; c < C; ++c) {
      const int64_t q = (b * C + c) * H * W + pixel;
      sr_out[q] = static_cast<scalar_t>(static_cast<acc_t>(sr[q]) * mf);
      hr_out[q] = static_cast<scalar_t>(static_cast<acc_t>(hr[q]) * mf);
    }
  }
};

template <typename scalar_t>
__global__ void grid_mask_kernel(const scalar_t* __restrict__ x, int64_t B, int C, int64_t H, int64_t W, int64_t k,
                                 int64_t oy, int64_t ox, double threshold, MaskOut<scalar_t> out) {
  const int64_t rows = (H + oy + k - 1) / k, cols = (W + ox + k - 1) / k, N = B * rows * cols, HW = H * W;
  for (int64_t n = global_thread(); n < N; n += grid_stride()) {
    const int64_t b = n / (rows * cols), ci = (n / cols) % rows, cj = n % cols;
    const int64_t y0 = ci * k - oy < 0 ? 0 : ci * k - oy, y1 = ci * k - oy + k > H ? H : ci * k - oy + k;
    const int64_t x0 = cj * k - ox < 0 ? 0 : cj * k - ox, x1 = cj * k - ox + k > W ? W : cj * k - ox + k;
    const scalar_t* image = x + b * C * HW;
    double sum = 0.0;
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t xx = x0; xx < x1; ++xx) sum += luminance_at(image + y * W + xx, HW, C);
    }
    const int64_t count = (y1 - y0) * (x1 - x0);
    const double mean = sum / static_cast<double>(count);
    double squares = 0.0;
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t xx = x0; xx < x1; ++xx) {
        const double d = luminance_at(image + y * W + xx, HW, C) - mean;
        squares += d * d;
      }
    }
    const scalar_t m = mask_value<scalar_t>(unbiased_std(squares, count), threshold);
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t xx = x0; xx < x1; ++xx) out.write(b, y, xx, m);
    }
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
      const double v = luminance_at(column + reflect_index(y, H) * W, HW, C);
      const bool finite = is_finite(v);
      const double f = finite ? v : 0.0;
      s1 += sign * f;
      s2 += sign * (f * f);
      bad += finite ? 0 : sign;
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
    const int64_t b = n / H, y = n % H;
    const double* c1 = col1 + n * W;
    const double* c2 = col2 + n * W;
    const int* cb = col_bad + n * W;
    double s1 = 0.0, s2 = 0.0;
    int64_t bad = 0;
    for (int64_t dx = -r; dx <= r; ++dx) {
      const int64_t q = reflect_index(dx, W);
      s1 += c1[q];
      s2 += c2[q];
      bad += cb[q];
    }
    for (int64_t xx = 0; xx < W; ++xx) {
      if (xx > 0) {
        const int64_t in = reflect_index(xx + r, W), old = reflect_index(xx - 1 - r, W);
        s1 += c1[in] - c1[old];
        s2 += c2[in] - c2[old];
        bad += cb[in] - cb[old];
      }
      const double std_dev =
          bad == 0 ? window_std(s1, s2, window * window) : std::numeric_limits<double>::quiet_NaN();
      out.write(b, y, xx, mask_value<scalar_t>(std_dev, threshold));
    }
  }
}

void check_mask_args(const at::Tensor& x, int64_t k, int64_t oy, int64_t ox, bool sliding, int64_t window) {
  check_image(x, "x", 0);
  TORCH_CHECK(k >= 1 && oy >= 0 && oy < k && ox >= 0 && ox < k, "gramgan: offset (", oy, ", ", ox,
              ") must lie in [0, k)^2 with k=", k);
  if (sliding) {
    TORCH_CHECK(window >= 1 && window % 2 == 1, "gramgan: window must be an odd positive int, got ", window);
    TORCH_CHECK(window / 2 < x.size(2) && window / 2 < x.size(3), "gramgan: window=", window,
                " needs reflect padding smaller than H and W of ", x.sizes());
  }
}

template <typename scalar_t>
void launch_mask(const at::Tensor& x, int64_t k, double threshold, int64_t oy, int64_t ox, bool sliding,
                 int64_t window, const MaskOut<scalar_t>& out) {
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

}  // namespace

at::Tensor texture_mask_cuda(const at::Tensor& x_in, int64_t k, double threshold, int64_t oy, int64_t ox,
                             c10::string_view mode, int64_t window) {
  const bool sliding = parse_sliding(mode);
  check_mask_args(x_in, k, oy, ox, sliding, window);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  at::Tensor mask = at::empty({x.size(0), 1, x.size(2), x.size(3)}, x.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gramgan_texture_mask_cuda", [&] {
    const MaskOut<scalar_t> out{mask.data_ptr<scalar_t>(), nullptr, nullptr, nullptr, nullptr,
                                static_cast<int>(x.size(1)), x.size(2), x.size(3)};
    launch_mask<scalar_t>(x, k, threshold, oy, ox, sliding, window, out);
  });
  return mask;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> mask_pair_cuda(const at::Tensor& sr_in, const at::Tensor& hr_in,
                                                              int64_t k, double threshold, int64_t oy, int64_t ox,
                                                              c10::string_view mode, int64_t window) {
  const bool sliding = parse_sliding(mode);
  check_mask_args(hr_in, k, oy, ox, sliding, window);
  check_pair(hr_in, sr_in, "hr", "sr");
  TORCH_CHECK(sr_in.sizes() == hr_in.sizes(), "gramgan: sr ", sr_in.sizes(), " and hr ", hr_in.sizes(),
              " must have the same shape");
  const c10::cuda::CUDAGuard guard(hr_in.device());
  const at::Tensor sr = sr_in.contiguous(), hr = hr_in.contiguous();
  at::Tensor mask = at::empty({hr.size(0), 1, hr.size(2), hr.size(3)}, hr.options());
  at::Tensor sr_out = at::empty_like(sr), hr_out = at::empty_like(hr);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, hr.scalar_type(), "gramgan_mask_pair_cuda", [&] {
    const MaskOut<scalar_t> out{mask.data_ptr<scalar_t>(), sr.data_ptr<scalar_t>(), hr.data_ptr<scalar_t>(),
                                sr_out.data_ptr<scalar_t>(), hr_out.data_ptr<scalar_t>(),
                                static_cast<int>(hr.size(1)), hr.size(2), hr.size(3)};
    launch_mask<scalar_t>(hr, k, threshold, oy, ox, sliding, window, out);
  });
  return {sr_out, hr_out, mask};
}

}  // namespace cuda
}  // namespace gramgan
