// The warp sampling of the CPU sampled texture loss (texture_loss_sampled.cpp): rows of hr warped by an
// affine map, bilinear with reflection padding, exactly as affine_grid + grid_sample on the CPU compute
// them (the shared scalar code of gramgan_patch.h), and vector versions for float32 that perform the same
// operations lane by lane: AVX2 + FMA (eight pixels) and AVX-512 (sixteen), picked at run time.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "cpu_lanes.h"
#include "gramgan_patch.h"

namespace gramgan {
namespace cpu {

// Columns [x_begin, x_end) of row y of the warp by theta into out (channel c at out[c * plane + x]):
// the shared scalar sampling code. Never inlined, so that it keeps the generic code's rounding wherever it
// is called from (inlined into the AVX2 function below, its products could be fused).
template <typename T>
__attribute__((noinline)) inline void sample_warp_row(const SampledCandidates<T, T>& src, const T* theta, int64_t y,
                                               int64_t x_begin, int64_t x_end, int64_t plane, T* out) {
  for (int64_t x = x_begin; x < x_end; ++x) {
    const BilinearPoint<T> p = warp_point(theta, src.xs[x], src.ys[y], src.H, src.W);
    for (int c = 0; c < src.C; ++c) out[c * plane + x] = bilinear_sample(src.hr + c * src.H * src.W, src.W, p);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define GRAMGAN_VECTOR_SAMPLERS 1

// The unnormalised coordinate of grid_source_coordinate on eight grid values along an axis of n pixels
// (scale n / 2): ((g + 1) n - 1) / 2, as one multiply-add.
__attribute__((target("avx2,fma"))) inline __m256 unnormalise_avx2(__m256 g, __m256 scale) {
  return _mm256_fmadd_ps(_mm256_add_ps(g, _mm256_set1_ps(1.0f)), scale, _mm256_set1_ps(-0.5f));
}

// The rest of grid_source_coordinate on eight unnormalised coordinates u: reflection and clipping (span
// 2 n, last n - 1).
__attribute__((target("avx2,fma"))) inline __m256 reflect_clip_avx2(__m256 u, __m256 span, __m256 last) {
  const __m256 low = _mm256_set1_ps(-0.5f);
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

// The source coordinates of eight unnormalised ones u along an axis of n pixels (last n - 1, span 2 n):
// reflect_clip_avx2, or where every u lies inside the image (0 <= u <= n - 1) only what is left of it,
// (u + 1/2) - 1/2. There u + 1/2 is positive and below n, so neither the absolute value, the flip nor the
// clip acts, and rounding is monotone, so the result stays in [0, n - 1]: the same value to the bit.
__attribute__((target("avx2,fma"))) inline __m256 source_coordinate_avx2(__m256 u, bool inside, __m256 span,
                                                                          __m256 last) {
  const __m256 low = _mm256_set1_ps(-0.5f);
  return inside ? _mm256_add_ps(_mm256_sub_ps(u, low), low) : reflect_clip_avx2(u, span, last);
}

// Eight floats from p, or (full false) seven and a zero in the last lane, without reading p[7].
__attribute__((target("avx2,fma"))) inline __m256 load_east_avx2(const float* p, bool full) {
  return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, -1, 0));
}

// Eight floats from p, lane l then taking the value at offsets[l] unless they are in order; east: p is
// a row's east neighbours, whose last lane (full false) lies past the row's end and reads as 0.
__attribute__((target("avx2,fma"))) inline __m256 load_span_avx2(const float* p, bool east_full, bool in_order,
                                                                  __m256i offsets) {
  const __m256 v = load_east_avx2(p, east_full);
  return in_order ? v : _mm256_permutevar8x32_ps(v, offsets);
}

// The warp sampling of sample_strip for float32 with AVX2 and FMA, for the CPUs that have them
// (lanes::use_avx2), eight pixels at a time. It performs the very operations of the shared scalar code
// in the same order: products are rounded where grid_sample rounds them (ax, bx hold x * theta, formed
// once per warp so that no multiply-add can be contracted here) and fused where it fuses them.
// - Coordinates: where all eight positions lie inside the image, source_coordinate_avx2's short form.
// - Neighbours: eight samples whose north-west neighbours lie within eight consecutive columns of one or
//   two adjacent rows read them with vector loads from the planar image (permuted unless in order, each
//   lane then taking its row); any others pixel by pixel (no gathers).
// The last W % 8 columns go through the scalar code.
__attribute__((target("avx2,fma"))) inline void sample_warp_rows_avx2(const SampledCandidates<float, float>& src,
                                                                const float* theta, const float* ax,
                                                                const float* bx, int C, int K, int64_t y0,
                                                                float* out) {
  const int64_t H = src.H, W = src.W, vector_end = W - W % 8;
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
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
      const __m256 u = unnormalise_avx2(gx, half_w), v = unnormalise_avx2(gy, half_h);
      const __m256 inside_x = _mm256_and_ps(_mm256_cmp_ps(u, zero, _CMP_GE_OQ), _mm256_cmp_ps(u, last_w, _CMP_LE_OQ));
      const __m256 inside_y = _mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_GE_OQ), _mm256_cmp_ps(v, last_h, _CMP_LE_OQ));
      const bool inside = _mm256_movemask_ps(_mm256_and_ps(inside_x, inside_y)) == 0xFF;
      const __m256 ix = source_coordinate_avx2(u, inside, span_w, last_w);
      const __m256 iy = source_coordinate_avx2(v, inside, span_h, last_h);
      const __m256i x0 = _mm256_cvttps_epi32(ix), y0i = _mm256_cvttps_epi32(iy);  // floor: ix, iy >= 0
      const __m256 w = _mm256_sub_ps(ix, _mm256_cvtepi32_ps(x0)), n = _mm256_sub_ps(iy, _mm256_cvtepi32_ps(y0i));
      const __m256 e = _mm256_sub_ps(one, w), s = _mm256_sub_ps(one, n);
      const __m256 nw = _mm256_mul_ps(s, e), ne = _mm256_mul_ps(s, w), sw = _mm256_mul_ps(n, e), se = _mm256_mul_ps(n, w);
      float* dst = out + r * W + x;
      const int32_t first_x = _mm256_cvtsi256_si32(x0);
      const int32_t first_y = _mm256_cvtsi256_si32(y0i), last_y = _mm256_extract_epi32(y0i, 7);
      const int32_t top = first_y < last_y ? first_y : last_y;
      const __m256i offsets = _mm256_sub_epi32(x0, _mm256_set1_epi32(first_x));
      const __m256i in_span = _mm256_cmpeq_epi32(_mm256_min_epu32(offsets, _mm256_set1_epi32(7)), offsets);
      const __m256i upper = _mm256_cmpeq_epi32(y0i, _mm256_set1_epi32(top));
      const __m256i lower = _mm256_cmpeq_epi32(y0i, _mm256_set1_epi32(top + 1));
      const bool two_rows = !_mm256_testz_si256(lower, lower);
      if (first_x + 8 <= W && top + 1 + (two_rows ? 1 : 0) < H &&
          _mm256_movemask_epi8(_mm256_and_si256(in_span, _mm256_or_si256(upper, lower))) == -1) {
        // Plain loads of rows top .. top + 1 (+ 1 for two rows), permuted unless in order (the east ones
        // of the row's last eight pixels masked: q + 8 is past the row's end and reads as 0), then the
        // lower lanes take the rows below.
        const bool in_order = _mm256_movemask_epi8(_mm256_cmpeq_epi32(offsets, lanes)) == -1;
        const bool east_full = first_x + 9 <= W;
        const __m256 lower_ps = _mm256_castsi256_ps(lower);
        const float* q = src.hr + int64_t{top} * W + first_x;
        for (int c = 0; c < C; ++c, q += H * W) {
          __m256 a = load_span_avx2(q, true, in_order, offsets), b = load_span_avx2(q + 1, east_full, in_order, offsets);
          __m256 d = load_span_avx2(q + W, true, in_order, offsets);
          __m256 f = load_span_avx2(q + W + 1, east_full, in_order, offsets);
          if (two_rows) {
            a = _mm256_blendv_ps(a, d, lower_ps);
            b = _mm256_blendv_ps(b, f, lower_ps);
            d = _mm256_blendv_ps(d, load_span_avx2(q + 2 * W, true, in_order, offsets), lower_ps);
            f = _mm256_blendv_ps(f, load_span_avx2(q + 2 * W + 1, east_full, in_order, offsets), lower_ps);
          }
          __m256 v = _mm256_mul_ps(a, nw);
          v = _mm256_fmadd_ps(b, ne, v);
          v = _mm256_fmadd_ps(d, sw, v);
          v = _mm256_fmadd_ps(f, se, v);
          _mm256_storeu_ps(dst + c * K * W, v);
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
          dst[c * K * W + i] = _mm_cvtss_f32(v);
        }
      }
    }
    sample_warp_row(src, theta, y, vector_end, W, K * W, out + r * W);
  }
}


