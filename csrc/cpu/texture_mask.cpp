// CPU kernels of gramgan::texture_mask and gramgan::mask_pair (SPEC §1, Eq. 10).
//
// Statistics are in float64 as in the reference: the threshold 0.005 on a standard deviation is a
// variance of 2.5e-5, which float32 sums of values near 0.5 cannot resolve. Grid mode is two-pass per
// (clipped) cell; sliding mode keeps running window sums down the columns, then along the rows, so it
// costs O(H * W) whatever the window, and counts non-finite values so that NaN poisons only the
// windows that contain it.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#include "gramgan_common.h"
#include "gramgan_host.h"

namespace gramgan {
namespace cpu {
namespace {

// Writes the mask value of pixel (y, x) of image b, and with a pair the masked SR and HR values.
template <typename scalar_t>
struct MaskWriter {
  scalar_t* mask;           // (B, 1, H, W)
  const scalar_t* sr;       // (B, C, H, W) or nullptr
  const scalar_t* hr;
  scalar_t* sr_out;
  scalar_t* hr_out;
  int64_t C, H, W;

  void write(int64_t b, int64_t y, int64_t x, scalar_t m) const {
    const int64_t pixel = y * W + x;
    mask[b * H * W + pixel] = m;
    if (sr == nullptr) return;
    const float mf = static_cast<float>(m);
    for (int64_t c = 0; c < C; ++c) {
      const int64_t q = (b * C + c) * H * W + pixel;
      sr_out[q] = static_cast<scalar_t>(static_cast<acc_type_t<scalar_t>>(sr[q]) * mf);
      hr_out[q] = static_cast<scalar_t>(static_cast<acc_type_t<scalar_t>>(hr[q]) * mf);
    }
  }
};

template <typename scalar_t>
void grid_mask_kernel(const at::Tensor& x, int64_t k, double threshold, int64_t oy, int64_t ox,
                      const MaskWriter<scalar_t>& out) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t cell_rows = (H + oy + k - 1) / k, cell_cols = (W + ox + k - 1) / k;
  const scalar_t* xp = x.data_ptr<scalar_t>();
  at::parallel_for(0, B * cell_rows, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> luma(k * W);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / cell_rows, ci = t % cell_rows;
      const int64_t y0 = std::max<int64_t>(ci * k - oy, 0), y1 = std::min<int64_t>(ci * k - oy + k, H);
      const scalar_t* image = xp + b * C * H * W;
      for (int64_t y = y0; y < y1; ++y) {
        for (int64_t xx = 0; xx < W; ++xx) {
          luma[(y - y0) * W + xx] = luminance_at(image + y * W + xx, H * W, static_cast<int>(C));
        }
      }
      for (int64_t cj = 0; cj < cell_cols; ++cj) {
        const int64_t x0 = std::max<int64_t>(cj * k - ox, 0), x1 = std::min<int64_t>(cj * k - ox + k, W);
        const int64_t n = (y1 - y0) * (x1 - x0);
        double sum = 0.0;
        for (int64_t y = y0; y < y1; ++y) {
          for (int64_t xx = x0; xx < x1; ++xx) sum += luma[(y - y0) * W + xx];
        }
        const double mean = sum / static_cast<double>(n);
        double squares = 0.0;
        for (int64_t y = y0; y < y1; ++y) {
          for (int64_t xx = x0; xx < x1; ++xx) {
            const double d = luma[(y - y0) * W + xx] - mean;
            squares += d * d;
          }
        }
        const scalar_t m = mask_value<scalar_t>(unbiased_std(squares, n), threshold);
        for (int64_t y = y0; y < y1; ++y) {
          for (int64_t xx = x0; xx < x1; ++xx) out.write(b, y, xx, m);
        }
      }
    }
  });
}

