// CPU kernels of gramgan::texture_mask, mask_pair and mask_pair_backward (docs/ops.md).
//
// Statistics are in float64 as in the reference (a std threshold of 0.005 is a variance of 2.5e-5, which
// float32 sums of values near 0.5 cannot resolve). Grid mode is two-pass per (clipped) cell; sliding mode
// keeps running window sums down the columns, then along the rows: O(H * W) whatever the window. The
// per-cell and per-row arithmetic is the shared code of gramgan_patch.h.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>
#include <vector>

#include "gramgan_host.h"
#include "gramgan_patch.h"

namespace gramgan {
namespace cpu {
namespace {

template <typename scalar_t>
void grid_mask_kernel(const at::Tensor& x, int64_t k, double threshold, int64_t oy, int64_t ox,
                      const MaskOut<scalar_t>& out) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t cell_rows = (H + oy + k - 1) / k, cell_cols = (W + ox + k - 1) / k;
  const scalar_t* xp = x.data_ptr<scalar_t>();
  at::parallel_for(0, B * cell_rows, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> luma(k * W);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / cell_rows, ci = t % cell_rows;
      int64_t y0 = 0, y1 = 0;
      cell_range(ci, k, oy, H, &y0, &y1);
      const LumaImage<scalar_t> image{xp + b * C * H * W, H * W, W, static_cast<int>(C)};
      for (int64_t y = y0; y < y1; ++y) {
        for (int64_t xx = 0; xx < W; ++xx) luma[(y - y0) * W + xx] = image.at(y, xx);
      }
      const LumaRows rows{luma.data(), y0, W};
      for (int64_t cj = 0; cj < cell_cols; ++cj) {
        int64_t x0 = 0, x1 = 0;
        cell_range(cj, k, ox, W, &x0, &x1);
        out.write_cell(rows, threshold, b, y0, y1, x0, x1);
      }
    }
  });
}

// Window sums of the luminance down every column (reflect padding), then along every row.
template <typename scalar_t>
void sliding_mask_kernel(const at::Tensor& x, int64_t window, double threshold, const MaskOut<scalar_t>& out) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), r = window / 2;
  const scalar_t* xp = x.data_ptr<scalar_t>();
  // Column window sums of Y, Y^2 and of the count of non-finite values, (B, H, W).
  std::vector<double> col1(B * H * W), col2(B * H * W), luma_all(B * H * W);
  std::vector<int32_t> col_bad(B * H * W);
  at::parallel_for(0, B * H, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / H, y = t % H;
      const LumaImage<scalar_t> image{xp + b * C * H * W, H * W, W, static_cast<int>(C)};
      for (int64_t xx = 0; xx < W; ++xx) luma_all[t * W + xx] = image.at(y, xx);
    }
  });
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      // Row y of the column sums: row y - 1's, plus image row y + r, minus image row y - 1 - r.
      auto add_row = [&](int64_t y, int64_t source, int sign) {
        const double* row = luma_all.data() + (b * H + reflect_index(source, H)) * W;
        const int64_t q = (b * H + y) * W;
        for (int64_t xx = 0; xx < W; ++xx) window_add(row[xx], sign, col1[q + xx], col2[q + xx], col_bad[q + xx]);
      };
      for (int64_t dy = -r; dy <= r; ++dy) add_row(0, dy, 1);
      for (int64_t y = 1; y < H; ++y) {
        const int64_t q = (b * H + y) * W;
        std::copy_n(col1.begin() + q - W, W, col1.begin() + q);
        std::copy_n(col2.begin() + q - W, W, col2.begin() + q);
        std::copy_n(col_bad.begin() + q - W, W, col_bad.begin() + q);
        add_row(y, y + r, 1);
        add_row(y, y - 1 - r, -1);
      }
    }
  });
  at::parallel_for(0, B * H, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      sliding_row(col1.data() + t * W, col2.data() + t * W, col_bad.data() + t * W, W, r, window, threshold, out, t / H,
                  t % H);
    }
  });
}

// The mask kernels of this device, for the shared entry points of gramgan_host.h.
const auto launch_mask = [](const at::Tensor& x, int64_t k, double threshold, int64_t oy, int64_t ox, bool sliding,
                            int64_t window, const auto& out) {
  using scalar_t = std::remove_pointer_t<decltype(out.mask)>;
  if (sliding) {
    sliding_mask_kernel<scalar_t>(x, window, threshold, out);
  } else {
    grid_mask_kernel<scalar_t>(x, k, threshold, oy, ox, out);
  }
};

at::Tensor texture_mask_cpu(const at::Tensor& x, int64_t k, double threshold, int64_t oy, int64_t ox,
                            c10::string_view mode, int64_t window) {
  return texture_mask_entry(x, k, threshold, oy, ox, mode, window, launch_mask);
}

std::tuple<at::Tensor, at::Tensor> mask_pair_cpu(const at::Tensor& sr, const at::Tensor& hr, int64_t k,
                                                 double threshold, int64_t oy, int64_t ox, c10::string_view mode,
                                                 int64_t window) {
  return mask_pair_entry(sr, hr, k, threshold, oy, ox, mode, window, launch_mask);
}

at::Tensor mask_pair_backward_cpu(const at::Tensor& grad, const at::Tensor& hr, int64_t k, double threshold, int64_t oy,
                                  int64_t ox, c10::string_view mode, int64_t window) {
  return mask_pair_backward_entry(grad, hr, k, threshold, oy, ox, mode, window, launch_mask);
}

}  // namespace
}  // namespace cpu
}  // namespace gramgan

TORCH_LIBRARY_IMPL(gramgan, CPU, m) {
  m.impl("texture_mask", &gramgan::cpu::texture_mask_cpu);
  m.impl("mask_pair", &gramgan::cpu::mask_pair_cpu);
  m.impl("mask_pair_backward", &gramgan::cpu::mask_pair_backward_cpu);
}
