// CPU kernel of the sampled local texture loss (docs/ops.md, "Sampled candidates"): the local texture
// loss against candidates that are never stored, read from hr, its half-size image and the affine maps.
//
// Threads split the (image, patch-row) strips; each strip samples the k rows of every candidate into a
// small buffer (K x C x k x W values, cache-resident), then computes the Grams of the strip's patches,
// the running argmin across candidates, the loss and the residual against the chosen candidate (what the
// backward, the local one, reads). float32 runs the local forward's
// eight-patches-per-SIMD-value code (cpu_lanes.h) over the buffer, float64 a patch at a time. The
// sampling is the shared code of csrc/include/gramgan_patch.h (also what the CUDA kernels call); on CPUs
// with AVX2 and FMA the float32 warps of a strip are sampled by a vector version of that code
// (sample_warp_rows_avx2) that performs the same operations, so both agree bit for bit with each other
// and with affine_grid + grid_sample on the CPU (tests/ops/test_sampled.py). Where eight neighbouring
// samples fall on eight consecutive pixels of one row (a gentle warp: 93 % of them at the paper's
// magnitude) their neighbours are read with plain vector loads from the planar image; where they fall
// within nine consecutive pixels (a step that skips or repeats one), the same loads are permuted.
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cstring>
#include <tuple>
#include <type_traits>
#include <vector>

#include "cpu_gram.h"
#include "cpu_lanes.h"

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

