// Per-patch arithmetic of the fused ops, shared by the CPU kernels (csrc/cpu) and the CUDA kernels
// (csrc/cuda): the Gram of a patch, the selection score and its NaN / tie rule, the Gram- and
// pixel-target losses and their gradients, the mask cell statistics and the sliding-window sweep.
//
// Every function is GRAMGAN_HD (host and device under nvcc, plain inline otherwise), so the CPU tests
// run the very code the CUDA kernels call. Grams are kept as their upper triangle ("pairs":
// (0,0), (0,1), ..., (NC-1,NC-1)) of NC channels: the CPU instantiates NC = C, the CUDA kernels
// NC = kMaxChannels with channels >= C held at exact zeros, so one formula serves both. Functions
// that only add and multiply are also generic in the value type V: a scalar (one pixel, CUDA) or a
// vector holding one pixel of each patch of a strip (CPU), computing the same products either way. See
// docs/ops.md.
#pragma once

#include <cstdint>

#include "gramgan_common.h"

// Unrolls a loop of compile-time length: in nvcc's device pass and in plain C++ (GCC / clang); nvcc's
// host pass of a .cu file, which runs none of this, leaves the loop as it is.
#if defined(__CUDA_ARCH__)
#define GRAMGAN_UNROLL _Pragma("unroll")
#elif defined(__CUDACC__)
#define GRAMGAN_UNROLL
#else
#define GRAMGAN_UNROLL _Pragma("GCC unroll 16")
#endif

namespace gramgan {

template <int NC>
GRAMGAN_HD constexpr int pair_count() {
  return NC * (NC + 1) / 2;
}

// Weight of a pair in the Frobenius norm: 1 on the diagonal, 2 off it ((a, b) and (b, a)).
GRAMGAN_HD constexpr int pair_weight(int a, int b) { return a == b ? 1 : 2; }

// ---- Gram of a patch ------------------------------------------------------------------------------

// acc[q] += v[a] * v[b] for every pair q = (a, b), a <= b: one pixel's (or one row's) Gram terms.
template <int NC, typename V>
GRAMGAN_HD void add_outer_products(const V* v, V* acc) {
  int q = 0;
  GRAMGAN_UNROLL
  for (int a = 0; a < NC; ++a) {
    GRAMGAN_UNROLL
    for (int b = a; b < NC; ++b, ++q) acc[q] += v[a] * v[b];
  }
}

// The Gram from the patch sums: sums / K^2, and exact zeros for pairs with a channel >= C (even when
// a real channel holds +-inf: inf * 0 would be NaN, and NaN would leak into scores and losses).
template <int NC, typename T>
GRAMGAN_HD void finish_gram(T* G, int C, int K) {
  const T inv_area = T(1) / T(K * K);
  int q = 0;
  GRAMGAN_UNROLL
  for (int a = 0; a < NC; ++a) {
    GRAMGAN_UNROLL
    for (int b = a; b < NC; ++b, ++q) G[q] = b < C ? G[q] * inv_area : T(0);
  }
}

// The NC channel values of one pixel (channel stride HW); channels >= C read as 0.
template <int NC, typename acc_t, typename scalar_t>
GRAMGAN_HD void load_pixel(const scalar_t* p, int64_t HW, int C, acc_t* v) {
  GRAMGAN_UNROLL
  for (int c = 0; c < NC; ++c) v[c] = c < C ? static_cast<acc_t>(p[c * HW]) : acc_t(0);
}

// Gram (pairs of NC channels) of a K x K patch whose pixel (r, s) pixels.template load<NC>(r, s, v) reads
// into v (channels >= C as 0). Sums run down each column, then across the columns (the CPU kernels, a
// patch per vector lane, add the column sums pairwise instead: csrc/cpu/cpu_strips.h; the two orders
// differ at rounding level only).
template <int NC, typename acc_t, typename Pixels>
GRAMGAN_HD void gram_of_pixels(const Pixels& pixels, int C, int K, acc_t* G) {
  constexpr int P = pair_count<NC>();
  GRAMGAN_UNROLL
  for (int q = 0; q < P; ++q) G[q] = acc_t(0);
  for (int s = 0; s < K; ++s) {
    acc_t column[P];
    GRAMGAN_UNROLL
    for (int q = 0; q < P; ++q) column[q] = acc_t(0);
    for (int r = 0; r < K; ++r) {
      acc_t v[NC];
      pixels.template load<NC>(r, s, v);
      add_outer_products<NC>(v, column);
    }
    GRAMGAN_UNROLL
    for (int q = 0; q < P; ++q) G[q] += column[q];
  }
  finish_gram<NC>(G, C, K);
}

// The pixels of a patch stored in an image: top-left pixel of channel 0 at p, channel stride HW, row stride W.
template <typename scalar_t>
struct ImagePatch {
  const scalar_t* p;
  int64_t HW, W;
  int C;

