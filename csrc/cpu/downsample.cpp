// CPU kernel of gramgan::downsample_half: MATLAB's bicubic imresize(x, 0.5) with the 8-tap filter of
// csrc/include/gramgan_resize.h, in two separable passes (rows, then columns) run output row by output
// row, so that the filtered row stays in L1; planes run in parallel. Interior columns are a fixed-weight stride-2
// filter, vectorised over the even and odd pixels of the row (compiled per vector target,
// downsample_kernels.h); only the pixels at each border go through the mirrored index.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "cpu_common.h"
#include "gramgan_resize.h"

namespace gramgan {
namespace cpu {
namespace {

#define GRAMGAN_TARGET_KERNELS "downsample_kernels.h"
#include "cpu_targets.h"

at::Tensor downsample_half_cpu(const at::Tensor& x_in) {
  check_image(x_in, "x", 2);  // any C of the kernels, even H and W
  const at::ScalarType compute = acc_scalar_type(x_in.scalar_type());
  const at::Tensor x = x_in.to(compute).contiguous();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  at::Tensor out = at::empty({B, C, H / 2, W / 2}, x.options());
  AT_DISPATCH_FLOATING_TYPES(compute, "gramgan_downsample_half_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, B * C, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> row(2 * W);  // one filtered row, then that row split in two
      for (int64_t plane = begin; plane < end; ++plane) {
        GRAMGAN_ON_VECTOR_TARGET(
            downsample_plane(xp + plane * H * W, op + plane * (H / 2) * (W / 2), row.data(), H, W));
      }
    });
  });
  return out;
}

}  // namespace
}  // namespace cpu
}  // namespace gramgan

TORCH_LIBRARY_IMPL(gramgan, CPU, m) { m.impl("downsample_half", &gramgan::cpu::downsample_half_cpu); }