// Columns [x_begin, x_end) of row y of the warp by theta into out (channel c at out[c * plane + x]):
// the shared scalar sampling code. Never inlined, so that it keeps the generic code's rounding wherever it
// is called from (inlined into the AVX2 function below, its products could be fused).
template <typename T>
__attribute__((noinline)) void sample_warp_row(const SampledCandidates<T, T>& src, const T* theta, int64_t y,
                                               int64_t x_begin, int64_t x_end, int64_t plane, T* out) {
  for (int64_t x = x_begin; x < x_end; ++x) {
    const BilinearPoint<T> p = warp_point(theta, src.xs[x], src.ys[y], src.H, src.W);
    for (int c = 0; c < src.C; ++c) out[c * plane + x] = bilinear_sample(src.hr + c * src.H * src.W, src.W, p);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define GRAMGAN_SAMPLED_AVX2 1
#include <immintrin.h>

// grid_source_coordinate on eight grid values along an axis of n pixels (scale n / 2, span 2 n, last n - 1).
__attribute__((target("avx2,fma"))) inline __m256 grid_source_avx2(__m256 g, __m256 scale, __m256 span,
                                                                    __m256 last) {
  const __m256 one = _mm256_set1_ps(1.0f), low = _mm256_set1_ps(-0.5f);
  const __m256 u = _mm256_fmadd_ps(_mm256_add_ps(g, one), scale, low);
  __m256 extra = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(u, low));  // |u - low|
  if (_mm256_movemask_ps(_mm256_cmp_ps(extra, span, _CMP_NLT_UQ)) != 0) {  // whole periods to take off (rare)
    const __m256 periods = _mm256_round_ps(_mm256_div_ps(extra, span), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    extra = _mm256_sub_ps(extra, _mm256_mul_ps(periods, span));  // an exact product: contraction changes nothing
  }
  const __m256 flipped = _mm256_sub_ps(span, extra);
  // min / max return their second operand when one is NaN: a NaN stays (flipped is NaN too), then becomes 0.
  const __m256 reflected = _mm256_add_ps(_mm256_min_ps(extra, flipped), low);
  return _mm256_min_ps(_mm256_max_ps(reflected, _mm256_setzero_ps()), last);
}

// The warp sampling of sample_strip for float32 with AVX2 and FMA, for the CPUs that have them
// (lanes::use_avx2): the sample positions of eight pixels at a time, then their neighbours read with vector
// loads from the planar image where they are eight consecutive pixels of a row, else pixel by pixel (no
// gathers). It performs the very operations of the shared scalar code in the same order: products are
// rounded where grid_sample rounds them (ax, bx hold x * theta, formed once per warp so that no multiply-add
// can be contracted here) and fused where it fuses them; the last W % 8 columns go through the scalar code.
__attribute__((target("avx2,fma"))) void sample_warp_rows_avx2(const SampledCandidates<float, float>& src,
                                                                const float* theta, const float* ax,
                                                                const float* bx, int C, int K, int64_t y0,
                                                                float* out) {
  const int64_t H = src.H, W = src.W, vector_end = W - W % 8;
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 half_w = _mm256_set1_ps(static_cast<float>(W) / 2.0f), half_h = _mm256_set1_ps(static_cast<float>(H) / 2.0f);
  const __m256 span_w = _mm256_set1_ps(static_cast<float>(W) * 2.0f), span_h = _mm256_set1_ps(static_cast<float>(H) * 2.0f);
  const __m256 last_w = _mm256_set1_ps(static_cast<float>(W - 1)), last_h = _mm256_set1_ps(static_cast<float>(H - 1));
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int r = 0; r < K; ++r) {
    const int64_t y = y0 + r;
    const float yn = src.ys[y];
    const __m256 cx = _mm256_set1_ps(yn * theta[1]), cy = _mm256_set1_ps(yn * theta[4]);
    const __m256 tx = _mm256_set1_ps(theta[2]), ty = _mm256_set1_ps(theta[5]);
    for (int64_t x = 0; x < vector_end; x += 8) {
      const __m256 gx = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(ax + x), cx), tx);
      const __m256 gy = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(bx + x), cy), ty);
      const __m256 ix = grid_source_avx2(gx, half_w, span_w, last_w), iy = grid_source_avx2(gy, half_h, span_h, last_h);
      const __m256i x0 = _mm256_cvttps_epi32(ix), y0i = _mm256_cvttps_epi32(iy);  // floor: ix, iy >= 0
      const __m256 w = _mm256_sub_ps(ix, _mm256_cvtepi32_ps(x0)), n = _mm256_sub_ps(iy, _mm256_cvtepi32_ps(y0i));
      const __m256 e = _mm256_sub_ps(one, w), s = _mm256_sub_ps(one, n);
      const __m256 nw = _mm256_mul_ps(s, e), ne = _mm256_mul_ps(s, w), sw = _mm256_mul_ps(n, e), se = _mm256_mul_ps(n, w);
      // The common case of a gentle warp: the eight pixels' north-west neighbours are eight consecutive
      // pixels of one row, all four neighbours inside (the east ones are when first_x + 8 < W, the south
      // ones when first_y + 1 < H). Each channel's neighbours are then four plain loads from the planar
      // image, and the blend below is the per-pixel one, lane by lane.
      const int32_t first_x = _mm256_cvtsi256_si32(x0), first_y = _mm256_cvtsi256_si32(y0i);
      const bool inside = first_x + 9 <= W && first_y + 1 < H;  // for the loads of both vector paths
      const __m256i same_row = _mm256_cmpeq_epi32(y0i, _mm256_set1_epi32(first_y));
      const __m256i run = _mm256_cmpeq_epi32(x0, _mm256_add_epi32(_mm256_set1_epi32(first_x), lanes));
      if (inside && _mm256_movemask_epi8(_mm256_and_si256(run, same_row)) == -1) {
        const float* q = src.hr + int64_t{first_y} * W + first_x;
        for (int c = 0; c < C; ++c, q += H * W) {
          __m256 v = _mm256_mul_ps(_mm256_loadu_ps(q), nw);
          v = _mm256_fmadd_ps(_mm256_loadu_ps(q + 1), ne, v);
          v = _mm256_fmadd_ps(_mm256_loadu_ps(q + W), sw, v);
          v = _mm256_fmadd_ps(_mm256_loadu_ps(q + W + 1), se, v);
          _mm256_storeu_ps(out + c * K * W + r * W + x, v);
        }
        continue;
      }
      // Nearly as common: the neighbours lie within nine consecutive pixels of one row (the warp's scale
      // is not 1, so one step skips or repeats a pixel). The same loads, then each lane takes its own
      // pixel from them with a permute.
      const __m256i offsets = _mm256_sub_epi32(x0, _mm256_set1_epi32(first_x));
      const __m256i in_span = _mm256_cmpeq_epi32(_mm256_min_epu32(offsets, _mm256_set1_epi32(7)), offsets);
      if (inside && _mm256_movemask_epi8(_mm256_and_si256(in_span, same_row)) == -1) {
        const float* q = src.hr + int64_t{first_y} * W + first_x;
        for (int c = 0; c < C; ++c, q += H * W) {
          __m256 v = _mm256_mul_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(q), offsets), nw);
          v = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(q + 1), offsets), ne, v);
          v = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(q + W), offsets), sw, v);
          v = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(q + W + 1), offsets), se, v);
          _mm256_storeu_ps(out + c * K * W + r * W + x, v);
        }
        continue;
      }
      // Otherwise pixel by pixel, with the same operations (a neighbour outside the image is read as 0:
      // it weighs nothing, and its NaN must not leak).
      alignas(32) float weights[4][8];
      alignas(32) int32_t xs0[8], ys0[8];
      _mm256_store_ps(weights[0], nw);
      _mm256_store_ps(weights[1], ne);
      _mm256_store_ps(weights[2], sw);
      _mm256_store_ps(weights[3], se);
      _mm256_store_si256(reinterpret_cast<__m256i*>(xs0), x0);
      _mm256_store_si256(reinterpret_cast<__m256i*>(ys0), y0i);
      for (int i = 0; i < 8; ++i) {
        const bool east_in = xs0[i] + 1 < W, south_in = ys0[i] + 1 < H;
        const float* q = src.hr + int64_t{ys0[i]} * W + xs0[i];
        for (int c = 0; c < C; ++c, q += H * W) {
          __m128 v = _mm_mul_ss(_mm_set_ss(q[0]), _mm_set_ss(weights[0][i]));
          v = _mm_fmadd_ss(_mm_set_ss(east_in ? q[1] : 0.0f), _mm_set_ss(weights[1][i]), v);
          v = _mm_fmadd_ss(_mm_set_ss(south_in ? q[W] : 0.0f), _mm_set_ss(weights[2][i]), v);
          v = _mm_fmadd_ss(_mm_set_ss(east_in && south_in ? q[W + 1] : 0.0f), _mm_set_ss(weights[3][i]), v);
          out[c * K * W + r * W + x + i] = _mm_cvtss_f32(v);
        }
      }
    }
    sample_warp_row(src, theta, y, vector_end, W, K * W, out + r * W);
  }
}