  template <int NC, typename acc_t>
  GRAMGAN_HD void load(int r, int s, acc_t* v) const {
    load_pixel<NC>(p + r * W + s, HW, C, v);
  }
};

// Gram (pairs of NC channels) of the K x K patch whose top-left pixel of channel 0 is p (channel
// stride HW, row stride W), in gram_of_pixels' order.
template <int NC, typename acc_t, typename scalar_t>
GRAMGAN_HD void patch_gram(const scalar_t* p, int64_t HW, int64_t W, int C, int K, acc_t* G) {
  gram_of_pixels<NC>(ImagePatch<scalar_t>{p, HW, W, C}, C, K, G);
}

// ---- selection --------------------------------------------------------------------------------------

// Sum over the full NC x NC matrices of criterion(A - B), from their pairs (strides a_stride, b_stride).
template <int NC, typename T>
GRAMGAN_HD T pair_criterion_sum(const T* A, int64_t a_stride, const T* B, int64_t b_stride, int criterion) {
  T sum = T(0);
  int q = 0;
  GRAMGAN_UNROLL
  for (int a = 0; a < NC; ++a) {
    GRAMGAN_UNROLL
    for (int b = a; b < NC; ++b, ++q) {
      sum += T(pair_weight(a, b)) * criterion_value(A[q * a_stride] - B[q * b_stride], criterion);
    }
  }
  return sum;
}

// ||A - B||_F^2 of two Grams given by their pairs.
template <int NC, typename T>
GRAMGAN_HD T frobenius2(const T* A, int64_t a_stride, const T* B, int64_t b_stride) {
  return pair_criterion_sum<NC>(A, a_stride, B, b_stride, kCriterionMse);
}

// The selection score ||Ge - Gc||^2 (+ beta ||Gg - Gc||^2 when beta != 0, as the reference): ge and
// gg (the ground truth's Gram) with stride e_stride, the candidate's gc with stride c_stride.
template <int NC, typename T>
GRAMGAN_HD T selection_score(const T* ge, const T* gg, int64_t e_stride, const T* gc, int64_t c_stride, T beta) {
  T score = frobenius2<NC>(ge, e_stride, gc, c_stride);
  if (beta != T(0)) score += beta * frobenius2<NC>(gg, e_stride, gc, c_stride);
  return score;
}

// Whether candidate m (with key selection_key(score)) replaces the best so far: the first candidate
// always, a later one only when strictly smaller, so ties keep the lower index and NaN never wins.
template <typename T>
GRAMGAN_HD bool improves(T key, T best, bool first) {
  return first || key < best;
}

// ---- losses -------------------------------------------------------------------------------------------

// Mean over the C x C Gram entries of criterion(Ge - Gc) (pairs with strides e_stride, c_stride).
template <int NC, typename T>
GRAMGAN_HD T gram_target_loss(const T* ge, int64_t e_stride, const T* gc, int64_t c_stride, int C, int criterion) {
  return pair_criterion_sum<NC>(ge, e_stride, gc, c_stride, criterion) / T(C * C);
}

// Mean over a patch's C K^2 values of criterion(e - c); e and c point at the patches' top-left pixels
// of channel 0 in images with channel strides e_HW, c_HW and row strides e_W, c_W (c may be stored in
// another type than e, e.g. the accumulation type).
template <typename acc_t, typename e_t, typename c_t>
GRAMGAN_HD acc_t pixel_target_loss(const e_t* e, int64_t e_HW, int64_t e_W, const c_t* c, int64_t c_HW, int64_t c_W,
                                   int C, int K, int criterion) {
  acc_t sum = acc_t(0);
  for (int ch = 0; ch < C; ++ch) {
    for (int r = 0; r < K; ++r) {
      const e_t* er = e + ch * e_HW + r * e_W;
      const c_t* cr = c + ch * c_HW + r * c_W;
      for (int s = 0; s < K; ++s) {
        sum += criterion_value(static_cast<acc_t>(er[s]) - static_cast<acc_t>(cr[s]), criterion);
      }
    }
  }
  return sum / acc_t(C * K * K);
}

// ---- gradients ------------------------------------------------------------------------------------------

// The symmetric matrix D with dx_u = D x_u for the Gram-target loss of one patch (upstream g):
// D = g criterion'(Ge - Gc) (2 / K^2) / C^2, zero outside the C x C block.
template <int NC, typename T>
GRAMGAN_HD void gram_target_grad_matrix(const T* ge, const T* gc, T g, int C, int K, int criterion, T (*D)[NC]) {
  const T scale = g / T(C * C) * (T(2) / T(K * K));
  int q = 0;
  GRAMGAN_UNROLL
  for (int a = 0; a < NC; ++a) {
    GRAMGAN_UNROLL
    for (int b = a; b < NC; ++b, ++q)
      D[a][b] = D[b][a] = b < C ? scale * criterion_grad(ge[q] - gc[q], criterion) : T(0);
  }
}

// The matrix S with dx_u = S x_u for patch_gram's backward: S = (dG + dG^T) / K^2 for the upstream
// C x C gradient dG (row-major, C * C values), zero outside the C x C block.
template <int NC, typename T>
GRAMGAN_HD void patch_gram_grad_matrix(const T* dG, int C, int K, T (*S)[NC]) {
  const T inv_area = T(1) / T(K * K);
  GRAMGAN_UNROLL
  for (int a = 0; a < NC; ++a) {
    GRAMGAN_UNROLL
    for (int b = 0; b < NC; ++b) S[a][b] = (a < C && b < C) ? (dG[a * C + b] + dG[b * C + a]) * inv_area : T(0);
  }
}

// out = row a of D times the pixel values v: sum_b D[a][b] v[b].
template <int NC, typename T, typename V>
GRAMGAN_HD void matrix_row_times(const T (*D)[NC], const V* v, int a, V& out) {
  out = V{};
  GRAMGAN_UNROLL
  for (int b = 0; b < NC; ++b) out += D[a][b] * v[b];
}

// Writes D x_u into dx for the one pixel u at x (channel stride HW, as dx's).
template <int NC, typename acc_t, typename scalar_t>
GRAMGAN_HD void apply_pixel_matrix(const acc_t (*D)[NC], const scalar_t* x, int64_t HW, int C, scalar_t* dx) {
  acc_t v[NC];
  load_pixel<NC>(x, HW, C, v);
  GRAMGAN_UNROLL
  for (int a = 0; a < NC; ++a) {
    if (a < C) {
      acc_t out;
      matrix_row_times<NC>(D, v, a, out);
      dx[a * HW] = static_cast<scalar_t>(out);
    }
  }
}

// Writes D x_u into dx for every pixel u of the K x K patch at x (dx has x's strides HW, W).
template <int NC, typename acc_t, typename scalar_t>
GRAMGAN_HD void apply_patch_matrix(const acc_t (*D)[NC], const scalar_t* x, int64_t HW, int64_t W, int C, int K,
                                   scalar_t* dx) {
  for (int r = 0; r < K; ++r) {
    for (int s = 0; s < K; ++s) apply_pixel_matrix<NC>(D, x + r * W + s, HW, C, dx + r * W + s);
  }
}

// Writes the pixel-target gradient g criterion'(e - c) / (C K^2) of one patch into dx (e's strides).
template <typename acc_t, typename scalar_t>
GRAMGAN_HD void pixel_target_grad(const scalar_t* e, int64_t HW, int64_t W, const scalar_t* c, int64_t c_HW,
                                  int64_t c_W, int C, int K, acc_t g, int criterion, scalar_t* dx) {
  const acc_t scale = g / acc_t(C * K * K);
  for (int ch = 0; ch < C; ++ch) {
    for (int r = 0; r < K; ++r) {
      const int64_t row = ch * HW + r * W;
      const scalar_t* cr = c + ch * c_HW + r * c_W;
      for (int s = 0; s < K; ++s) {
        const acc_t d = static_cast<acc_t>(e[row + s]) - static_cast<acc_t>(cr[s]);
        dx[row + s] = static_cast<scalar_t>(scale * criterion_grad(d, criterion));
      }
    }
  }
}

// ---- residuals: what the local and sampled forwards leave for their backward ----------------------------
// Gram target: the C x C matrix Ge - Gc of every patch, entry (a, b) of patch n at res[(a C + b) N + n]
// (N patches per image, channel pair first). Pixel target: e - c, an image of SR's layout.

// Writes Ge - Gc (pairs of NC channels, strides e_stride, c_stride) as the C x C entries of one patch,
// entry (a, b) at res[(a C + b) stride].
template <int NC, typename T>
GRAMGAN_HD void write_gram_residual(const T* ge, int64_t e_stride, const T* gc, int64_t c_stride, int C, T* res,
                                    int64_t stride) {
  int q = 0;
  GRAMGAN_UNROLL
  for (int a = 0; a < NC; ++a) {
    GRAMGAN_UNROLL
    for (int b = a; b < NC; ++b, ++q) {
      if (b >= C) continue;
      const T d = ge[q * e_stride] - gc[q * c_stride];
      res[(a * C + b) * stride] = d;
      res[(b * C + a) * stride] = d;
    }
  }
}

// Writes e - c of one patch into res (e's strides e_HW, e_W) and returns the pixel-target loss, the mean
// of criterion(e - c) over the patch's C K^2 values.
template <typename acc_t, typename e_t, typename c_t>
GRAMGAN_HD acc_t write_pixel_residual(const e_t* e, int64_t e_HW, int64_t e_W, const c_t* c, int64_t c_HW, int64_t c_W,
                                      int C, int K, int criterion, acc_t* res) {
  acc_t sum = acc_t(0);
  for (int ch = 0; ch < C; ++ch) {
    for (int r = 0; r < K; ++r) {
      for (int s = 0; s < K; ++s) {
        const acc_t d = static_cast<acc_t>(e[ch * e_HW + r * e_W + s]) - static_cast<acc_t>(c[ch * c_HW + r * c_W + s]);
        res[ch * e_HW + r * e_W + s] = d;
        sum += criterion_value(d, criterion);
      }
    }
  }
  return sum / acc_t(C * K * K);
}

// The matrix D of gram_target_grad_matrix from a patch's residual (entry (a, b) at res[(a C + b) stride]).
template <int NC, typename T>
GRAMGAN_HD void residual_grad_matrix(const T* res, int64_t stride, T g, int C, int K, int criterion, T (*D)[NC]) {
  const T scale = g / T(C * C) * (T(2) / T(K * K));
  GRAMGAN_UNROLL
  for (int a = 0; a < NC; ++a) {
    GRAMGAN_UNROLL
    for (int b = a; b < NC; ++b) {
      D[a][b] = D[b][a] = b < C ? scale * criterion_grad(res[(a * C + b) * stride], criterion) : T(0);
    }
  }
}

// The factor of the pixel-target gradient of a patch with upstream g: g / (C K^2).
template <typename acc_t>
GRAMGAN_HD acc_t pixel_grad_scale(acc_t g, int C, int K) {
  return g / acc_t(C * K * K);
}

// Writes the pixel-target gradient scale criterion'(r) of one pixel's C values from its residual r (channel
// stride HW, as dx's); scale from pixel_grad_scale.
template <typename acc_t, typename scalar_t>
GRAMGAN_HD void pixel_residual_grad_at(const acc_t* res, int64_t HW, int C, acc_t scale, int criterion, scalar_t* dx) {
  for (int ch = 0; ch < C; ++ch) dx[ch * HW] = static_cast<scalar_t>(scale * criterion_grad(res[ch * HW], criterion));
}

// Writes the pixel-target gradient g criterion'(r) / (C K^2) of one patch from its residual r (layout of
// dx: strides HW, W).
template <typename acc_t, typename scalar_t>
GRAMGAN_HD void pixel_residual_grad(const acc_t* res, int64_t HW, int64_t W, int C, int K, acc_t g, int criterion,
                                    scalar_t* dx) {
  const acc_t scale = pixel_grad_scale(g, C, K);
  for (int r = 0; r < K; ++r) {
    for (int s = 0; s < K; ++s) pixel_residual_grad_at(res + r * W + s, HW, C, scale, criterion, dx + r * W + s);
  }
}

// Writes the gradient of one patch's texture loss (upstream g) into dx (e's strides HW, W): the Gram
// target recomputes both Grams, the pixel target compares the pixels; c is the chosen candidate's patch
// (channel stride c_HW, row stride c_W).
template <int NC, typename acc_t, typename scalar_t>
GRAMGAN_HD void patch_target_grad(const scalar_t* e, int64_t HW, int64_t W, const scalar_t* c, int64_t c_HW,
                                  int64_t c_W, int C, int K, int target, int criterion, acc_t g, scalar_t* dx) {
  if (target == kTargetGram) {
    acc_t ge[pair_count<NC>()], gc[pair_count<NC>()], D[NC][NC];
    patch_gram<NC>(e, HW, W, C, K, ge);
    patch_gram<NC>(c, c_HW, c_W, C, K, gc);
    gram_target_grad_matrix<NC>(ge, gc, g, C, K, criterion, D);
    apply_patch_matrix<NC>(D, e, HW, W, C, K, dx);
  } else {
    pixel_target_grad<acc_t>(e, HW, W, c, c_HW, c_W, C, K, g, criterion, dx);
  }
}

// ---- sampled candidates -------------------------------------------------------------------------------
// The candidates of the sampled local texture loss (docs/ops.md, "Sampled candidates"), read from their
// sources instead of a stored stack: 0 is hr, 1 the half-size image re-tiled at patch level, 2 + w hr
// warped by the affine map theta_w the way affine_grid + grid_sample (bilinear, reflection padding,
// align_corners=False) do it. The arithmetic follows torch's CPU grid_sample kernel step by step,
// including its fused multiply-adds, so that float32 samples agree with the reference to the last bit
// or so (an ulp of a coordinate is an ulp times the image's slope in the sampled value).

// a * b + c rounded once. On the host (no FMA in the baseline instruction set) the float product is
// formed exactly in double; the double sum then rounds to float (twice rounded, which differs from one
// rounding only when the double lands exactly halfway between two floats).
GRAMGAN_HD float fused_multiply_add(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return fmaf(a, b, c);
#else
  return static_cast<float>(static_cast<double>(a) * static_cast<double>(b) + static_cast<double>(c));
#endif
}

GRAMGAN_HD double fused_multiply_add(double a, double b, double c) { return ::fma(a, b, c); }

// a * b rounded on its own, never fused with an addition that follows it, whatever the compiler: nvcc may
// contract a * b + c into one fused multiply-add (-fmad=true, its default), and g++ does wherever the target
// has FMA (the CPU kernels' AVX2 copies, the contracting emulated build: docs/cuda-emulation.md). Where the
// rounding is part of what the kernels promise (the affine map, which torch's CPU affine_grid rounds
// separately), it is written out: a warp coordinate one ulp off moves its sample by that ulp times the
// image's slope. __fmul_rn / __dmul_rn are documented never to be contracted; on the host an empty asm
// statement that may change the product hides it from the compiler's contraction.
template <typename T>
GRAMGAN_HD T separately_rounded_product(T a, T b) {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(T) == sizeof(float)) {
    return __fmul_rn(a, b);
  } else {
    return __dmul_rn(a, b);
  }
#else
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__)
  T product = a * b;
