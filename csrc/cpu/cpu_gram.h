// CPU building blocks shared by the patch-Gram and texture-loss kernels.
//
// The kernels compute in T = float (float32 / float16 / bfloat16 inputs, converted once at the entry
// point) or T = double, with the patch size K and the channel count C as template parameters. A patch
// row of K values is one SIMD value (GCC / clang vector extension), so the per-patch arithmetic is
// vectorised whatever the inlining context, and the C(C+1)/2 Gram accumulators stay in registers.
// Grams are kept as their upper triangle ("pairs": (0,0), (0,1), ..., (C-1,C-1)); threads split the
// work by patch-rows (at::parallel_for); every output element is written by one thread.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "gramgan_common.h"
#include "gramgan_host.h"

namespace gramgan {
namespace cpu {

template <int C>
constexpr int pair_count() {
  return C * (C + 1) / 2;
}

// Frobenius weight of every pair: 1 on the diagonal, 2 off it (a C x C matrix has (a, b) and (b, a)).
template <int C>
struct PairWeights {
  int w[pair_count<C>()] = {};
  constexpr PairWeights() {
    int q = 0;
    for (int a = 0; a < C; ++a) {
      for (int b = a; b < C; ++b, ++q) w[q] = a == b ? 1 : 2;
    }
  }
};

// One row of a patch: K values of T in one SIMD value.
template <typename T, int K>
struct RowVec {
  typedef T type __attribute__((vector_size(sizeof(T) * K)));
};

// (By reference, not by value: vector values in signatures would change the ABI without AVX.)
template <typename T, int K>
inline void load_row(typename RowVec<T, K>::type& v, const T* p) {
  std::memcpy(&v, p, sizeof(v));
}

template <typename T, int K>
inline void store_row(T* p, const typename RowVec<T, K>::type& v) {
  std::memcpy(p, &v, sizeof(v));
}

// Gram (pairs) of the K x K patch whose top-left pixel of channel 0 is at p (channel stride HW, row
// stride W), written to g[q * g_stride]. Sums run down each column, then across the columns.
template <typename T, int K, int C>
inline void patch_gram(const T* __restrict__ p, int64_t HW, int64_t W, T* __restrict__ g, int64_t g_stride) {
  using V = typename RowVec<T, K>::type;
  constexpr int P = pair_count<C>();
  V acc[P];
  for (int q = 0; q < P; ++q) acc[q] = V{};
  for (int r = 0; r < K; ++r) {
    V v[C];
    for (int c = 0; c < C; ++c) load_row<T, K>(v[c], p + c * HW + r * W);
    int q = 0;
    for (int a = 0; a < C; ++a) {
      for (int b = a; b < C; ++b, ++q) acc[q] += v[a] * v[b];
    }
  }
  const T inv_area = T(1) / T(K * K);
  for (int q = 0; q < P; ++q) {
    T sum = T(0);
    for (int s = 0; s < K; ++s) sum += acc[q][s];
    g[q * g_stride] = sum * inv_area;
  }
}

// Grams of all W/K patches of patch-row i of a (C, H, W) image: patch j's pair q at
// G[q * pair_stride + j * patch_stride].
template <typename T, int K, int C>
inline void row_grams(const T* image, int64_t H, int64_t W, int64_t i, T* G, int64_t pair_stride,
                      int64_t patch_stride) {
  const T* row = image + i * K * W;
  for (int64_t j = 0; j < W / K; ++j) {
    patch_gram<T, K, C>(row + j * K, H * W, W, G + j * patch_stride, pair_stride);
  }
}

// Mean over a patch's C K^2 values of criterion(e - c); e and c point at the patches' top-left pixels
// of images (C, e_H, e_W) and (C, c_H, c_W).
template <typename T, int K, int C>
inline T pixel_loss(const T* e, int64_t e_H, int64_t e_W, const T* c, int64_t c_H, int64_t c_W, int criterion) {
  T sum = T(0);
  for (int ch = 0; ch < C; ++ch) {
    for (int r = 0; r < K; ++r) {
      const T* er = e + ch * e_H * e_W + r * e_W;
      const T* cr = c + ch * c_H * c_W + r * c_W;
      for (int s = 0; s < K; ++s) sum += criterion_value(er[s] - cr[s], criterion);
    }
  }
  return sum / T(C * K * K);
}

// Mean over the C x C entries of criterion(ge - gc), both in pairs layout.
template <typename T, int C>
inline T gram_loss(const T* ge, int64_t ge_stride, const T* gc, int64_t gc_stride, int criterion) {
  constexpr PairWeights<C> weights;
  T sum = T(0);
  for (int q = 0; q < pair_count<C>(); ++q) {
    sum += T(weights.w[q]) * criterion_value(ge[q * ge_stride] - gc[q * gc_stride], criterion);
  }
  return sum / T(C * C);
}

// Writes the gradient of one patch's texture loss (upstream g) into the patch of dx at dx_p (same
// strides as the SR patch e, from a (C, H, W) image; c from a (C, c_H, c_W) image). Gram target:
// dx_u = (2/K^2) D x_u with D = g criterion'(Ge - Gc) / C^2 (symmetric); pixel target:
// g criterion'(e - c) / (C K^2).
template <typename T, int K, int C>
inline void patch_grad(const T* e, int64_t H, int64_t W, const T* c, int64_t c_H, int64_t c_W, T g, int target,
                       int criterion, T* dx_p) {
  const int64_t HW = H * W;
  if (target == kTargetGram) {
    using V = typename RowVec<T, K>::type;
    constexpr int P = pair_count<C>();
    T ge[P], gc[P];
    patch_gram<T, K, C>(e, HW, W, ge, 1);
    patch_gram<T, K, C>(c, c_H * c_W, c_W, gc, 1);
    const T scale = g / T(C * C) * (T(2) / T(K * K));
    T D[C][C];
    int q = 0;
    for (int a = 0; a < C; ++a) {
      for (int b = a; b < C; ++b, ++q) D[a][b] = D[b][a] = scale * criterion_grad(ge[q] - gc[q], criterion);
    }
    for (int r = 0; r < K; ++r) {
      V v[C];
      for (int ch = 0; ch < C; ++ch) load_row<T, K>(v[ch], e + ch * HW + r * W);
      for (int a = 0; a < C; ++a) {
        V out = V{};
        for (int b = 0; b < C; ++b) out += D[a][b] * v[b];
        store_row<T, K>(dx_p + a * HW + r * W, out);
      }
    }
  } else {
    const T scale = g / T(C * K * K);
    for (int ch = 0; ch < C; ++ch) {
      for (int r = 0; r < K; ++r) {
        const T* er = e + ch * HW + r * W;
        const T* cr = c + ch * c_H * c_W + r * c_W;
        T* out = dx_p + ch * HW + r * W;
        for (int s = 0; s < K; ++s) out[s] = scale * criterion_grad(er[s] - cr[s], criterion);
      }
    }
  }
}

// Runs f(std::integral_constant<int, C>{}) for the runtime channel count C (1 to 4).
template <typename F>
inline void dispatch_channels(int64_t channels, F&& f) {
  switch (channels) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    default: TORCH_CHECK(false, "gramgan: the fused kernels support 1 to 4 channels, got ", channels);
  }
}

// Calls f(T{}, K-constant, C-constant) for the computation type (float or double), k and C; the
// caller converts float16 / bfloat16 inputs to float32 first.
template <typename F>
inline void dispatch_kernel(at::ScalarType compute, int64_t k, int64_t channels, F&& f) {
  dispatch_patch_size(k, [&](auto kc) {
    dispatch_channels(channels, [&](auto cc) {
      if (compute == at::kDouble) {
        f(double{}, kc, cc);
      } else {
        f(float{}, kc, cc);
      }
    });
  });
}

}  // namespace cpu
}  // namespace gramgan
