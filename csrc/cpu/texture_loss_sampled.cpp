// CPU kernel of the sampled local texture loss (docs/ops.md, "Sampled candidates"): the local texture
// loss against candidates that are never stored, read from hr, its half-size image and the affine maps.
//
// Threads take the (image, patch-row) strips as they ask for them; each strip samples the k rows of every
// warp into a small buffer ((2 + J) x C x k x W values, cache-resident), then computes the Grams of the
// strip's patches, the running argmin across candidates, the loss and the residual against the chosen
// candidate (what the backward, the local one, reads). For the Gram target, candidate 0 is read from hr
// in place and candidate 1's Grams are those of the half-size patches, each re-tiled into 2 x 2 patches
// (computed once per patch-row pair where one thread runs both rows), so their buffer slots stay unused;
// the pixel target, whose residual needs the chosen pixels, copies both into the buffer. float32 runs
// the local forward's eight-patches-per-SIMD-value code (cpu_lanes.h), float64 a patch at a time. The
// sampling is the shared code of csrc/include/gramgan_patch.h (also what the CUDA kernels call); for
// float32 the warps are sampled by its vector version where the CPU has AVX2 or AVX-512 (warp_sampler.h),
// which performs the same operations, so all agree bit for bit with each other and with affine_grid +
// grid_sample on the CPU (tests/ops/test_sampled.py, tests/ops/test_cpu_lanes.py).
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cstring>
#include <tuple>
#include <type_traits>
#include <vector>

#include "cpu_gram.h"
#include "cpu_lanes.h"
#include "warp_sampler.h"

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

// Rows y0 .. y0 + K - 1 of every candidate of one image into strip, laid out (2 + J, C, K, W); products are
// the image's warp_column_products; vector: whether float32 warps take the vector kernel (vector_sampling). Without
// copy_sources, only the warps (slots 2 ..): candidates 0 and 1 are then read from hr and the half-size image directly.
template <typename T, int K, int C>
void sample_strip(const SampledCandidates<T, T>& src, int64_t J, int64_t y0, T* strip, const T* products, bool vector,
                  bool copy_sources = true) {
  const int64_t H = src.H, W = src.W, HW = H * W, plane = K * W, half_W = W / 2, half_HW = (H / 2) * half_W;
  T* retiled = strip + C * plane;
  if (copy_sources) {
    for (int c = 0; c < C; ++c) {
      for (int r = 0; r < K; ++r) {
        std::memcpy(strip + c * plane + r * W, src.hr + c * HW + (y0 + r) * W, W * sizeof(T));
        const T* half_row = src.half + c * half_HW + retiled_coordinate(y0 + r, K) * half_W;
        for (int64_t j = 0; j < W / K; ++j) {
          std::memcpy(retiled + c * plane + r * W + j * K, half_row + (j / 2) * K, K * sizeof(T));
        }
      }
    }
  }
  for (int64_t w = 0; w < J; ++w) {
    const T* theta = src.thetas + w * 6;
    T* warped = strip + (2 + w) * C * plane;
    if constexpr (std::is_same_v<T, float>) {
      sample_warp_rows(vector, src, theta, products + 2 * w * W, products + (2 * w + 1) * W, C, K, y0, warped);
    } else {
      for (int r = 0; r < K; ++r) sample_warp_row(src, theta, y0 + r, 0, W, plane, warped + r * W);
    }
  }
}

// Whether this call's warps may take the vector kernel: float32 images small enough for its 32-bit pixel
// offsets, on a CPU that has one (else the scalar code).
bool vector_sampling(const SampledInputs& in) {
  return in.J > 0 && in.sr.scalar_type() == at::kFloat && in.H * in.W < (int64_t{1} << 31) && lanes::use_avx2();
}

// Outputs of the forward: per-patch index and loss, and the residual (residual_shape).
struct SampledOutputs {
  at::Tensor index, loss, residual;
};