// reflect_clip_avx2 on sixteen unnormalised coordinates u (AVX-512: the same operations, so the same
// results).
__attribute__((target("avx512f,avx512dq"))) inline __m512 reflect_clip_avx512(__m512 u, __m512 span, __m512 last) {
  const __m512 low = _mm512_set1_ps(-0.5f);
  __m512 extra = _mm512_andnot_ps(_mm512_set1_ps(-0.0f), _mm512_sub_ps(u, low));  // |u - low|
  if (_mm512_cmp_ps_mask(extra, span, _CMP_NLT_UQ) != 0) {  // whole periods to take off (rare)
    const __m512 periods = _mm512_roundscale_ps(_mm512_div_ps(extra, span), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    extra = _mm512_sub_ps(extra, _mm512_mul_ps(periods, span));
  }
  const __m512 flipped = _mm512_sub_ps(span, extra);
  const __m512 reflected = _mm512_add_ps(_mm512_min_ps(extra, flipped), low);
  return _mm512_min_ps(_mm512_max_ps(reflected, _mm512_setzero_ps()), last);
}

// source_coordinate_avx2 on sixteen unnormalised coordinates u (the same operations).
__attribute__((target("avx512f,avx512dq"))) inline __m512 source_coordinate_avx512(__m512 u, bool inside, __m512 span,
                                                                                  __m512 last) {
  const __m512 low = _mm512_set1_ps(-0.5f);
  return inside ? _mm512_add_ps(_mm512_sub_ps(u, low), low) : reflect_clip_avx512(u, span, last);
}

// Sixteen floats from p (those outside mask read as 0), lane l then taking the value at offsets[l] unless
// they are in order.
__attribute__((target("avx512f,avx512dq"))) inline __m512 load_span_avx512(const float* p, __mmask16 mask,
                                                                          bool in_order, __m512i offsets) {
  const __m512 v = _mm512_maskz_loadu_ps(mask, p);
  return in_order ? v : _mm512_permutexvar_ps(offsets, v);
}

// sample_warp_rows_avx2 with sixteen pixels per vector, for CPUs with AVX-512 (F and DQ): the same
// operations lane by lane, so the same samples to the bit.
// - Coordinates: source_coordinate_avx512, short where all sixteen positions lie inside the image.
// - Neighbours: sixteen samples whose north-west neighbours lie within sixteen consecutive columns of one
//   or two adjacent rows read them with vector loads (permuted unless in order, each lane then taking its
//   row); any others with masked gathers (an outside neighbour reads as 0).
// The last W % 16 columns go through the scalar code.
__attribute__((target("avx512f,avx512dq"))) inline void sample_warp_rows_avx512(const SampledCandidates<float, float>& src,
                                                                              const float* theta, const float* ax,
                                                                              const float* bx, int C, int K, int64_t y0,
                                                                              float* out) {
  const int64_t H = src.H, W = src.W, vector_end = W - W % 16;
  const int32_t W32 = static_cast<int32_t>(W), H32 = static_cast<int32_t>(H);
  const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps(), low = _mm512_set1_ps(-0.5f);
  const __m512 half_w = _mm512_set1_ps(static_cast<float>(W) / 2.0f), half_h = _mm512_set1_ps(static_cast<float>(H) / 2.0f);
  const __m512 span_w = _mm512_set1_ps(static_cast<float>(W) * 2.0f), span_h = _mm512_set1_ps(static_cast<float>(H) * 2.0f);
  const __m512 last_w = _mm512_set1_ps(static_cast<float>(W - 1)), last_h = _mm512_set1_ps(static_cast<float>(H - 1));
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int r = 0; r < K; ++r) {
    const int64_t y = y0 + r;
    const float yn = src.ys[y];
    const __m512 cx = _mm512_set1_ps(yn * theta[1]), cy = _mm512_set1_ps(yn * theta[4]);
    const __m512 tx = _mm512_set1_ps(theta[2]), ty = _mm512_set1_ps(theta[5]);
    for (int64_t x = 0; x < vector_end; x += 16) {
      const __m512 gx = _mm512_add_ps(_mm512_add_ps(_mm512_loadu_ps(ax + x), cx), tx);
      const __m512 gy = _mm512_add_ps(_mm512_add_ps(_mm512_loadu_ps(bx + x), cy), ty);
      const __m512 u = _mm512_fmadd_ps(_mm512_add_ps(gx, one), half_w, low);  // unnormalised, as grid_source
      const __m512 v = _mm512_fmadd_ps(_mm512_add_ps(gy, one), half_h, low);
      __mmask16 inside_mask = _mm512_cmp_ps_mask(u, zero, _CMP_GE_OQ);
      inside_mask = _mm512_mask_cmp_ps_mask(inside_mask, u, last_w, _CMP_LE_OQ);
      inside_mask = _mm512_mask_cmp_ps_mask(inside_mask, v, zero, _CMP_GE_OQ);
      inside_mask = _mm512_mask_cmp_ps_mask(inside_mask, v, last_h, _CMP_LE_OQ);
      const bool inside = inside_mask == 0xFFFF;
      const __m512 ix = source_coordinate_avx512(u, inside, span_w, last_w);
      const __m512 iy = source_coordinate_avx512(v, inside, span_h, last_h);
      const __m512i x0 = _mm512_cvttps_epi32(ix), y0i = _mm512_cvttps_epi32(iy);  // floor: ix, iy >= 0
      const __m512 w = _mm512_sub_ps(ix, _mm512_cvtepi32_ps(x0)), n = _mm512_sub_ps(iy, _mm512_cvtepi32_ps(y0i));
      const __m512 e = _mm512_sub_ps(one, w), s = _mm512_sub_ps(one, n);
      const __m512 nw = _mm512_mul_ps(s, e), ne = _mm512_mul_ps(s, w), sw = _mm512_mul_ps(n, e), se = _mm512_mul_ps(n, w);
      float* dst = out + r * W + x;
      const int32_t first_x = _mm_cvtsi128_si32(_mm512_castsi512_si128(x0));
      const int32_t first_y = _mm_cvtsi128_si32(_mm512_castsi512_si128(y0i));
      const int32_t last_y = _mm_extract_epi32(_mm512_extracti32x4_epi32(y0i, 3), 3);
      const int32_t top = first_y < last_y ? first_y : last_y;
      const __m512i offsets = _mm512_sub_epi32(x0, _mm512_set1_epi32(first_x));
      const __mmask16 in_span = _mm512_cmple_epu32_mask(offsets, _mm512_set1_epi32(15));
      const __mmask16 upper = _mm512_cmpeq_epi32_mask(y0i, _mm512_set1_epi32(top));
      const __mmask16 lower = _mm512_cmpeq_epi32_mask(y0i, _mm512_set1_epi32(top + 1));
      const int32_t rows = lower != 0 ? 2 : 1;  // rows of north-west neighbours
      if (first_x + 16 <= W32 && top + rows < H32 && (in_span & (upper | lower)) == 0xFFFF) {
        // Plain loads of rows top .. top + rows (the east ones of the row's last sixteen pixels masked:
        // past the row's end reads as 0), permuted unless in order, then the lower lanes take the rows
        // below.
        const bool in_order = _mm512_cmpeq_epi32_mask(offsets, lanes) == 0xFFFF;
        const __mmask16 east = first_x + 17 <= W32 ? __mmask16(0xFFFF) : __mmask16(0x7FFF);
        const float* q = src.hr + int64_t{top} * W + first_x;
        for (int c = 0; c < C; ++c, q += H * W) {
          __m512 a = load_span_avx512(q, 0xFFFF, in_order, offsets), b = load_span_avx512(q + 1, east, in_order, offsets);
          __m512 d = load_span_avx512(q + W, 0xFFFF, in_order, offsets);
          __m512 f = load_span_avx512(q + W + 1, east, in_order, offsets);
          if (rows == 2) {
            a = _mm512_mask_mov_ps(a, lower, d);
            b = _mm512_mask_mov_ps(b, lower, f);
            d = _mm512_mask_mov_ps(d, lower, load_span_avx512(q + 2 * W, 0xFFFF, in_order, offsets));
            f = _mm512_mask_mov_ps(f, lower, load_span_avx512(q + 2 * W + 1, east, in_order, offsets));
          }
          __m512 v = _mm512_mul_ps(a, nw);
          v = _mm512_fmadd_ps(b, ne, v);
          v = _mm512_fmadd_ps(d, sw, v);
          v = _mm512_fmadd_ps(f, se, v);
          _mm512_storeu_ps(dst + c * K * W, v);
        }
        continue;
      }
      // Anywhere else: the neighbours gathered, those outside the image read as 0.
      const __m512i at = _mm512_add_epi32(_mm512_mullo_epi32(y0i, _mm512_set1_epi32(W32)), x0);
      const __mmask16 east_in = _mm512_cmplt_epi32_mask(_mm512_add_epi32(x0, _mm512_set1_epi32(1)), _mm512_set1_epi32(W32));
      const __mmask16 south_in = _mm512_cmplt_epi32_mask(_mm512_add_epi32(y0i, _mm512_set1_epi32(1)), _mm512_set1_epi32(H32));
      const __m512i at_s = _mm512_add_epi32(at, _mm512_set1_epi32(W32));
      const __m512i one_i = _mm512_set1_epi32(1);
      const float* plane = src.hr;
      for (int c = 0; c < C; ++c, plane += H * W) {
        __m512 v = _mm512_mul_ps(_mm512_i32gather_ps(at, plane, 4), nw);
        v = _mm512_fmadd_ps(_mm512_mask_i32gather_ps(zero, east_in, _mm512_add_epi32(at, one_i), plane, 4), ne, v);
        v = _mm512_fmadd_ps(_mm512_mask_i32gather_ps(zero, south_in, at_s, plane, 4), sw, v);
        v = _mm512_fmadd_ps(_mm512_mask_i32gather_ps(zero, east_in & south_in, _mm512_add_epi32(at_s, one_i), plane, 4),
                            se, v);
        _mm512_storeu_ps(dst + c * K * W, v);
      }
    }
    sample_warp_row(src, theta, y, vector_end, W, K * W, out + r * W);
  }
}