#if defined(__aarch64__)
  asm("" : "+w"(product));
#else
  asm("" : "+x"(product));
#endif
#else
  volatile T product = a * b;  // elsewhere: through memory
#endif
  return product;
#endif
}

GRAMGAN_HD float truncate_value(float v) { return ::truncf(v); }
GRAMGAN_HD double truncate_value(double v) { return ::trunc(v); }

// grid_sample's reflection of a pixel coordinate about -0.5 and size - 0.5 (align_corners=False), as many
// times as needed, then clipped to [0, size - 1] (a NaN coordinate becomes 0, as in torch).
template <typename T>
GRAMGAN_HD T reflect_coordinate(T in, int64_t size) {
  const T twice_span = static_cast<T>(size) * T(2), low = T(-0.5);
  T extra = in - low;
  extra = extra < T(0) ? -extra : extra;
  if (!(extra < twice_span)) extra = extra - truncate_value(extra / twice_span) * twice_span;  // whole periods
  const T flipped = twice_span - extra;
  const T reflected = (extra < flipped ? extra : flipped) + low;
  const T clipped = reflected > T(0) ? reflected : T(0);
  return clipped < static_cast<T>(size - 1) ? clipped : static_cast<T>(size - 1);
}

// The pixel coordinate grid_sample reads for the normalised grid value g along an axis of `size` pixels:
// unnormalised ((g + 1) size - 1) / 2, then reflected and clipped.
template <typename T>
GRAMGAN_HD T grid_source_coordinate(T g, int64_t size) {
  return reflect_coordinate(fused_multiply_add(g + T(1), static_cast<T>(size) / T(2), T(-0.5)), size);
}

