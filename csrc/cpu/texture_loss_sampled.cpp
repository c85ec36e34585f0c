// CPU kernel of the sampled local texture loss (docs/ops.md, "Sampled candidates"): the local texture
// loss against candidates that are never stored, read from hr, its half-size image and the affine maps.
// The kernels are texture_loss_sampled_kernels.h. The sampling is the shared code of gramgan_patch.h (what
// the CUDA kernels call) or its vector version (warp_sampler_kernel.h): both agree to the bit with
// affine_grid + grid_sample on the CPU (tests/ops/test_sampled.py, tests/ops/test_cpu_lanes.py).
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cstring>
#include <tuple>
#include <type_traits>
#include <vector>

#include "cpu_common.h"

namespace gramgan {
namespace cpu {
namespace {

// The inputs of one call in the computation type (float, or double for float64), contiguous, with the
// normalised pixel coordinates of affine_grid.
struct SampledInputs {
  at::Tensor sr, hr, half, thetas, xs, ys;
  int64_t B, C, H, W, J;

  SampledInputs(const at::Tensor& sr_in, const at::Tensor& hr_in, const at::Tensor& half_in,
                const at::Tensor& thetas_in, int64_t k) {
    check_sampled(sr_in, hr_in, half_in, thetas_in, k);
    const at::ScalarType compute = acc_scalar_type(sr_in.scalar_type());
    sr = sr_in.to(compute).contiguous();
    hr = hr_in.to(compute).contiguous();
    half = half_in.to(compute).contiguous();
    thetas = thetas_in.to(compute).contiguous();
    B = sr.size(0), C = sr.size(1), H = sr.size(2), W = sr.size(3), J = thetas.size(1);
    xs = affine_base_coordinates(W, sr.options());
    ys = affine_base_coordinates(H, sr.options());
  }

  // The candidates of image b.
  template <typename T>
  SampledCandidates<T, T> image(int64_t b, int K) const {
    return SampledCandidates<T, T>{hr.data_ptr<T>() + b * C * H * W,
                                   half.data_ptr<T>() + b * C * (H / 2) * (W / 2),
                                   thetas.data_ptr<T>() + b * J * 6,
                                   xs.data_ptr<T>(),
                                   ys.data_ptr<T>(),
                                   H,
                                   W,
                                   static_cast<int>(C),
                                   K};
  }
};

// x * theta[0] and x * theta[3] of every column's normalised x and every warp of one image, (J, 2, W): the
// products the vector samplers add to, the same for every row of the image.
template <typename T>
void warp_column_products(const SampledCandidates<T, T>& src, int64_t J, T* out) {
  for (int64_t w = 0; w < J; ++w, out += 2 * src.W) {
    const T* theta = src.thetas + w * 6;
    for (int64_t x = 0; x < src.W; ++x) {
      out[x] = src.xs[x] * theta[0];
      out[src.W + x] = src.xs[x] * theta[3];
    }
  }
}

// Columns [x_begin, x_end) of row y of the warp by theta into out (channel c at out[c * plane + x]): the
// shared scalar sampling code. Never inlined, so that it keeps the generic code's rounding wherever it is
// called from (inlined into a vector target's code, its products could be fused).
template <typename T>
__attribute__((noinline)) void sample_warp_row(const SampledCandidates<T, T>& src, const T* theta, int64_t y,
                                               int64_t x_begin, int64_t x_end, int64_t plane, T* out) {
  for (int64_t x = x_begin; x < x_end; ++x) {
    const BilinearPoint<T> p = warp_point(theta, src.xs[x], src.ys[y], src.H, src.W);
    for (int c = 0; c < src.C; ++c) out[c * plane + x] = bilinear_sample(src.hr + c * src.H * src.W, src.W, p);
  }
}

// Outputs of the forward: per-patch index and loss, and the residual (residual_shape).
struct SampledOutputs {
  at::Tensor index, loss, residual;
};

#define GRAMGAN_TARGET_KERNELS "texture_loss_sampled_kernels.h"
#include "cpu_targets.h"

std::tuple<at::Tensor, at::Tensor, at::Tensor> texture_loss_sampled_cpu(const at::Tensor& sr, const at::Tensor& hr,
                                                                        const at::Tensor& hr_half,
                                                                        const at::Tensor& thetas, int64_t k,
                                                                        double gt_weight, c10::string_view target,
                                                                        c10::string_view criterion) {
  const SampledInputs in(sr, hr, hr_half, thetas, k);
  const int tg = parse_target(target), cr = parse_criterion(criterion);
  SampledOutputs out{at::empty({in.B, in.H / k, in.W / k}, in.sr.options().dtype(at::kLong)),
                     at::empty({in.B, in.H / k, in.W / k}, in.sr.options()),
                     at::empty(residual_shape(in.sr, k, tg), in.sr.options())};
  dispatch_kernel(in.sr.scalar_type(), k, in.C, [&](auto t, auto kc, auto cc) {
    constexpr int K = decltype(kc)::value, C = decltype(cc)::value;
    GRAMGAN_ON_VECTOR_TARGET(sampled_forward_strips<decltype(t), K, C>(in, gt_weight, tg, cr, out));
  });
  return {out.loss, out.index, out.residual};
}

}  // namespace
}  // namespace cpu
}  // namespace gramgan

TORCH_LIBRARY_IMPL(gramgan, CPU, m) { m.impl("texture_loss_sampled", &gramgan::cpu::texture_loss_sampled_cpu); }
