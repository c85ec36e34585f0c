// Device building blocks of the CUDA kernels: per-patch Gram, launch geometry.
//
// The kernels are templated on the dtype only (k and C are runtime values: few instantiations, so the
// extension compiles quickly); loops over channels are unrolled to keep per-patch values in registers.
// One thread handles one patch and streams its k*k pixels; the Gram is kept in registers in the
// layout of the largest supported channel count (kMaxPairs entries of the upper triangle of a 4 x 4
// matrix). Channels beyond C are loaded as exact zeros, so their entries are 0 for every patch and
// drop out of every score and loss without branches; only the divisions use the real C.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cuda_launch.cuh"
#include "gramgan_common.h"
#include "gramgan_host.h"

namespace gramgan {
namespace cuda {

constexpr int kThreads = 128;

// A 1-D grid for n work items with kThreads threads per block; kernels loop with a grid stride, so
// capping the block count keeps any n within the launch limits.
inline dim3 grid_for(int64_t n) {
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t{1} << 20);
  return dim3(static_cast<unsigned int>(std::max<int64_t>(blocks, 1)));
}

__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// The C channel values of one pixel (channel stride HW); channels >= C read as 0.
template <typename scalar_t, typename acc_t>
__device__ __forceinline__ void load_pixel(const scalar_t* p, int64_t HW, int C, acc_t v[kMaxChannels]) {
#pragma unroll
  for (int c = 0; c < kMaxChannels; ++c) v[c] = c < C ? static_cast<acc_t>(p[c * HW]) : acc_t(0);
}

// Weight of pair q in the Frobenius norm: 1 on the diagonal, 2 off it.
__device__ __forceinline__ int pair_weight(int a, int b) { return a == b ? 1 : 2; }

// Gram (upper triangle, kMaxPairs entries) of the K x K patch at (y0, x0) of a (C, H, W) image.
template <typename scalar_t, typename acc_t>
__device__ __forceinline__ void patch_gram(const scalar_t* image, int64_t H, int64_t W, int64_t y0, int64_t x0,
                                           int C, int K, acc_t G[kMaxPairs]) {
  const int64_t HW = H * W;
#pragma unroll
  for (int q = 0; q < kMaxPairs; ++q) G[q] = acc_t(0);
  for (int s = 0; s < K; ++s) {
    acc_t column[kMaxPairs];
#pragma unroll
    for (int q = 0; q < kMaxPairs; ++q) column[q] = acc_t(0);
    for (int r = 0; r < K; ++r) {
      acc_t v[kMaxChannels];
      load_pixel(image + (y0 + r) * W + x0 + s, HW, C, v);
      int q = 0;
#pragma unroll
      for (int a = 0; a < kMaxChannels; ++a) {
#pragma unroll
        for (int b = a; b < kMaxChannels; ++b) column[q++] += v[a] * v[b];
      }
    }
#pragma unroll
    for (int q = 0; q < kMaxPairs; ++q) G[q] += column[q];
  }
  // Pairs with a channel >= C are exact zeros even when a real channel holds +-inf (inf * 0 would be NaN
  // there, and a NaN in a padding entry would turn an infinite score or loss into NaN, unlike the CPU).
  const acc_t inv_area = acc_t(1) / acc_t(K * K);
  int q = 0;
#pragma unroll
  for (int a = 0; a < kMaxChannels; ++a) {
#pragma unroll
    for (int b = a; b < kMaxChannels; ++b, ++q) G[q] = b < C ? G[q] * inv_area : acc_t(0);
  }
}

// ||A - B||_F^2 over the full C x C matrices given by their upper triangles.
template <typename acc_t>
__device__ __forceinline__ acc_t frobenius2(const acc_t A[kMaxPairs], const acc_t* B) {
  acc_t sum = acc_t(0);
  int q = 0;
#pragma unroll
  for (int a = 0; a < kMaxChannels; ++a) {
#pragma unroll
    for (int b = a; b < kMaxChannels; ++b, ++q) {
      const acc_t d = A[q] - B[q];
      sum += acc_t(pair_weight(a, b)) * (d * d);
    }
  }
  return sum;
}

// The selection score ||Ge - Gc||^2 (+ beta ||Gg - Gc||^2 when beta != 0, as the reference).
template <typename acc_t>
__device__ __forceinline__ acc_t selection_score(const acc_t ge[kMaxPairs], const acc_t gg[kMaxPairs],
                                                 const acc_t* gc, acc_t beta) {
  acc_t s = frobenius2(ge, gc);
  if (beta != acc_t(0)) s += beta * frobenius2(gg, gc);
  return s;
}

// Mean over the C x C entries of criterion(Ge - Gc).
template <typename acc_t>
__device__ __forceinline__ acc_t gram_target_loss(const acc_t ge[kMaxPairs], const acc_t* gc, int C, int criterion) {
  acc_t sum = acc_t(0);
  int q = 0;
#pragma unroll
  for (int a = 0; a < kMaxChannels; ++a) {
#pragma unroll
    for (int b = a; b < kMaxChannels; ++b, ++q) sum += acc_t(pair_weight(a, b)) * criterion_value(ge[q] - gc[q], criterion);
  }
  return sum / acc_t(C * C);
}

// Mean over the patch's C K^2 values of criterion(e - c), e at (y0, x0) of sr, c at (cy0, cx0).
template <typename scalar_t, typename acc_t>
__device__ __forceinline__ acc_t pixel_target_loss(const scalar_t* sr, int64_t H, int64_t W, int64_t y0, int64_t x0,
                                                   const scalar_t* cand, int64_t cH, int64_t cW, int64_t cy0,
                                                   int64_t cx0, int C, int K, int criterion) {
  acc_t sum = acc_t(0);
  for (int c = 0; c < C; ++c) {
    for (int r = 0; r < K; ++r) {
      const scalar_t* e = sr + (c * H + y0 + r) * W + x0;
      const scalar_t* t = cand + (c * cH + cy0 + r) * cW + cx0;
      for (int s = 0; s < K; ++s) sum += criterion_value(static_cast<acc_t>(e[s]) - static_cast<acc_t>(t[s]), criterion);
    }
  }
  return sum / acc_t(C * K * K);
}

// Writes the gradient of one patch's loss (upstream g) into dx at (y0, x0): for the Gram target
// dx_u = (2 / K^2) D x_u with D = g criterion'(Ge - Gc) / C^2, for the pixel target
// g criterion'(e - c) / (C K^2).
template <typename scalar_t, typename acc_t>
__device__ __forceinline__ void patch_grad(const scalar_t* sr, scalar_t* dx, int64_t H, int64_t W, int64_t y0,
                                           int64_t x0, const scalar_t* cand, int64_t cH, int64_t cW, int64_t cy0,
                                           int64_t cx0, int C, int K, int target, int criterion, acc_t g) {
  const int64_t HW = H * W;
  if (target == kTargetGram) {
    acc_t ge[kMaxPairs], gc[kMaxPairs];
    patch_gram<scalar_t, acc_t>(sr, H, W, y0, x0, C, K, ge);
    patch_gram<scalar_t, acc_t>(cand, cH, cW, cy0, cx0, C, K, gc);
    const acc_t scale = g / acc_t(C * C) * (acc_t(2) / acc_t(K * K));
    acc_t D[kMaxChannels][kMaxChannels];
    int q = 0;
#pragma unroll
    for (int a = 0; a < kMaxChannels; ++a) {
#pragma unroll
      for (int b = a; b < kMaxChannels; ++b, ++q) {
        D[a][b] = D[b][a] = b < C ? scale * criterion_grad(ge[q] - gc[q], criterion) : acc_t(0);
      }
    }
    for (int r = 0; r < K; ++r) {
      for (int s = 0; s < K; ++s) {
        const int64_t pixel = (y0 + r) * W + x0 + s;
        acc_t v[kMaxChannels];
        load_pixel(sr + pixel, HW, C, v);
#pragma unroll
        for (int a = 0; a < kMaxChannels; ++a) {
          if (a < C) {
            acc_t sum = acc_t(0);
#pragma unroll
            for (int b = 0; b < kMaxChannels; ++b) sum += D[a][b] * v[b];
            dx[a * HW + pixel] = static_cast<scalar_t>(sum);
          }
        }
      }
    }
  } else {
    const acc_t scale = g / acc_t(C * K * K);
    const int64_t cHW = cH * cW;
    for (int c = 0; c < C; ++c) {
      for (int r = 0; r < K; ++r) {
        for (int s = 0; s < K; ++s) {
          const int64_t pixel = c * HW + (y0 + r) * W + x0 + s;
          const acc_t e = static_cast<acc_t>(sr[pixel]);
          const acc_t t = static_cast<acc_t>(cand[c * cHW + (cy0 + r) * cW + cx0 + s]);
          dx[pixel] = static_cast<scalar_t>(scale * criterion_grad(e - t, criterion));
        }
      }
    }
  }
}

}  // namespace cuda
}  // namespace gramgan