// One row of an affine map (theta[0..2]) applied to the normalised point (xn, yn): affine_grid's
// x theta0 + y theta1 + 1 theta2, in that order, every product and sum rounded on its own.
template <typename T>
GRAMGAN_HD T affine_coordinate(const T* theta_row, T xn, T yn) {
  return (separately_rounded_product(xn, theta_row[0]) + separately_rounded_product(yn, theta_row[1])) + theta_row[2];
}

// A bilinear sample position: the north-west neighbour's pixel offset y * W + x, the four weights and
// whether the east and south neighbours lie inside the image (a neighbour outside weighs nothing; one
// inside always multiplies, so a NaN there propagates even with weight 0, as in grid_sample).
template <typename T>
struct BilinearPoint {
  int64_t offset;
  T nw, ne, sw, se;
  bool east, south;
};

// The bilinear position of the (clipped, so non-negative) pixel coordinates (ix, iy) in an H x W image.
template <typename T>
GRAMGAN_HD BilinearPoint<T> bilinear_point(T ix, T iy, int64_t H, int64_t W) {
  const int64_t x0 = static_cast<int64_t>(ix), y0 = static_cast<int64_t>(iy);  // floor: ix, iy >= 0
  const T w = ix - static_cast<T>(x0), e = T(1) - w, n = iy - static_cast<T>(y0), s = T(1) - n;
  return BilinearPoint<T>{y0 * W + x0, s * e, s * w, n * e, n * w, x0 + 1 < W, y0 + 1 < H};
}

