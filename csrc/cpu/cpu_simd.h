// Which vector code the CPU kernels run, decided once per process from the CPU, and the wrappers that
// compile a kernel body for it.
//
// A kernel body f is compiled in several copies (run_generic: the baseline x86-64 or other target;
// run_avx2: AVX2 + FMA; run_avx512: AVX-512 F/DQ/VL/BW as well), each with everything f calls inlined
// into it (flatten), so the vector code follows the copy. GRAMGAN_CPU_SIMD=generic forces the baseline
// copy, GRAMGAN_CPU_SIMD=avx2 caps the choice at AVX2 (to compare the copies, e.g. in the tests).
#pragma once

#include <cstdlib>
#include <cstring>
#include <type_traits>

namespace gramgan {
namespace cpu {
namespace lanes {

// The highest level of vector code this process runs: 0 baseline, 1 AVX2 + FMA, 2 AVX-512 as well.
inline int simd_level_supported() {
#if defined(__x86_64__) || defined(__i386__)
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

inline int simd_level() {
  static const int level = simd_level_supported();
  return level;
}

// Whether run_simd takes the AVX2 + FMA copy.
inline bool use_avx2() { return simd_level() >= 1; }

// Whether run_lanes takes the AVX-512 copy with sixteen lanes.
inline bool use_avx512() { return simd_level() >= 2; }

#if defined(__x86_64__) || defined(__i386__)
template <typename F>
__attribute__((target("avx2,fma"), flatten)) void run_avx2(const F& f) {
  f();
}

template <typename F>
__attribute__((target("avx2,fma,avx512f,avx512dq,avx512vl,avx512bw"), flatten)) void run_avx512(const F& f) {
  f();
}
#endif

template <typename F>
__attribute__((flatten)) void run_generic(const F& f) {
  f();
}

// Runs f() compiled for AVX2 + FMA when this CPU has them, else compiled for the baseline target.
template <typename F>
void run_simd(const F& f) {
#if defined(__x86_64__) || defined(__i386__)
  if (use_avx2()) {
    run_avx2(f);
    return;
  }
#endif
  run_generic(f);
}

// Runs f(lanes) with lanes = std::integral_constant<int, 16> compiled for AVX-512 where the CPU has it,
// else f(std::integral_constant<int, 8>) as run_simd does: for kernels written for either width.
template <typename F>
void run_lanes(const F& f) {
#if defined(__x86_64__) || defined(__i386__)
  if (use_avx512()) {
    run_avx512([&] { f(std::integral_constant<int, 16>{}); });
    return;
  }
#endif
  run_simd([&] { f(std::integral_constant<int, 8>{}); });
}

}  // namespace lanes
}  // namespace cpu
}  // namespace gramgan
