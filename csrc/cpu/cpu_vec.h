// The one target header of the CPU kernels: the vector type of one SIMD target, and the few operations
// that GCC's vector extensions do not spell (a fused multiply-add, truncation, a permute, masked loads,
// gathers, all / any of a mask), written with that target's intrinsics. No other file names an intrinsic.
//
// Not a once-only header: cpu_targets.h includes it once per target (GRAMGAN_TARGET_AVX512 or
// GRAMGAN_TARGET_AVX2 defined), inside that target's namespace and under `#pragma GCC target`, followed by
// the kernels written against it, so each kernel is written once and compiled per target. Floats holds
// kVecLanes floats (16 with AVX-512, 8 with AVX2); arithmetic and comparisons are the vector extensions'
// own (a comparison gives an Ints mask of -1 / 0 lanes, `mask ? a : b` selects lane by lane).

constexpr int kVecLanes = GRAMGAN_TARGET_LANES;
typedef float Floats __attribute__((vector_size(4 * kVecLanes)));
typedef int32_t Ints __attribute__((vector_size(4 * kVecLanes)));
typedef uint32_t Uints __attribute__((vector_size(4 * kVecLanes)));

template <typename V, typename T>
inline V splat(T x) {
  V v;
  for (int i = 0; i < kVecLanes; ++i) v[i] = x;
  return v;
}

// 0, 1, ..., kVecLanes - 1.
inline Ints lane_indices() {
  Ints v;
  for (int i = 0; i < kVecLanes; ++i) v[i] = i;
  return v;
}

inline Floats load(const float* p) {
  Floats v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void store(float* p, const Floats& v) { std::memcpy(p, &v, sizeof(v)); }

// What the target's min / max instructions compute: b where either is NaN or they are equal.
inline Floats min(const Floats& a, const Floats& b) { return a < b ? a : b; }
inline Floats max(const Floats& a, const Floats& b) { return a > b ? a : b; }

// |v|: the sign bit cleared (NaN stays NaN).
inline Floats abs(const Floats& v) { return (Floats)((Ints)v & splat<Ints>(0x7fffffff)); }

#if defined(GRAMGAN_TARGET_AVX512)

// a b + c, rounded once.
inline Floats fma(const Floats& a, const Floats& b, const Floats& c) {
  return (Floats)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
}

// v rounded toward zero.
inline Floats trunc(const Floats& v) {
  return (Floats)_mm512_roundscale_ps((__m512)v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
}

// Lane l takes v[lanes[l]].
inline Floats permute(const Floats& v, const Ints& lanes) {
  return (Floats)_mm512_permutexvar_ps((__m512i)lanes, (__m512)v);
}

// Lanes [0, n) from p, the others 0, reading nothing from p[n] on.
inline Floats load_prefix(const float* p, int n) {
  return (Floats)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
}

// Lane l: base[at[l]] where mask, else 0 (reading nothing there).
inline Floats gather(const float* base, const Ints& at, const Ints& mask) {
  return (Floats)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), _mm512_movepi32_mask((__m512i)mask), (__m512i)at, base,
                                          4);
}

inline bool all(const Ints& mask) { return _mm512_movepi32_mask((__m512i)mask) == 0xFFFF; }
inline bool any(const Ints& mask) { return _mm512_movepi32_mask((__m512i)mask) != 0; }

#elif defined(GRAMGAN_TARGET_AVX2)

inline Floats fma(const Floats& a, const Floats& b, const Floats& c) {
  return (Floats)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
}

inline Floats trunc(const Floats& v) {
  return (Floats)_mm256_round_ps((__m256)v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
}

inline Floats permute(const Floats& v, const Ints& lanes) {
  return (Floats)_mm256_permutevar8x32_ps((__m256)v, (__m256i)lanes);
}

inline Floats load_prefix(const float* p, int n) {
  return (Floats)_mm256_maskload_ps(p, (__m256i)(lane_indices() < splat<Ints>(n)));
}

inline Floats gather(const float* base, const Ints& at, const Ints& mask) {
  return (Floats)_mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, (__m256i)at, (__m256)mask, 4);
}

inline bool all(const Ints& mask) { return _mm256_movemask_ps((__m256)mask) == 0xFF; }
inline bool any(const Ints& mask) { return _mm256_movemask_ps((__m256)mask) != 0; }

#else
#error "cpu_vec.h is included by cpu_targets.h, which names the target"
#endif
