// CPU building blocks shared by the kernels, and which vector target runs. The kernels compute in T = float
// (float32 / float16 / bfloat16 inputs, converted once at the entry point) or double, with K and C as
// template parameters, compiled once per target (cpu_targets.h): generic, AVX2 + FMA, AVX-512 F/DQ/VL/BW.
// The CPU picks one once per process, capped by GRAMGAN_CPU_SIMD=generic|avx2 (as ATEN_CPU_CAPABILITY does
// for ATen). Threads split the work by patch-rows; every output element is written by one thread.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>  // for cpu_vec.h, which cpu_targets.h includes inside namespaces
#endif

#include "gramgan_common.h"
#include "gramgan_host.h"
#include "gramgan_patch.h"

namespace gramgan {
namespace cpu {

// The target this process runs: 0 generic, 1 AVX2 + FMA, 2 AVX-512 as well.
inline int vector_level_supported() {
#if defined(__x86_64__) && defined(__GNUC__)
  const char* forced = std::getenv("GRAMGAN_CPU_SIMD");
  if (forced != nullptr && std::strcmp(forced, "generic") == 0) return 0;
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
  const bool capped = forced != nullptr && std::strcmp(forced, "avx2") == 0;
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  return avx512 && !capped ? 2 : 1;
#else
  return 0;
#endif
}

inline int vector_level() {
  static const int level = vector_level_supported();
  return level;
}

// Candidates a float32 vector kernel can tell apart: it holds their indices as float values.
constexpr int64_t kMaxFloatIndex = int64_t{1} << 24;

// n values of T on the heap at 64-byte alignment, value-initialised: std::vector's allocator does not give
// vector types (cpu_vec.h) the alignment their loads and stores assume.
template <typename T>
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t n)
      : data_(static_cast<T*>(std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64 + 64))) {
    TORCH_CHECK(data_ != nullptr, "gramgan: out of memory for a ", n, "-value buffer");
    for (size_t i = 0; i < n; ++i) new (data_ + i) T();
  }
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  T& operator[](size_t i) { return data_[i]; }
  T* data() { return data_; }

 private:
  T* data_;
};

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

// Evaluates the call `target::__VA_ARGS__` for the target of vector_level(), target one of the namespaces
// cpu_targets.h compiles a kernel file into (in scope where the kernel file was included).
#if defined(__x86_64__) && defined(__GNUC__)
#define GRAMGAN_ON_VECTOR_TARGET(...)                          \
  (::gramgan::cpu::vector_level() == 2   ? avx512::__VA_ARGS__ \
   : ::gramgan::cpu::vector_level() == 1 ? avx2::__VA_ARGS__   \
                                         : generic::__VA_ARGS__)
#else
#define GRAMGAN_ON_VECTOR_TARGET(...) generic::__VA_ARGS__
#endif
