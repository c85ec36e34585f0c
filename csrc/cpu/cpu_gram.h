// CPU building blocks shared by the patch-Gram and texture-loss kernels.
//
// The kernels compute in T = float (float32 / float16 / bfloat16 inputs, converted once at the entry
// point) or T = double, with the patch size K and the channel count C as template parameters. A patch
// row of K values is one SIMD value (GCC / clang vector extension), so the per-patch arithmetic is
// vectorised whatever the inlining context, and the C(C+1)/2 Gram accumulators stay in registers.
// The arithmetic itself is the shared per-patch code of csrc/include/gramgan_patch.h (also what the
// CUDA kernels call), instantiated with NC = C. Grams are kept as their upper triangle ("pairs": (0,0), (0,1), ...,
// (C-1,C-1)); threads split the work by patch-rows (at::parallel_for); every output element is written by one thread.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "gramgan_common.h"
#include "gramgan_host.h"
#include "gramgan_patch.h"

namespace gramgan {
namespace cpu {

// Hands out the tasks [0, n) in chunks to at::parallel_for's threads as they ask for them: worker(next)
// runs once per thread (set up its buffers there), then takes tasks with next(task) until it returns
// false. On shared or unequal cores a thread that is ahead takes more, so the last one to finish waits
// less than after parallel_for's fixed split.
template <typename Worker>
inline void parallel_tasks(int64_t n, const Worker& worker) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t chunk = std::max<int64_t>(1, n / (8 * threads));
  std::atomic<int64_t> claimed{0};
  at::parallel_for(0, std::min(threads, std::max<int64_t>(1, (n + chunk - 1) / chunk)), 1, [&](int64_t, int64_t) {
    int64_t at = 0, end = 0;  // the tasks of this thread's current chunk still to run
    auto next = [&](int64_t& task) {
      if (at == end) {
        at = claimed.fetch_add(chunk, std::memory_order_relaxed);
        end = std::min(n, at + chunk);
        if (at >= n) return false;
      }
      task = at++;
      return true;
    };
    worker(next);
  });
}

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
// stride W), written to g[q * g_stride]: the rows are SIMD values, so each lane sums one column, then
// the lanes are summed (the order of the CUDA kernels' patch_gram).
template <typename T, int K, int C>
inline void patch_gram(const T* __restrict__ p, int64_t HW, int64_t W, T* __restrict__ g, int64_t g_stride) {
  using V = typename RowVec<T, K>::type;
  constexpr int P = pair_count<C>();
  V acc[P];
  for (int q = 0; q < P; ++q) acc[q] = V{};
  for (int r = 0; r < K; ++r) {
    V v[C];
    for (int c = 0; c < C; ++c) load_row<T, K>(v[c], p + c * HW + r * W);
    add_outer_products<C>(v, acc);
  }
  T G[P];
  for (int q = 0; q < P; ++q) {
    T sum = T(0);
    for (int s = 0; s < K; ++s) sum += acc[q][s];
    G[q] = sum;
  }
  finish_gram<C>(G, C, K);
  for (int q = 0; q < P; ++q) g[q * g_stride] = G[q];
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

// Writes D x_u for every pixel u of the K x K patch at x into dx (same strides HW, W), a row of K
// pixels at a time.
template <typename T, int K, int C>
inline void apply_patch_rows(const T (*D)[C], const T* x, int64_t HW, int64_t W, T* dx) {
  using V = typename RowVec<T, K>::type;
  for (int r = 0; r < K; ++r) {
    V v[C];
    for (int c = 0; c < C; ++c) load_row<T, K>(v[c], x + c * HW + r * W);
    for (int a = 0; a < C; ++a) {
      V out;
      matrix_row_times<C>(D, v, a, out);
      store_row<T, K>(dx + a * HW + r * W, out);
    }
  }
}

// The patch loops of the shared per-patch code (gramgan_patch.h's PixelLoops) with SIMD rows.
template <typename T, int K, int C>
struct RowLoops {
  static void gram(const T* p, int64_t HW, int64_t W, int /*C*/, int /*K*/, T* G) {
    patch_gram<T, K, C>(p, HW, W, G, 1);
  }
  static void apply(const T (*D)[C], const T* x, int64_t HW, int64_t W, int /*C*/, int /*K*/, T* dx) {
    apply_patch_rows<T, K, C>(D, x, HW, W, dx);
  }
};

// Folds one candidate's Grams gc into the running argmin of n patches (ge, gg, gc, g_best in pairs
// layout with stride n), with the shared selection score and rule (gramgan_patch.h).
template <typename T, int C>
inline void update_local_selection(const T* ge, const T* gg, const T* gc, int64_t n, T beta, int32_t candidate,
                                   T* score, T* best, int32_t* index, T* g_best) {
  constexpr int P = pair_count<C>();
  for (int64_t j = 0; j < n; ++j) score[j] = selection_score<C>(ge + j, gg + j, n, gc + j, n, beta);
  for (int64_t j = 0; j < n; ++j) {
    const T key = selection_key(score[j]);
    if (improves(key, best[j], candidate == 0)) {
      best[j] = key;
      index[j] = candidate;
      for (int q = 0; q < P; ++q) g_best[q * n + j] = gc[q * n + j];
    }
  }
}

// Where global candidate m lies: its level image (of batch element b) and top-left pixel offset.
template <typename T, int K, int C>
const T* global_patch(const Levels& levels, int64_t b, int64_t m, int64_t* H, int64_t* W) {
  const size_t l = levels.level_of(m);
  *H = levels.height[l];
  *W = levels.width[l];
  const int64_t q = m - levels.offset[l], Wp = *W / K;
  return levels.images[l].data_ptr<T>() + b * C * *H * *W + (q / Wp) * K * *W + (q % Wp) * K;
}

// Runs f(n, b, i, j) for every patch (b, i, j) of a (B, Hp, Wp) grid, n = (b * Hp + i) * Wp + j its flat
// index; threads split the patch-rows.
template <typename F>
inline void for_each_patch(int64_t B, int64_t Hp, int64_t Wp, const F& f) {
  at::parallel_for(0, B * Hp, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      for (int64_t j = 0; j < Wp; ++j) f(t * Wp + j, t / Hp, t % Hp, j);
    }
  });
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
