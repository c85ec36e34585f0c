// CPU kernels of the sampled local texture loss (docs/ops.md, "Sampled candidates"): the local texture
// loss against candidates that are never stored, read from hr, its half-size image and the affine maps.
//
// Forward: threads split the (image, patch-row) strips; each strip samples the k rows of every candidate
// into a small buffer (K x C x k x W values, cache-resident), then computes the Grams of the strip's
// patches, the running argmin across candidates and the loss from it. Backward: every patch re-reads
// only its chosen candidate's patch from the sources and applies the local backward's formula. The
// sampling and per-patch arithmetic are the shared code of csrc/include/gramgan_patch.h (also what the
// CUDA kernels call).
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstring>
#include <tuple>
#include <vector>

#include "cpu_gram.h"

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
    return SampledCandidates<T, T>{hr.data_ptr<T>() + b * C * H * W, half.data_ptr<T>() + b * C * (H / 2) * (W / 2),
                                   thetas.data_ptr<T>() + b * J * 6, xs.data_ptr<T>(), ys.data_ptr<T>(), H, W,
                                   static_cast<int>(C), K};
  }
};

// Rows y0 .. y0 + K - 1 of every candidate of one image into strip, laid out (2 + J, C, K, W); points is
// scratch for W sample positions.
template <typename T, int K, int C>
void sample_strip(const SampledCandidates<T, T>& src, int64_t J, int64_t y0, T* strip, BilinearPoint<T>* points) {
  const int64_t H = src.H, W = src.W, HW = H * W, plane = K * W, half_W = W / 2, half_HW = (H / 2) * half_W;
  T* retiled = strip + C * plane;
  for (int c = 0; c < C; ++c) {
    for (int r = 0; r < K; ++r) {
      std::memcpy(strip + c * plane + r * W, src.hr + c * HW + (y0 + r) * W, W * sizeof(T));
      const T* half_row = src.half + c * half_HW + retiled_coordinate(y0 + r, K) * half_W;
      for (int64_t j = 0; j < W / K; ++j) {
        std::memcpy(retiled + c * plane + r * W + j * K, half_row + (j / 2) * K, K * sizeof(T));
      }
    }
  }
  for (int64_t w = 0; w < J; ++w) {
    const T* theta = src.thetas + w * 6;
    T* warped = strip + (2 + w) * C * plane;
    for (int r = 0; r < K; ++r) {
      const T yn = src.ys[y0 + r];
      for (int64_t x = 0; x < W; ++x) points[x] = warp_point(theta, src.xs[x], yn, H, W);
      for (int c = 0; c < C; ++c) {
        const T* image = src.hr + c * HW;
        T* out = warped + c * plane + r * W;
        for (int64_t x = 0; x < W; ++x) out[x] = bilinear_sample(image, W, points[x]);
      }
    }
  }
}

// The running argmin over the candidates of the n patches of a strip: ge (SR Grams) and grams (candidate
// m's at grams + m * P * n) in pairs layout with stride n; the loop over patches is the one that vectorises.
template <typename T, int C>
void select_in_strip(const T* ge, const T* grams, int64_t candidates, int64_t n, T beta, T* best, int32_t* index) {
  constexpr int P = pair_count<C>();
  for (int64_t m = 0; m < candidates; ++m) {
    const T* gc = grams + m * P * n;
    const int32_t mi = static_cast<int32_t>(m);
    for (int64_t j = 0; j < n; ++j) {
      const T key = selection_key(selection_score<C>(ge + j, grams + j, n, gc + j, n, beta));
      const bool better = improves(key, best[j], m == 0);
      best[j] = better ? key : best[j];
      index[j] = better ? mi : index[j];
    }
  }
}