#endif

// x * theta[0] and x * theta[3] of every column's normalised x and every warp of one image, (J, 2, W): the
// products sample_warp_rows_avx2 adds to, the same for every row of the image.
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
// the image's warp_column_products; vector_sampler picks sample_warp_rows_avx2 for the warps
// (use_vector_sampler), else the scalar code.
template <typename T, int K, int C>
void sample_strip(const SampledCandidates<T, T>& src, int64_t J, int64_t y0, T* strip, const T* products,
                  bool vector_sampler) {
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
#ifdef GRAMGAN_SAMPLED_AVX2
    if constexpr (std::is_same_v<T, float>) {
      if (vector_sampler) {
        sample_warp_rows_avx2(src, theta, products + 2 * w * W, products + (2 * w + 1) * W, C, K, y0, warped);
        continue;
      }
    }
#endif
    for (int r = 0; r < K; ++r) sample_warp_row(src, theta, y0 + r, 0, W, plane, warped + r * W);
  }
}

// Whether the warps of this call are sampled by sample_warp_rows_avx2 (float32 on a CPU with AVX2 and
// FMA unless GRAMGAN_CPU_SIMD=generic, images small enough for its 32-bit pixel offsets), else by the
// scalar code.
bool use_vector_sampler(const SampledInputs& in) {
#ifdef GRAMGAN_SAMPLED_AVX2
  return in.J > 0 && in.sr.scalar_type() == at::kFloat && lanes::use_avx2() && in.H * in.W < (int64_t{1} << 31);
#else
  return false;
#endif
}

// Outputs of the forward: per-patch index and loss, and the residual (residual_shape).
struct SampledOutputs {
  at::Tensor index, loss, residual;
};