// The bilinear sample of one channel plane (row stride W) at p, summed as grid_sample does.
template <typename acc_t, typename scalar_t>
GRAMGAN_HD acc_t bilinear_sample(const scalar_t* plane, int64_t W, const BilinearPoint<acc_t>& p) {
  const scalar_t* q = plane + p.offset;
  const acc_t ne = p.east ? static_cast<acc_t>(q[1]) : acc_t(0);
  const acc_t sw = p.south ? static_cast<acc_t>(q[W]) : acc_t(0);
  const acc_t se = p.east && p.south ? static_cast<acc_t>(q[W + 1]) : acc_t(0);
  acc_t v = static_cast<acc_t>(q[0]) * p.nw;
  v = fused_multiply_add(ne, p.ne, v);
  v = fused_multiply_add(sw, p.sw, v);
  return fused_multiply_add(se, p.se, v);
}

// The position that output pixel (y, x) of an H x W warp by theta (2 x 3, row-major) samples; xn and yn
// are the pixel's normalised coordinates (affine_base_coordinates in gramgan_host.h).
template <typename T>
GRAMGAN_HD BilinearPoint<T> warp_point(const T* theta, T xn, T yn, int64_t H, int64_t W) {
  const T ix = grid_source_coordinate(affine_coordinate(theta, xn, yn), W);
  const T iy = grid_source_coordinate(affine_coordinate(theta + 3, xn, yn), H);
  return bilinear_point(ix, iy, H, W);
}