template <typename T, int K, int C>
void sampled_forward_kernel(const SampledInputs& in, double gt_weight, int target, int criterion, at::Tensor& index,
                            at::Tensor& loss) {
  constexpr int P = pair_count<C>();
  const int64_t H = in.H, W = in.W, Hp = H / K, Wp = W / K, HW = H * W, NC = 2 + in.J;
  const int64_t plane = K * W, stride = C * plane;  // of the strip buffer
  const T* sp = in.sr.data_ptr<T>();
  int64_t* ip = index.data_ptr<int64_t>();
  T* lp = loss.data_ptr<T>();
  const T beta = static_cast<T>(gt_weight);
  at::parallel_for(0, in.B * Hp, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> strip(NC * stride), grams(NC * P * Wp), ge(P * Wp), best(Wp);
    std::vector<BilinearPoint<T>> points(W);
    std::vector<int32_t> idx(Wp);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / Hp, i = t % Hp;
      const T* sr_row = sp + b * C * HW + i * K * W;
      sample_strip<T, K, C>(in.image<T>(b, K), in.J, i * K, strip.data(), points.data());
      row_grams<T, K, C>(sp + b * C * HW, H, W, i, ge.data(), Wp, 1);
      for (int64_t m = 0; m < NC; ++m) row_grams<T, K, C>(strip.data() + m * stride, K, W, 0, grams.data() + m * P * Wp, Wp, 1);
      select_in_strip<T, C>(ge.data(), grams.data(), NC, Wp, beta, best.data(), idx.data());
      for (int64_t j = 0; j < Wp; ++j) {
        const int64_t m = idx[j];
        ip[t * Wp + j] = m;
        lp[t * Wp + j] = target == kTargetGram
                             ? gram_target_loss<C>(ge.data() + j, Wp, grams.data() + m * P * Wp + j, Wp, C, criterion)
                             : pixel_target_loss<T>(sr_row + j * K, HW, W, strip.data() + m * stride + j * K, plane, W,
                                                    C, K, criterion);
      }
    }
  });
}

template <typename T, int K, int C>
void sampled_backward_kernel(const SampledInputs& in, const at::Tensor& grad, const at::Tensor& index, int target,
                             int criterion, at::Tensor& dx) {
  const int64_t H = in.H, W = in.W, HW = H * W, NC = 2 + in.J;
  const T* sp = in.sr.data_ptr<T>();
  const int64_t* ip = index.data_ptr<int64_t>();
  const T* gp = grad.data_ptr<T>();
  T* dp = dx.data_ptr<T>();
  for_each_patch(in.B, H / K, W / K, [&](int64_t u, int64_t b, int64_t i, int64_t j) {
    const int64_t m = ip[u];
    TORCH_CHECK(m >= 0 && m < NC, "gramgan: saved index ", m, " out of range [0, ", NC, ")");
    const int64_t offset = b * C * HW + i * K * W + j * K;
    source_target_grad<C, RowLoops<T, K, C>>(sp + offset, HW, W, in.image<T>(b, K), m, i * K, j * K, C, K, target,
                                            criterion, gp[u], dp + offset);
  });
}

std::tuple<at::Tensor, at::Tensor> texture_loss_sampled_cpu(const at::Tensor& sr, const at::Tensor& hr,
                                                            const at::Tensor& hr_half, const at::Tensor& thetas,
                                                            int64_t k, double gt_weight, c10::string_view target,
                                                            c10::string_view criterion) {
  const SampledInputs in(sr, hr, hr_half, thetas, k);
  const int tg = parse_target(target), cr = parse_criterion(criterion);
  at::Tensor index = at::empty({in.B, in.H / k, in.W / k}, in.sr.options().dtype(at::kLong));
  at::Tensor loss = at::empty({in.B, in.H / k, in.W / k}, in.sr.options());
  dispatch_kernel(in.sr.scalar_type(), k, in.C, [&](auto t, auto kc, auto cc) {
    sampled_forward_kernel<decltype(t), decltype(kc)::value, decltype(cc)::value>(in, gt_weight, tg, cr, index, loss);
  });
  return {loss, index};
}

at::Tensor texture_loss_sampled_backward_cpu(const at::Tensor& grad_in, const at::Tensor& sr, const at::Tensor& hr,
                                             const at::Tensor& hr_half, const at::Tensor& thetas,
                                             const at::Tensor& index_in, int64_t k, c10::string_view target,
                                             c10::string_view criterion) {
  const SampledInputs in(sr, hr, hr_half, thetas, k);
  check_backward_args(grad_in, index_in, sr, k);
  const int tg = parse_target(target), cr = parse_criterion(criterion);
  const at::Tensor grad = grad_in.to(in.sr.scalar_type()).contiguous(), index = index_in.contiguous();
  at::Tensor dx = at::empty_like(in.sr);
  dispatch_kernel(in.sr.scalar_type(), k, in.C, [&](auto t, auto kc, auto cc) {
    sampled_backward_kernel<decltype(t), decltype(kc)::value, decltype(cc)::value>(in, grad, index, tg, cr, dx);
  });
  return dx.to(sr.scalar_type());
}

}  // namespace
}  // namespace cpu
}  // namespace gramgan

TORCH_LIBRARY_IMPL(gramgan, CPU, m) {
  m.impl("texture_loss_sampled", &gramgan::cpu::texture_loss_sampled_cpu);
  m.impl("texture_loss_sampled_backward", &gramgan::cpu::texture_loss_sampled_backward_cpu);
}
