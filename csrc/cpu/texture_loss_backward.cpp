// CPU kernels of the texture losses' backward (docs/ops.md): the local and sampled scope from SR and
// the forward's residual (texture_loss_residual_backward), the global scope from the saved index and the
// candidate images it reads in place (texture_loss_global_backward). float32 Gram targets run strips
// of eight patches per SIMD value (cpu_lanes.h), everything else a patch at a time.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstring>
#include <type_traits>
#include <utility>

#include "cpu_gram.h"
#include "cpu_lanes.h"

namespace gramgan {
namespace cpu {
namespace {

using lanes::F8;
using lanes::image_strip;
using lanes::kLanes;
using lanes::OutStrip;
using lanes::Strip;
using lanes::strip_valid;

// Backward of either scope: gradient of sum(grad * loss) with respect to sr, from the saved index.
// locate(b, i, j, m, &cH, &cW) returns the chosen candidate m's patch for SR patch (b, i, j), from a
// (C, cH, cW) image; m must lie in [0, count).
template <typename T, int K, int C, typename Locate>
void backward_kernel(const at::Tensor& grad, const at::Tensor& sr, const at::Tensor& index, at::Tensor& dx,
                     int64_t count, const Locate& locate, int target, int criterion) {
  const int64_t B = sr.size(0), H = sr.size(2), W = sr.size(3);
  const T* sp = sr.data_ptr<T>();
  const int64_t* ip = index.data_ptr<int64_t>();
  const T* gp = grad.data_ptr<T>();
  T* dp = dx.data_ptr<T>();
  for_each_patch(B, H / K, W / K, [&](int64_t u, int64_t b, int64_t i, int64_t j) {
    const int64_t m = ip[u];
    TORCH_CHECK(m >= 0 && m < count, "gramgan: saved index ", m, " out of range [0, ", count, ")");
    int64_t cH = H, cW = W;
    const T* c = locate(b, i, j, m, &cH, &cW);
    const int64_t offset = b * C * H * W + i * K * W + j * K;
    patch_target_grad<C, RowLoops<T, K, C>>(sp + offset, H * W, W, c, cH * cW, cW, C, K, target, criterion, gp[u],
                                            dp + offset);
  });
}

// Index of pair (a, b), a <= b, in the pairs layout of C channels.
template <int C>
constexpr int pair_index(int a, int b) {
  return a > b ? pair_index<C>(b, a) : a * C - a * (a - 1) / 2 + (b - a);
}

// Pixel vector t of every row of the strip: out_u = D_p x_u, D_p the symmetric matrix (pairs D,
// lanes = patches) of the patch p that pixel u belongs to.
template <int K, int C, int t>
inline void apply_strip_vector(const F8* D, const Strip& x, const OutStrip& out) {
  constexpr int P = pair_count<C>();
  F8 E[P];
  for (int q = 0; q < P; ++q) E[q] = lanes::patch_to_pixels<K, t>(D[q]);
  GRAMGAN_LANES_UNROLL
  for (int r = 0; r < K; ++r) {
    F8 v[C];
    for (int c = 0; c < C; ++c) v[c] = lanes::load8(x.p + c * x.HW + r * x.W + kLanes * t);
    GRAMGAN_LANES_UNROLL
    for (int a = 0; a < C; ++a) {
      F8 o = F8{};
      GRAMGAN_LANES_UNROLL
      for (int c = 0; c < C; ++c) o += E[pair_index<C>(a, c)] * v[c];
      lanes::store8(out.p + a * out.HW + r * out.W + kLanes * t, o);
    }
  }
}

template <int K, int C, int... ts>
inline void apply_strip(const F8* D, const Strip& x, const OutStrip& out, std::integer_sequence<int, ts...>) {
  (apply_strip_vector<K, C, ts>(D, x, out), ...);
}

// One strip's Gram-target gradient: from the residual R = Ge - Gc of its 8 patches (pairs, lanes = patches)
// and their upstream gradients, D = g criterion'(R) (2 / K^2) / C^2 per lane, then dx = D x a pixel vector
// at a time into the strip's place in dx. x is the strip of SR (zero-padded past `valid` patches); a strip
// that is not whole goes through out_pad.
template <int K, int C>
inline void write_strip_gradient(const F8* R, const F8& g_up, int criterion, const Strip& x, int valid, float* dx_strip,
                                 int64_t HW, int64_t W, float* out_pad) {
  constexpr int P = pair_count<C>();
  constexpr int64_t SW = kLanes * K;  // width of a copied strip
  const F8 scale = g_up / lanes::splat(C * C) * lanes::splat(2.0f / static_cast<float>(K * K));
  F8 D[P];
  for (int q = 0; q < P; ++q) {
    const F8 d = R[q], one = lanes::splat(1.0f);
    const F8 slope = criterion == kCriterionMse ? lanes::splat(2.0f) * d : (d > F8{} ? one : (d < F8{} ? -one : F8{}));
    D[q] = scale * slope;
  }
  const OutStrip out = valid == kLanes ? OutStrip{dx_strip, HW, W} : OutStrip{out_pad, K * SW, SW};
  apply_strip<K, C>(D, x, out, std::make_integer_sequence<int, K>{});
  if (valid == kLanes) return;
  for (int ch = 0; ch < C; ++ch) {
    for (int r = 0; r < K; ++r) {
      std::memcpy(dx_strip + ch * HW + r * W, out_pad + (ch * K + r) * SW, sizeof(float) * valid * K);
    }
  }
}

// Runs strip(b, i, g, valid, u0, x, x_pad, out_pad) under run_simd for every strip of 8 patches of sr
// (x: the strip of SR, zero-padded past `valid` patches; u0: the flat index of its first patch), one
// task per (image, patch-row).
template <int K, int C, typename Strip_>
void for_each_sr_strip(const at::Tensor& sr, const Strip_& strip) {
  const int64_t B = sr.size(0), H = sr.size(2), W = sr.size(3), Hp = H / K, Wp = W / K;
  const int64_t groups = (Wp + kLanes - 1) / kLanes;
  const float* sp = sr.data_ptr<float>();
  at::parallel_for(0, B * Hp, 1, [&](int64_t begin, int64_t end) {
    alignas(32) float x_pad[lanes::strip_floats<K, C>()], out_pad[lanes::strip_floats<K, C>()];
    lanes::run_simd([&] {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t b = t / Hp, i = t % Hp;
        for (int64_t g = 0; g < groups; ++g) {
          const int valid = strip_valid(Wp, g);
          const Strip image = image_strip<K>(sp + b * C * H * W, H, W, i, g);
          const Strip x = valid == kLanes ? image : lanes::pad_strip<K, C>(image, valid, x_pad);
          strip(b, i, g, valid, t * Wp + g * kLanes, image.p - sp, x, out_pad);
        }
      }
    });
  });
}

// The upstream gradients of a strip's first `valid` patches (the other lanes 0).
inline F8 strip_upstream(const float* grad, int valid) {
  F8 g_up = F8{};
  for (int p = 0; p < valid; ++p) g_up[p] = grad[p];
  return g_up;
}

// Backward of the global Gram target in float32: per strip, the SR Grams and the selected patches' Grams
// (read in place, a GatheredStrip: only the bytes they hold), then write_strip_gradient.
// locate(b, i, j, m, &cH, &cW) as for backward_kernel.
template <int K, int C, typename Locate>
void gram_backward_lanes(const at::Tensor& grad, const at::Tensor& sr, const at::Tensor& index, at::Tensor& dx,
                         int64_t count, const Locate& locate, int criterion) {
  constexpr int P = pair_count<C>();
  const int64_t H = sr.size(2), W = sr.size(3);
  const int64_t* ip = index.data_ptr<int64_t>();
  const float* gp = grad.data_ptr<float>();
  float* dp = dx.data_ptr<float>();
  for_each_sr_strip<K, C>(
      sr, [&](int64_t b, int64_t i, int64_t g, int valid, int64_t u0, int64_t offset, const Strip& x, float* out_pad) {
    lanes::GatheredStrip chosen;  // the selected patches, read in place
    for (int p = 0; p < kLanes; ++p) {
      if (p >= valid) {
        chosen.p[p] = lanes::zero_patch();
        chosen.HW[p] = chosen.W[p] = 0;
        continue;
      }
      const int64_t m = ip[u0 + p];
      TORCH_CHECK(m >= 0 && m < count, "gramgan: saved index ", m, " out of range [0, ", count, ")");
      int64_t cH = H, cW = W;
      chosen.p[p] = locate(b, i, g * kLanes + p, m, &cH, &cW);
      chosen.HW[p] = cH * cW;
      chosen.W[p] = cW;
    }
    F8 ge[P], gc[P];
    lanes::strip_gram<K, C>(x, ge);
    lanes::strip_gram<K, C>(chosen, gc);
    for (int q = 0; q < P; ++q) ge[q] -= gc[q];
    write_strip_gradient<K, C>(ge, strip_upstream(gp + u0, valid), criterion, x, valid, dp + offset, H * W, W, out_pad);
  });
}

// Backward of the local and sampled Gram target in float32 from the forward's residual (pairs (a, b),
// a <= b, read for 8 patches at once): reads SR and the residual only.
template <int K, int C>
void residual_backward_lanes(const at::Tensor& grad, const at::Tensor& sr, const at::Tensor& residual, at::Tensor& dx,
                             int criterion) {
  constexpr int P = pair_count<C>();
  const int64_t H = sr.size(2), W = sr.size(3), N = (H / K) * (W / K);
  const float* rp = residual.data_ptr<float>();
  const float* gp = grad.data_ptr<float>();
  float* dp = dx.data_ptr<float>();
  for_each_sr_strip<K, C>(
      sr, [&](int64_t b, int64_t, int64_t, int valid, int64_t u0, int64_t offset, const Strip& x, float* out_pad) {
    const float* res = rp + b * C * C * N + (u0 - b * N);  // entry (a, c) of the strip's patches at res[(a C + c) N]
    F8 R[P];
    int q = 0;
    for (int a = 0; a < C; ++a) {
      for (int c = a; c < C; ++c, ++q) {
        const float* entry = res + (a * C + c) * N;
        if (valid == kLanes) {
          R[q] = lanes::load8(entry);
        } else {
          R[q] = F8{};
          for (int p = 0; p < valid; ++p) R[q][p] = entry[p];
        }
      }
    }
    write_strip_gradient<K, C>(R, strip_upstream(gp + u0, valid), criterion, x, valid, dp + offset, H * W, W, out_pad);
  });
}

// The backward of either scope: float32 Gram targets on strips of 8 patches, the rest patch by patch.
template <typename T, int K, int C, typename Locate>
void run_backward_kernel(const at::Tensor& grad, const at::Tensor& sr, const at::Tensor& index, at::Tensor& dx,
                         int64_t count, const Locate& locate, int target, int criterion) {
  if constexpr (std::is_same_v<T, float>) {
    if (target == kTargetGram) {
      gram_backward_lanes<K, C>(grad, sr, index, dx, count, locate, criterion);
      return;
    }
  }
  backward_kernel<T, K, C>(grad, sr, index, dx, count, locate, target, criterion);
}

// Converts the backward's (checked) inputs to the computation type and runs
// kernel(T{}, K-constant, C-constant, grad, sr, saved, dx), saved the forward's index or residual
// (contiguous); returns dx in sr_in's dtype.
template <typename F>
at::Tensor run_backward(const at::Tensor& grad_in, const at::Tensor& sr_in, const at::Tensor& saved_in, int64_t k,
                        const F& kernel) {
  const at::ScalarType compute = acc_scalar_type(sr_in.scalar_type());
  const at::Tensor sr = sr_in.to(compute).contiguous();
  const at::Tensor saved = saved_in.contiguous(), grad = grad_in.to(compute).contiguous();
  at::Tensor dx = at::empty_like(sr);
  dispatch_kernel(compute, k, sr.size(1), [&](auto t, auto kc, auto cc) { kernel(t, kc, cc, grad, sr, saved, dx); });
  return dx.to(sr_in.scalar_type());
}

at::Tensor texture_loss_global_backward_cpu(const at::Tensor& grad_in, const at::Tensor& sr_in,
                                            at::TensorList candidates, const at::Tensor& index_in, int64_t k,
                                            c10::string_view target, c10::string_view criterion) {
  check_image(sr_in, "sr", k);
  const Levels levels(sr_in, candidates, k, acc_scalar_type(sr_in.scalar_type()));
  const int tg = parse_target(target), cr = parse_criterion(criterion);
  check_backward_args(grad_in, index_in, sr_in, k);
  return run_backward(grad_in, sr_in, index_in, k, [&](auto t, auto kc, auto cc, auto&... args) {
    using T = decltype(t);
    constexpr int K = decltype(kc)::value, C = decltype(cc)::value;
    auto locate = [&](int64_t b, int64_t, int64_t, int64_t m, int64_t* cH, int64_t* cW) {
      return global_patch<T, K, C>(levels, b, m, cH, cW);
    };
    run_backward_kernel<T, K, C>(args..., levels.total, locate, tg, cr);
  });
}

// The backward of the local and sampled losses from the forward's residual (docs/ops.md): float32 Gram
// target on strips of 8 patches, the rest patch by patch. Reads SR (Gram target) and the residual only.
at::Tensor texture_loss_residual_backward_cpu(const at::Tensor& grad_in, const at::Tensor& sr_in,
                                              const at::Tensor& residual_in, int64_t k, c10::string_view target,
                                              c10::string_view criterion) {
  const int tg = parse_target(target), cr = parse_criterion(criterion);
  check_residual_backward_args(grad_in, sr_in, residual_in, k, tg);
  return run_backward(grad_in, sr_in, residual_in, k,
                      [&](auto t, auto kc, auto cc, const at::Tensor& grad, const at::Tensor& sr,
                          const at::Tensor& residual, at::Tensor& dx) {
    using T = decltype(t);
    constexpr int K = decltype(kc)::value, C = decltype(cc)::value;
    if constexpr (std::is_same_v<T, float>) {
      if (tg == kTargetGram) {
        residual_backward_lanes<K, C>(grad, sr, residual, dx, cr);
        return;
      }
    }
    const int64_t H = sr.size(2), W = sr.size(3), N = (H / K) * (W / K);
    const T* sp = sr.data_ptr<T>();
    const T* rp = residual.data_ptr<T>();
    const T* gp = grad.data_ptr<T>();
    T* dp = dx.data_ptr<T>();
    for_each_patch(sr.size(0), H / K, W / K, [&](int64_t u, int64_t b, int64_t i, int64_t j) {
      const int64_t offset = b * C * H * W + i * K * W + j * K;
      if (tg == kTargetGram) {
        T D[C][C];
        residual_grad_matrix<C>(rp + b * C * C * N + (u - b * N), N, gp[u], C, K, cr, D);
        RowLoops<T, K, C>::apply(D, sp + offset, H * W, W, C, K, dp + offset);
      } else {
        pixel_residual_grad<T>(rp + offset, H * W, W, C, K, gp[u], cr, dp + offset);
      }
    });
  });
}

}  // namespace
}  // namespace cpu
}  // namespace gramgan

TORCH_LIBRARY_IMPL(gramgan, CPU, m) {
  m.impl("texture_loss_residual_backward", &gramgan::cpu::texture_loss_residual_backward_cpu);
  m.impl("texture_loss_global_backward", &gramgan::cpu::texture_loss_global_backward_cpu);
}