// Pixel (y, x) of half-size patch row/column: patch (i, j) of the re-tiled image is patch (i / 2, j / 2)
// of the half-size one, so image coordinate y maps to ((y / K) / 2) K + y % K.
GRAMGAN_HD int64_t retiled_coordinate(int64_t y, int K) { return ((y / K) / 2) * K + y % K; }

// The pixels of one candidate's K x K patch, read from its source. Where they come from is worked out
// once per patch, not per pixel: the re-tiled half-size patch's origin (integer divisions, which a GPU
// runs as long instruction sequences) and the warp's affine map, copied into registers.
template <typename acc_t, typename scalar_t>
struct CandidatePatch {
  const scalar_t* origin;  // hr or the half-size image: the patch's top-left pixel, channel 0; a warp: hr itself
  int64_t plane, row;      // channel and row strides of the source
  const acc_t* xs;         // the normalised coordinates of the patch's columns (a warp only)
  const acc_t* ys;         // and of its rows
  acc_t theta[6];          // the warp's affine map
  int64_t H, W;            // hr's size (a warp only)
  int C;
  bool warped;

  // Channels 0 .. NC - 1 of the patch's pixel (r, s) into v (channels >= C read as 0).
  template <int NC>
  GRAMGAN_HD void load(int r, int s, acc_t* v) const {
    if (!warped) {
      load_pixel<NC>(origin + r * row + s, plane, C, v);
      return;
    }
    const BilinearPoint<acc_t> p = warp_point(theta, xs[s], ys[r], H, W);
    GRAMGAN_UNROLL
    for (int c = 0; c < NC; ++c) v[c] = c < C ? bilinear_sample(origin + c * plane, W, p) : acc_t(0);
  }
};