// The forward in the computation type T, a patch at a time (float64; the reference for the lanes kernel).
template <typename T, int K, int C>
void sampled_forward_kernel(const SampledInputs& in, double gt_weight, int target, int criterion,
                            SampledOutputs& out) {
  constexpr int P = pair_count<C>();
  const int64_t H = in.H, W = in.W, Hp = H / K, Wp = W / K, HW = H * W, NC = 2 + in.J;
  const int64_t plane = K * W, stride = C * plane;  // of the strip buffer
  const T* sp = in.sr.data_ptr<T>();
  int64_t* ip = out.index.data_ptr<int64_t>();
  T* lp = out.loss.data_ptr<T>();
  T* rp = out.residual.data_ptr<T>();
  const T beta = static_cast<T>(gt_weight);
  const bool vector_sampler = use_vector_sampler(in);
  at::parallel_for(0, in.B * Hp, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> strip(NC * stride), ge(P * Wp), gg(P * Wp), gc(P * Wp), g_best(P * Wp), score(Wp), best(Wp);
    std::vector<T> products(2 * in.J * W);
    std::vector<int32_t> idx(Wp);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / Hp, i = t % Hp, row = b * C * HW + i * K * W;
      if (vector_sampler && (t == begin || i == 0)) warp_column_products(in.image<T>(b, K), in.J, products.data());
      sample_strip<T, K, C>(in.image<T>(b, K), in.J, i * K, strip.data(), products.data(), vector_sampler);
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

// The forward in float32, eight patches per SIMD value (cpu_lanes.h): per patch-row, the candidates'
// rows are sampled into the strip buffer, then each group of eight patches runs the local forward's
// strip Grams, running argmin and loss over the buffer.
template <int K, int C>
void sampled_forward_lanes(const SampledInputs& in, double gt_weight, int target, int criterion,
                           SampledOutputs& out) {
  using lanes::F8;
  using lanes::kLanes;
  using lanes::Strip;
  constexpr int P = pair_count<C>();
  const int64_t H = in.H, W = in.W, Hp = H / K, Wp = W / K, HW = H * W, NC = 2 + in.J;
  const int64_t plane = K * W, stride = C * plane, groups = (Wp + kLanes - 1) / kLanes;
  const float* sp = in.sr.data_ptr<float>();
  int64_t* ip = out.index.data_ptr<int64_t>();
  float* lp = out.loss.data_ptr<float>();
  float* rp = out.residual.data_ptr<float>();
  const float beta = static_cast<float>(gt_weight);
  const bool gram_loss = target == kTargetGram;
  const bool vector_sampler = use_vector_sampler(in);
  at::parallel_for(0, in.B * Hp, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> strip(NC * stride), products(2 * in.J * W);
    alignas(32) float pad[lanes::strip_floats<K, C>()];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / Hp, i = t % Hp, row = b * C * HW + i * K * W;
      if (vector_sampler && (t == begin || i == 0)) {  // a new image
        warp_column_products(in.image<float>(b, K), in.J, products.data());
      }
      sample_strip<float, K, C>(in.image<float>(b, K), in.J, i * K, strip.data(), products.data(), vector_sampler);
      lanes::run_simd([&] {
        for (int64_t g = 0; g < groups; ++g) {
          const int valid = lanes::strip_valid(Wp, g);
          F8 ge[P], gc[P];
          lanes::strip_gram<K, C>(Strip{sp + row + g * kLanes * K, HW, W}, valid, pad, ge);
          lanes::StripSelection<C> selection;
          for (int64_t m = 0; m < NC; ++m) {
            lanes::strip_gram<K, C>(Strip{strip.data() + m * stride + g * kLanes * K, plane, W}, valid, pad, gc);
            selection.add(ge, gc, static_cast<int32_t>(m), beta, gram_loss, criterion);
          }
          lanes::store_lanes(ip + t * Wp + g * kLanes, selection.run.index, valid);
          if (!gram_loss) continue;
          lanes::store_lanes(lp + t * Wp + g * kLanes, selection.loss / lanes::splat(C * C), valid);
          selection.store_residual(rp + b * C * C * Hp * Wp + i * Wp + g * kLanes, Hp * Wp, valid);
        }
      });
      if (gram_loss) continue;
      for (int64_t j = 0; j < Wp; ++j) {
        lp[t * Wp + j] = write_pixel_residual(sp + row + j * K, HW, W, strip.data() + ip[t * Wp + j] * stride + j * K,
                                              plane, W, C, K, criterion, rp + row + j * K);
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