#endif  // GRAMGAN_VECTOR_SAMPLERS

// Which code samples the float32 warps: the scalar one, the AVX2 + FMA or the AVX-512 one (the CPU's
// level of cpu_simd.h: GRAMGAN_CPU_SIMD=generic forces the scalar code, =avx2 caps it at AVX2).
enum class WarpSampler { kScalar, kAvx2, kAvx512 };

inline WarpSampler best_warp_sampler() {
#ifdef GRAMGAN_VECTOR_SAMPLERS
  if (lanes::use_avx512()) return WarpSampler::kAvx512;
  return lanes::use_avx2() ? WarpSampler::kAvx2 : WarpSampler::kScalar;
#else
  return WarpSampler::kScalar;
#endif
}

// Rows y0 .. y0 + K - 1 of the warp by theta into out (channel c at out[c * K * W], row r at + r * W)
// with the given sampler; ax, bx: x * theta[0] and x * theta[3] of every column (the vector samplers').
inline void sample_warp_rows(WarpSampler sampler, const SampledCandidates<float, float>& src, const float* theta,
                             const float* ax, const float* bx, int C, int K, int64_t y0, float* out) {
#ifdef GRAMGAN_VECTOR_SAMPLERS
  if (sampler == WarpSampler::kAvx512) return sample_warp_rows_avx512(src, theta, ax, bx, C, K, y0, out);
  if (sampler == WarpSampler::kAvx2) return sample_warp_rows_avx2(src, theta, ax, bx, C, K, y0, out);
#endif
  for (int r = 0; r < K; ++r) sample_warp_row(src, theta, y0 + r, 0, src.W, K * src.W, out + r * src.W);
}

}  // namespace cpu
}  // namespace gramgan