// The candidates of one image read from their sources: hr (C, H, W), half (C, H/2, W/2), the J affine
// maps thetas (J, 2, 3) and the normalised pixel coordinates xs (W) and ys (H).
template <typename acc_t, typename scalar_t>
struct SampledCandidates {
  const scalar_t* hr;
  const scalar_t* half;
  const acc_t* thetas;
  const acc_t* xs;
  const acc_t* ys;
  int64_t H, W;
  int C, K;

  // Candidate m's patch whose top-left pixel is (y0, x0), both multiples of K. The re-tiled pixel
  // (y0 + r, x0 + s) is retiled_coordinate's (((y0 / K) / 2) K + r, ((x0 / K) / 2) K + s), since r, s < K.
  GRAMGAN_HD CandidatePatch<acc_t, scalar_t> patch(int64_t m, int64_t y0, int64_t x0) const {
    CandidatePatch<acc_t, scalar_t> p{hr + y0 * W + x0, H * W, W, xs + x0, ys + y0, {}, H, W, C, m >= 2};
    if (m == 1) {
      const int64_t hw = W / 2;
      p.origin = half + retiled_coordinate(y0, K) * hw + retiled_coordinate(x0, K);
      p.plane = (H / 2) * hw;
      p.row = hw;
    } else if (m >= 2) {
      p.origin = hr;
      GRAMGAN_UNROLL
      for (int i = 0; i < 6; ++i) p.theta[i] = thetas[(m - 2) * 6 + i];
    }
    return p;
  }
};

// Gram (pairs) of the K x K patch of candidate m whose top-left pixel is (y0, x0), in patch_gram's order.
template <int NC, typename acc_t, typename Source>
GRAMGAN_HD void source_patch_gram(const Source& source, int64_t m, int64_t y0, int64_t x0, int C, int K, acc_t* G) {
  gram_of_pixels<NC>(source.patch(m, y0, x0), C, K, G);
}

// Writes e - c, c candidate m's patch at (y0, x0) of a source, into res (e and res point at the patch's
// top-left pixel, both with strides HW, W) and returns the pixel-target loss, summed as pixel_target_loss.
template <int NC, typename acc_t, typename source_t, typename scalar_t>
GRAMGAN_HD acc_t write_source_pixel_residual(const SampledCandidates<acc_t, source_t>& source, int64_t m, int64_t y0,
                                             int64_t x0, int C, int K, const scalar_t* e, acc_t* res, int64_t HW,
                                             int64_t W, int criterion) {
  const CandidatePatch<acc_t, source_t> candidate = source.patch(m, y0, x0);
  for (int r = 0; r < K; ++r) {
    for (int s = 0; s < K; ++s) {
      acc_t v[NC];
      candidate.template load<NC>(r, s, v);
      GRAMGAN_UNROLL
      for (int ch = 0; ch < NC; ++ch) {
        if (ch < C) res[ch * HW + r * W + s] = static_cast<acc_t>(e[ch * HW + r * W + s]) - v[ch];
      }
    }
  }
  acc_t sum = acc_t(0);
  for (int ch = 0; ch < C; ++ch) {
    for (int r = 0; r < K; ++r) {
      for (int s = 0; s < K; ++s) sum += criterion_value(res[ch * HW + r * W + s], criterion);
    }
  }
  return sum / acc_t(C * K * K);
}

// ---- texture mask -------------------------------------------------------------------------------------

// The rows (or columns) [lo, hi) of grid cell c: [c k - offset, c k - offset + k) clipped to [0, n).
GRAMGAN_HD void cell_range(int64_t c, int64_t k, int64_t offset, int64_t n, int64_t* lo, int64_t* hi) {
  const int64_t start = c * k - offset;
  *lo = start < 0 ? 0 : start;
  *hi = start + k > n ? n : start + k;
}

// Luminance read from the image itself ((C, H, W), channel stride HW).
template <typename scalar_t>
struct LumaImage {
  const scalar_t* image;
  int64_t HW, W;
  int C;
  GRAMGAN_HD double at(int64_t y, int64_t x) const { return luminance_at(image + y * W + x, HW, C); }
};