// Window sums of the luminance down every column (reflect padding), then along every row.
template <typename scalar_t>
void sliding_mask_kernel(const at::Tensor& x, int64_t window, double threshold, const MaskWriter<scalar_t>& out) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), r = window / 2;
  const scalar_t* xp = x.data_ptr<scalar_t>();
  // Column window sums of Y, Y^2 and of the count of non-finite values, (B, H, W).
  std::vector<double> col1(B * H * W), col2(B * H * W);
  std::vector<int32_t> col_bad(B * H * W);
  std::vector<double> luma_all(B * H * W);
  at::parallel_for(0, B * H, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / H, y = t % H;
      const scalar_t* row = xp + (b * C * H + y) * W;
      for (int64_t xx = 0; xx < W; ++xx) luma_all[t * W + xx] = luminance_at(row + xx, H * W, static_cast<int>(C));
    }
  });
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> s1(W), s2(W);
    std::vector<int32_t> bad(W);
    for (int64_t b = begin; b < end; ++b) {
      const double* luma = luma_all.data() + b * H * W;
      auto add_row = [&](int64_t y, int sign) {
        const double* row = luma + reflect_index(y, H) * W;
        for (int64_t xx = 0; xx < W; ++xx) {
          const double v = row[xx];
          const bool finite = is_finite(v);
          const double f = finite ? v : 0.0;
          s1[xx] += sign * f;
          s2[xx] += sign * (f * f);
          bad[xx] += sign * (finite ? 0 : 1);
        }
      };
      std::fill(s1.begin(), s1.end(), 0.0);
      std::fill(s2.begin(), s2.end(), 0.0);
      std::fill(bad.begin(), bad.end(), 0);
      for (int64_t dy = -r; dy <= r; ++dy) add_row(dy, 1);
      for (int64_t y = 0; y < H; ++y) {
        if (y > 0) {
          add_row(y + r, 1);
          add_row(y - 1 - r, -1);
        }
        const int64_t q = (b * H + y) * W;
        std::copy(s1.begin(), s1.end(), col1.begin() + q);
        std::copy(s2.begin(), s2.end(), col2.begin() + q);
        std::copy(bad.begin(), bad.end(), col_bad.begin() + q);
      }
    }
  });
  at::parallel_for(0, B * H, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / H, y = t % H;
      const double* c1 = col1.data() + t * W;
      const double* c2 = col2.data() + t * W;
      const int32_t* cb = col_bad.data() + t * W;
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
        const double std_dev = bad == 0 ? window_std(s1, s2, window * window)
                                        : std::numeric_limits<double>::quiet_NaN();
        out.write(b, y, xx, mask_value<scalar_t>(std_dev, threshold));
      }
    }
  });
}

template <typename scalar_t>
void mask_dispatch(const at::Tensor& x, int64_t k, double threshold, int64_t oy, int64_t ox, bool sliding,
                   int64_t window, const MaskWriter<scalar_t>& out) {
  if (sliding) {
    sliding_mask_kernel<scalar_t>(x, window, threshold, out);
  } else {
    grid_mask_kernel<scalar_t>(x, k, threshold, oy, ox, out);
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

at::Tensor texture_mask_cpu(const at::Tensor& x_in, int64_t k, double threshold, int64_t oy, int64_t ox,
                            c10::string_view mode, int64_t window) {
  const bool sliding = parse_sliding(mode);
  check_mask_args(x_in, k, oy, ox, sliding, window);
  const at::Tensor x = x_in.contiguous();
  at::Tensor mask = at::empty({x.size(0), 1, x.size(2), x.size(3)}, x.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gramgan_texture_mask_cpu", [&] {
    const MaskWriter<scalar_t> out{mask.data_ptr<scalar_t>(), nullptr, nullptr, nullptr, nullptr,
                                   x.size(1), x.size(2), x.size(3)};
    mask_dispatch<scalar_t>(x, k, threshold, oy, ox, sliding, window, out);
  });
  return mask;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> mask_pair_cpu(const at::Tensor& sr_in, const at::Tensor& hr_in,
                                                             int64_t k, double threshold, int64_t oy, int64_t ox,
                                                             c10::string_view mode, int64_t window) {
  const bool sliding = parse_sliding(mode);
  check_mask_args(hr_in, k, oy, ox, sliding, window);
  check_pair(hr_in, sr_in, "hr", "sr");
  TORCH_CHECK(sr_in.sizes() == hr_in.sizes(), "gramgan: sr ", sr_in.sizes(), " and hr ", hr_in.sizes(),
              " must have the same shape");
  const at::Tensor sr = sr_in.contiguous(), hr = hr_in.contiguous();
  at::Tensor mask = at::empty({hr.size(0), 1, hr.size(2), hr.size(3)}, hr.options());
  at::Tensor sr_out = at::empty_like(sr), hr_out = at::empty_like(hr);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, hr.scalar_type(), "gramgan_mask_pair_cpu", [&] {
    const MaskWriter<scalar_t> out{mask.data_ptr<scalar_t>(), sr.data_ptr<scalar_t>(), hr.data_ptr<scalar_t>(),
                                   sr_out.data_ptr<scalar_t>(), hr_out.data_ptr<scalar_t>(),
                                   hr.size(1), hr.size(2), hr.size(3)};
    mask_dispatch<scalar_t>(hr, k, threshold, oy, ox, sliding, window, out);
  });
  return {sr_out, hr_out, mask};
}

}  // namespace
}  // namespace cpu
}  // namespace gramgan

TORCH_LIBRARY_IMPL(gramgan, CPU, m) {
  m.impl("texture_mask", &gramgan::cpu::texture_mask_cpu);
  m.impl("mask_pair", &gramgan::cpu::mask_pair_cpu);
}