// The forward in the computation type T, a patch at a time (float64; the reference for the lanes kernel).
template <typename T, int K, int C>
void sampled_forward_kernel(const SampledInputs& in, double gt_weight, int target, int criterion, SampledOutputs& out) {
  constexpr int P = pair_count<C>();
  const int64_t H = in.H, W = in.W, Hp = H / K, Wp = W / K, HW = H * W, NC = 2 + in.J;
  const int64_t plane = K * W, stride = C * plane;  // of the strip buffer
  const T* sp = in.sr.data_ptr<T>();
  int64_t* ip = out.index.data_ptr<int64_t>();
  T* lp = out.loss.data_ptr<T>();
  T* rp = out.residual.data_ptr<T>();
  const T beta = static_cast<T>(gt_weight);
  at::parallel_for(0, in.B * Hp, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> strip(NC * stride), ge(P * Wp), gg(P * Wp), gc(P * Wp), g_best(P * Wp), score(Wp), best(Wp);
    std::vector<int32_t> idx(Wp);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / Hp, i = t % Hp, row = b * C * HW + i * K * W;
      // (double: the scalar sampling code, which needs no column products)
      sample_strip<T, K, C>(in.image<T>(b, K), in.J, i * K, strip.data(), nullptr, false);
      row_grams<T, K, C>(sp + b * C * HW, H, W, i, ge.data(), Wp, 1);
      row_grams<T, K, C>(strip.data(), K, W, 0, gg.data(), Wp, 1);  // candidate 0, hr: the ground truth
      for (int64_t m = 0; m < NC; ++m) {
        const T* g_m = gg.data();
        if (m > 0) {
          row_grams<T, K, C>(strip.data() + m * stride, K, W, 0, gc.data(), Wp, 1);
          g_m = gc.data();
        }
        update_local_selection<T, C>(ge.data(), gg.data(), g_m, Wp, beta, static_cast<int32_t>(m), score.data(),
                                     best.data(), idx.data(), g_best.data());
      }
      for (int64_t j = 0; j < Wp; ++j) ip[t * Wp + j] = idx[j];
      for (int64_t j = 0; j < Wp; ++j) {
        if (target == kTargetGram) {
          lp[t * Wp + j] = gram_target_loss<C>(ge.data() + j, Wp, g_best.data() + j, Wp, C, criterion);
          write_gram_residual<C>(ge.data() + j, Wp, g_best.data() + j, Wp, C, rp + b * C * C * Hp * Wp + i * Wp + j,
                                 Hp * Wp);
        } else {
          lp[t * Wp + j] = write_pixel_residual(sp + row + j * K, HW, W, strip.data() + idx[j] * stride + j * K, plane,
                                                W, C, K, criterion, rp + row + j * K);
        }
      }
    }
  });
}

// The Grams of the half-size image's patch-row i of image b, channel pair q of half patch p at
// grams[q * row + p] (row: the patches rounded up to whole strips; the padding lanes hold a zero patch's
// Grams): candidate 1's Grams, each used by a 2 x 2 block of patches.
template <int K, int C>
void half_row_grams(const SampledInputs& in, int64_t b, int64_t i, float* pad, float* grams, int64_t row) {
  constexpr int N = lanes::kLanes;
  const int64_t half_W = in.W / 2, half_HW = (in.H / 2) * half_W, half_Wp = half_W / K;
  const float* image = in.half.data_ptr<float>() + b * C * half_HW;
  for (int64_t h = 0; h < (half_Wp + N - 1) / N; ++h) {
    lanes::F8 g[pair_count<C>()];
    lanes::strip_gram<K, C>(lanes::image_strip<K>(image, in.H / 2, half_W, i, h), lanes::strip_valid<N>(half_Wp, h),
                            pad, g);
    for (int q = 0; q < pair_count<C>(); ++q) lanes::store8(grams + q * row + h * N, g[q]);
  }
}

// Lanes 0..7 of candidate 1's strip g: half patches 4 g .. 4 g + 3 of half_row_grams, each twice.
inline lanes::F8 retiled_lanes(const float* grams, int64_t g) {
  typedef float F4 __attribute__((vector_size(16)));
  F4 four;
  std::memcpy(&four, grams + g * (lanes::kLanes / 2), sizeof(four));
  return __builtin_shufflevector(four, four, 0, 0, 1, 1, 2, 2, 3, 3);
}

