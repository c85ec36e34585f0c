// Compiles the kernels of the file GRAMGAN_TARGET_KERNELS once per vector target, each copy in its own
// namespace (generic::, and on x86-64 avx2:: and avx512:: under `#pragma GCC target`), after that target's
// cpu_vec.h and cpu_strips.h: kernels written once against Vec<T>, run through GRAMGAN_ON_VECTOR_TARGET
// (cpu_common.h). Include it in namespace gramgan::cpu, after cpu_common.h; not a once-only header.
#pragma GCC diagnostic ignored "-Wpsabi"  // vectors never cross a call between targets

namespace generic {
#define GRAMGAN_TARGET_GENERIC 1
#define GRAMGAN_TARGET_BYTES 32
#include "cpu_vec.h"
#include "cpu_strips.h"
#include GRAMGAN_TARGET_KERNELS
#undef GRAMGAN_TARGET_BYTES
#undef GRAMGAN_TARGET_GENERIC
}  // namespace generic

#if defined(__x86_64__) && defined(__GNUC__)

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
#define GRAMGAN_TARGET_AVX2 1
#define GRAMGAN_TARGET_BYTES 32
#include "cpu_vec.h"
#include "cpu_strips.h"
#include GRAMGAN_TARGET_KERNELS
#undef GRAMGAN_TARGET_BYTES
#undef GRAMGAN_TARGET_AVX2
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512vl,avx512bw")
namespace avx512 {
#define GRAMGAN_TARGET_AVX512 1
#define GRAMGAN_TARGET_BYTES 64
#include "cpu_vec.h"
#include "cpu_strips.h"
#include GRAMGAN_TARGET_KERNELS
#undef GRAMGAN_TARGET_BYTES
#undef GRAMGAN_TARGET_AVX512
}  // namespace avx512
#pragma GCC pop_options

#endif
#undef GRAMGAN_TARGET_KERNELS