// Luminance precomputed into rows y0, y0 + 1, ... of width W.
struct LumaRows {
  const double* rows;
  int64_t y0, W;
  GRAMGAN_HD double at(int64_t y, int64_t x) const { return rows[(y - y0) * W + x]; }
};

// Unbiased standard deviation of the luminance over rows [y0, y1) x columns [x0, x1), in two passes
// (the mean, then the squared deviations) as the reference.
template <typename Luma>
GRAMGAN_HD double cell_std(const Luma& luma, int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
  double sum = 0.0;
  for (int64_t y = y0; y < y1; ++y) {
    for (int64_t x = x0; x < x1; ++x) sum += luma.at(y, x);
  }
  const int64_t count = (y1 - y0) * (x1 - x0);
  const double mean = sum / static_cast<double>(count);
  double squares = 0.0;
  for (int64_t y = y0; y < y1; ++y) {
    for (int64_t x = x0; x < x1; ++x) {
      const double d = luma.at(y, x) - mean;
      squares += d * d;
    }
  }
  return unbiased_std(squares, count);
}

// Where the mask (and with a pair, the masked images) go.
template <typename scalar_t>
struct MaskOut {
  scalar_t* mask;      // (B, 1, H, W)
  const scalar_t* sr;  // (B, C, H, W), nullptr without a pair
  const scalar_t* hr;
  scalar_t* sr_out;
  scalar_t* hr_out;
  int C;
  int64_t H, W;

  // The mask value m of pixel (y, x) of image b, and with a pair sr * m and hr * m.
  GRAMGAN_HD void write(int64_t b, int64_t y, int64_t x, scalar_t m) const {
    const int64_t pixel = y * W + x;
    mask[b * H * W + pixel] = m;
    if (sr == nullptr) return;
    using acc_t = acc_type_t<scalar_t>;
    const acc_t mf = static_cast<acc_t>(m);
    for (int c = 0; c < C; ++c) {
      const int64_t q = (b * C + c) * H * W + pixel;
      sr_out[q] = static_cast<scalar_t>(static_cast<acc_t>(sr[q]) * mf);
      hr_out[q] = static_cast<scalar_t>(static_cast<acc_t>(hr[q]) * mf);
    }
  }

  // The grid cell [y0, y1) x [x0, x1) of image b: its mask value from the cell's std, written to
  // every pixel.
  template <typename Luma>
  GRAMGAN_HD void write_cell(const Luma& luma, double threshold, int64_t b, int64_t y0, int64_t y1, int64_t x0,
                             int64_t x1) const {
    const scalar_t m = mask_value<scalar_t>(cell_std(luma, y0, y1, x0, x1), threshold);
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t x = x0; x < x1; ++x) write(b, y, x, m);
    }
  }
};

// Running window sums of the sliding mask: value v enters (sign 1) or leaves (sign -1) sums s1 of the
// values, s2 of their squares and bad of the non-finite ones (counted, not summed, so that a NaN
// poisons only the windows that contain it).
GRAMGAN_HD void window_add(double v, int sign, double& s1, double& s2, int32_t& bad) {
  const bool finite = is_finite(v);
  const double f = finite ? v : 0.0;
  s1 += sign * f;
  s2 += sign * (f * f);
  bad += finite ? 0 : sign;
}

// One row y of image b of the sliding mask, from the column window sums c1, c2, cb of that row (each
// covering rows y - r .. y + r): runs the window along the row with reflect padding and writes the mask.
template <typename scalar_t>
GRAMGAN_HD void sliding_row(const double* c1, const double* c2, const int32_t* cb, int64_t W, int64_t r, int64_t window,
                            double threshold, const MaskOut<scalar_t>& out, int64_t b, int64_t y) {
  double s1 = 0.0, s2 = 0.0;
  int64_t bad = 0;
  for (int64_t dx = -r; dx <= r; ++dx) {
    const int64_t q = reflect_index(dx, W);
    s1 += c1[q];
    s2 += c2[q];
    bad += cb[q];
  }
  for (int64_t x = 0; x < W; ++x) {
    if (x > 0) {
      const int64_t in = reflect_index(x + r, W), old = reflect_index(x - 1 - r, W);
      s1 += c1[in] - c1[old];
      s2 += c2[in] - c2[old];
      bad += cb[in] - cb[old];
    }
    const double std_dev = bad == 0 ? window_std(s1, s2, window * window) : std::numeric_limits<double>::quiet_NaN();
    out.write(b, y, x, mask_value<scalar_t>(std_dev, threshold));
  }
}

}  // namespace gramgan
