// CPU kernels of the sampled local texture loss (docs/ops.md, "Sampled candidates"): the local texture
// loss against candidates that are never stored, read from hr, its half-size image and the affine maps.
//
// Forward: threads split the (image, patch-row) strips; each strip samples the k rows of every candidate
// into a small buffer (K x C x k x W values, cache-resident), then computes the Grams of the strip's
// patches, the running argmin across candidates and the loss from it. Backward: every patch re-reads
// only its chosen candidate's patch from the sources and applies the local backward's formula. The
// sampling and per-patch arithmetic are the shared code of csrc/include/gramgan_patch.h (also what the
// CUDA kernels call); on CPUs with AVX2 and FMA the float32 warps of a strip are sampled by a vector
// version of that code (sample_warp_rows_avx2) that performs the same operations, so both agree bit for bit
// with each other and with affine_grid + grid_sample on the CPU (tests/ops/test_sampled.py). Where eight
// neighbouring samples fall on eight consecutive pixels of one row (a gentle warp: 93 % of them at the
// paper's magnitude) their neighbours are read with plain vector loads from the planar image.
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cstring>
#include <tuple>
#include <type_traits>
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
// (has_avx2_fma): the sample positions of eight pixels at a time, then their neighbours read with vector
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
  const __m256i width = _mm256_set1_epi32(static_cast<int>(W)), height = _mm256_set1_epi32(static_cast<int>(H));
  const __m256i ones = _mm256_set1_epi32(1), lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
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
      const __m256i east = _mm256_cmpgt_epi32(width, _mm256_add_epi32(x0, ones));
      const __m256i south = _mm256_cmpgt_epi32(height, _mm256_add_epi32(y0i, ones));
      // The common case of a gentle warp: the eight pixels' north-west neighbours are eight consecutive
      // pixels of one row, all four neighbours inside. Each channel's neighbours are then four plain
      // loads from the planar image, and the blend below is the per-pixel one, lane by lane.
      const int32_t first_x = _mm256_cvtsi256_si32(x0), first_y = _mm256_cvtsi256_si32(y0i);
      const __m256i run = _mm256_and_si256(
          _mm256_cmpeq_epi32(x0, _mm256_add_epi32(_mm256_set1_epi32(first_x), lanes)),
          _mm256_cmpeq_epi32(y0i, _mm256_set1_epi32(first_y)));
      if (_mm256_movemask_epi8(_mm256_and_si256(run, _mm256_and_si256(east, south))) == -1) {
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

// Whether this CPU runs sample_warp_rows_avx2.
bool has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#endif

// Rows y0 .. y0 + K - 1 of every candidate of one image into strip, laid out (2 + J, C, K, W); scratch holds
// 2 W values; vector_sampler picks sample_warp_rows_avx2 for the warps (use_vector_sampler), else the scalar code.
template <typename T, int K, int C>
void sample_strip(const SampledCandidates<T, T>& src, int64_t J, int64_t y0, T* strip, T* scratch, bool vector_sampler) {
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
        for (int64_t x = 0; x < W; ++x) {
          scratch[x] = src.xs[x] * theta[0];
          scratch[W + x] = src.xs[x] * theta[3];
        }
        sample_warp_rows_avx2(src, theta, scratch, scratch + W, C, K, y0, warped);
        continue;
      }
    }
#endif
    for (int r = 0; r < K; ++r) sample_warp_row(src, theta, y0 + r, 0, W, plane, warped + r * W);
  }
}

// Whether the warps of this call are sampled by sample_warp_rows_avx2 (float32 on a CPU with AVX2 and
// FMA, images small enough for its 32-bit pixel offsets), else by the scalar code.
bool use_vector_sampler(const SampledInputs& in) {
#ifdef GRAMGAN_SAMPLED_AVX2
  return in.J > 0 && in.sr.scalar_type() == at::kFloat && has_avx2_fma() && in.H * in.W < (int64_t{1} << 31);
#else
  return false;
#endif
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
  const bool vector_sampler = use_vector_sampler(in);
  at::parallel_for(0, in.B * Hp, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> strip(NC * stride), grams(NC * P * Wp), ge(P * Wp), best(Wp);
    std::vector<T> scratch(2 * W);
    std::vector<int32_t> idx(Wp);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / Hp, i = t % Hp;
      const T* sr_row = sp + b * C * HW + i * K * W;
      sample_strip<T, K, C>(in.image<T>(b, K), in.J, i * K, strip.data(), scratch.data(), vector_sampler);
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
    const SampledCandidates<T, T> src = in.image<T>(b, K);
    const int64_t y0 = i * K, x0 = j * K, offset = b * C * HW + y0 * W + x0;
    // The chosen patch: read in place from hr or the half-size image, or sampled into `patch`.
    T patch[C * K * K];
    const T* c = patch;
    int64_t c_HW = K * K, c_W = K;
    if (m == 0) {
      c = src.hr + y0 * W + x0, c_HW = HW, c_W = W;
    } else if (m == 1) {
      c_W = W / 2, c_HW = (H / 2) * c_W;
      c = src.half + retiled_coordinate(y0, K) * c_W + retiled_coordinate(x0, K);
    } else {
      for (int r = 0; r < K; ++r) {
        for (int s = 0; s < K; ++s) {
          T v[C];
          src.template pixel<C>(m, y0 + r, x0 + s, v);
          for (int ch = 0; ch < C; ++ch) patch[(ch * K + r) * K + s] = v[ch];
        }
      }
    }
    patch_target_grad<C, RowLoops<T, K, C>>(sp + offset, HW, W, c, c_HW, c_W, C, K, target, criterion, gp[u],
                                            dp + offset);
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
