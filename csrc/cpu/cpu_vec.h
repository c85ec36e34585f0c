// The one target header of the CPU kernels: the vector type Vec<T> of one target (kVecBytes of T: 64 with
// AVX-512, 32 with AVX2 and with the generic target, portable code lowered to whatever the baseline has),
// and the few operations GCC's vector extensions do not spell (fused multiply-add, truncation, permute,
// masked loads, gathers, all / any of a mask), written with that target's intrinsics; no other file names
// an intrinsic. Arithmetic and comparisons are the extensions' own (a comparison gives a -1 / 0 mask,
// `mask ? a : b` selects lane by lane). Not a once-only header: cpu_targets.h includes it per target.

constexpr int kVecBytes = GRAMGAN_TARGET_BYTES;

template <typename T>
struct VecOf {
  typedef T type __attribute__((vector_size(kVecBytes)));
};
template <typename T>
using Vec = typename VecOf<T>::type;

// Lanes of Vec<T>: the patches of a strip (cpu_strips.h).
template <typename T>
constexpr int kLanes = kVecBytes / static_cast<int>(sizeof(T));

using Floats = Vec<float>;
using Ints = Vec<int32_t>;
using Uints = Vec<uint32_t>;
constexpr int kVecLanes = kLanes<float>;

// The element type and the lane count of a vector type V.
template <typename V>
using ElementOf = std::remove_cv_t<std::remove_reference_t<decltype(std::declval<V>()[0])>>;
template <typename V>
constexpr int lanes_of = static_cast<int>(sizeof(V) / sizeof(ElementOf<V>));

// V with every lane x (an initialiser of identical lanes, which the compiler emits as one broadcast).
template <typename V, typename T, int... I>
inline V splat(T x, std::integer_sequence<int, I...>) {
  const ElementOf<V> e = static_cast<ElementOf<V>>(x);
  return V{(static_cast<void>(I), e)...};
}

template <typename V, typename T>
inline V splat(T x) {
  return splat<V>(x, std::make_integer_sequence<int, lanes_of<V>>{});
}

// 0, 1, ..., kVecLanes - 1.
inline Ints lane_indices() {
  Ints v;
  for (int i = 0; i < kVecLanes; ++i) v[i] = i;
  return v;
}

template <typename T>
inline Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename T>
inline void store(T* p, const Vec<T>& v) {
  std::memcpy(p, &v, sizeof(v));
}

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

#elif !defined(GRAMGAN_TARGET_GENERIC)
#error "cpu_vec.h is included by cpu_targets.h, which names the target"
#endif