// The forward in float32, eight patches per SIMD value (cpu_lanes.h): per patch-row, the warps' rows are
// sampled into the strip buffer, then each group of eight patches runs the local forward's strip Grams,
// running argmin and loss. Candidate 0's Grams are read from hr itself and candidate 1's computed once per
// half-size patch (half_row_grams, shared by the patch-rows that re-tile the same half row), so for the
// Gram target neither is copied; the pixel target copies them into the buffer for its residual.
template <int K, int C>
void sampled_forward_lanes(const SampledInputs& in, double gt_weight, int target, int criterion, SampledOutputs& out) {
  using lanes::Strip;
  constexpr int P = pair_count<C>();
  constexpr int N = lanes::kLanes;
  const int64_t H = in.H, W = in.W, Hp = H / K, Wp = W / K, HW = H * W, NC = 2 + in.J;
  const int64_t plane = K * W, stride = C * plane;
  const int64_t half_row = ((Wp / 2 + N - 1) / N) * N;  // half_row_grams' row
  const float* sp = in.sr.data_ptr<float>();
  const float* hp = in.hr.data_ptr<float>();
  int64_t* ip = out.index.data_ptr<int64_t>();
  float* lp = out.loss.data_ptr<float>();
  float* rp = out.residual.data_ptr<float>();
  const float beta = static_cast<float>(gt_weight);
  const bool gram_loss = target == kTargetGram;
  const bool vector_sampler = vector_sampling(in);
  parallel_tasks(in.B * Hp, [&](auto& next) {
    lanes::LaneBuffer<float> strip_buffer(NC * stride);  // 64-byte aligned, as the vector loads like
    std::vector<float> products(2 * in.J * W), half_grams(P * half_row);
    alignas(64) float pad[lanes::strip_floats<K, C>()];
    float* strip = &strip_buffer[0];
    int64_t products_of = -1;    // the image whose warp_column_products are in products
    int64_t half_grams_of = -1;  // the (image, half patch-row) whose Grams are in half_grams
    for (int64_t t = 0; next(t);) {
      const int64_t b = t / Hp, i = t % Hp, row = b * C * HW + i * K * W;
      if (vector_sampler && b != products_of) {
        warp_column_products(in.image<float>(b, K), in.J, products.data());
        products_of = b;
      }
      sample_strip<float, K, C>(in.image<float>(b, K), in.J, i * K, strip, products.data(), vector_sampler, !gram_loss);
      // Strips of eight patches: sixteen (AVX-512, lanes::run_lanes) measured slower here, though not in
      // the local forward (the strip buffer is in L1 already; the wider reduction's permutes cost more).
      lanes::run_simd([&] {
        using V = lanes::F8;
        if (gram_loss && b * Hp + i / 2 != half_grams_of) {  // (here: the same code as the other Grams)
          half_row_grams<K, C>(in, b, i / 2, pad, half_grams.data(), half_row);
          half_grams_of = b * Hp + i / 2;
        }
        for (int64_t g = 0; g < (Wp + N - 1) / N; ++g) {
          const int valid = lanes::strip_valid<N>(Wp, g);
          V ge[P], gc[P];
          lanes::strip_gram<K, C>(Strip{sp + row + g * N * K, HW, W}, valid, pad, ge);
          lanes::StripSelection<C, V> selection;
          for (int64_t m = 0; m < NC; ++m) {
            if (m == 0 && gram_loss) {
              lanes::strip_gram<K, C>(Strip{hp + row + g * N * K, HW, W}, valid, pad, gc);
            } else if (m == 1 && gram_loss) {
              for (int q = 0; q < P; ++q) gc[q] = retiled_lanes(half_grams.data() + q * half_row, g);
            } else {
              lanes::strip_gram<K, C>(Strip{strip + m * stride + g * N * K, plane, W}, valid, pad, gc);
            }
            selection.add(ge, gc, static_cast<int32_t>(m), beta, gram_loss, criterion);
          }
          lanes::store_lanes(ip + t * Wp + g * N, selection.run.index, valid);
          if (!gram_loss) continue;
          lanes::store_lanes(lp + t * Wp + g * N, selection.loss / lanes::broadcast<V>(C * C), valid);
          selection.store_residual(rp + b * C * C * Hp * Wp + i * Wp + g * N, Hp * Wp, valid);
        }
      });
      if (gram_loss) continue;
      for (int64_t j = 0; j < Wp; ++j) {
        lp[t * Wp + j] = write_pixel_residual(sp + row + j * K, HW, W, strip + ip[t * Wp + j] * stride + j * K, plane,
                                              W, C, K, criterion, rp + row + j * K);
      }
    }
  });
}

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
    if constexpr (std::is_same_v<decltype(t), float>) {
      sampled_forward_lanes<K, C>(in, gt_weight, tg, cr, out);
    } else {
      sampled_forward_kernel<decltype(t), K, C>(in, gt_weight, tg, cr, out);
    }
  });
  return {out.loss, out.index, out.residual};
}

}  // namespace
}  // namespace cpu
}  // namespace gramgan

TORCH_LIBRARY_IMPL(gramgan, CPU, m) { m.impl("texture_loss_sampled", &gramgan::cpu::texture_loss_sampled_cpu); }
