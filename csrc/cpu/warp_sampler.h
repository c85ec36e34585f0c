// The warp sampling of the CPU sampled texture loss (texture_loss_sampled.cpp): rows of hr warped by an
// affine map, bilinear with reflection padding, exactly as affine_grid + grid_sample on the CPU compute
// them: the shared scalar code of gramgan_patch.h, and for float32 the vector kernel of
// warp_sampler_kernel.h (compiled per target, cpu_targets.h), which performs the same operations lane by
// lane, picked at run time with the level of cpu_simd.h.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "cpu_simd.h"
#include "gramgan_patch.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // vectors never cross a call between targets

namespace gramgan {
namespace cpu {

// Columns [x_begin, x_end) of row y of the warp by theta into out (channel c at out[c * plane + x]):
// the shared scalar sampling code. Never inlined, so that it keeps the generic code's rounding wherever it
// is called from (inlined into a vector target's code, its products could be fused).
template <typename T>
__attribute__((noinline)) inline void sample_warp_row(const SampledCandidates<T, T>& src, const T* theta, int64_t y,
                                                      int64_t x_begin, int64_t x_end, int64_t plane, T* out) {
  for (int64_t x = x_begin; x < x_end; ++x) {
    const BilinearPoint<T> p = warp_point(theta, src.xs[x], src.ys[y], src.H, src.W);
    for (int c = 0; c < src.C; ++c) out[c * plane + x] = bilinear_sample(src.hr + c * src.H * src.W, src.W, p);
  }
}

#define GRAMGAN_TARGET_KERNELS "warp_sampler_kernel.h"
#include "cpu_targets.h"

// Rows y0 .. y0 + K - 1 of the warp by theta into out (channel c at out[c * K * W], row r at + r * W): with
// vector, the vector kernel of the CPU's level (GRAMGAN_CPU_SIMD=generic: the scalar code), else the scalar
// code; ax, bx: x * theta[0] and x * theta[3] of every column (the vector kernel's).
inline void sample_warp_rows(bool vector, const SampledCandidates<float, float>& src, const float* theta,
                             const float* ax, const float* bx, int C, int K, int64_t y0, float* out) {
#ifdef GRAMGAN_VECTOR_TARGETS
  if (vector && lanes::use_avx512()) return avx512::sample_warp_rows(src, theta, ax, bx, C, K, y0, out);
  if (vector && lanes::use_avx2()) return avx2::sample_warp_rows(src, theta, ax, bx, C, K, y0, out);
#endif
  for (int r = 0; r < K; ++r) sample_warp_row(src, theta, y0 + r, 0, src.W, K * src.W, out + r * src.W);
}

}  // namespace cpu
}  // namespace gramgan
