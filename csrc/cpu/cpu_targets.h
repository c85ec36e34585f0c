// Compiles the kernels of the file GRAMGAN_TARGET_KERNELS once per vector target, each copy in its own
// namespace (avx512::, avx2::) under `#pragma GCC target`, after that target's cpu_vec.h: kernels written
// once against Floats, compiled for every target that cpu_simd.h may pick at run time. Include it at
// namespace scope (gramgan::cpu), after <immintrin.h> (at file scope) and the headers the kernels need;
// not a once-only header.
#if defined(__x86_64__) && defined(__GNUC__)

#define GRAMGAN_VECTOR_TARGETS 1

#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512vl,avx512bw")
namespace avx512 {
#define GRAMGAN_TARGET_AVX512 1
#define GRAMGAN_TARGET_LANES 16
#include "cpu_vec.h"
#include GRAMGAN_TARGET_KERNELS
#undef GRAMGAN_TARGET_LANES
#undef GRAMGAN_TARGET_AVX512
}  // namespace avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
#define GRAMGAN_TARGET_AVX2 1
#define GRAMGAN_TARGET_LANES 8
#include "cpu_vec.h"
#include GRAMGAN_TARGET_KERNELS
#undef GRAMGAN_TARGET_LANES
#undef GRAMGAN_TARGET_AVX2
}  // namespace avx2
#pragma GCC pop_options

#endif
#undef GRAMGAN_TARGET_KERNELS
