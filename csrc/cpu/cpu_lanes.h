// Float32 building blocks of the texture-loss kernels with eight patches per SIMD value.
//
// A "strip" is 8 neighbouring K x K patches of one patch-row (8K pixels wide). Its Grams are computed
// with the pixels of a row as the lanes (pure vertical multiply-adds down each pixel column), then one
// short horizontal reduction per pair turns the column sums into one Gram entry per lane, lane p being
// patch p of the strip. From there on (scores, the argmin, losses, gradient matrices) every operation
// is vertical: one lane per patch. Every lane runs the same sequence of operations, so two identical
// patches get bit-identical Grams wherever they lie (exact ties stay exact).
//
// The kernels are compiled twice: for AVX2 + FMA (chosen at run time when the CPU has them) and for
// the baseline x86-64 / other targets (cpu_simd.h); the local and sampled forwards also have a copy with
// sixteen patches per value for AVX-512 (cpu_lanes_wide.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

#include <c10/util/Exception.h>

#include "cpu_simd.h"
#include "gramgan_patch.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // 32-byte vectors never cross a non-inlined call

namespace gramgan {
namespace cpu {
namespace lanes {

constexpr int kLanes = 8;  // patches per strip
typedef float F8 __attribute__((vector_size(32)));

#define GRAMGAN_LANES_UNROLL _Pragma("GCC unroll 16")

inline F8 splat(float x) { return F8{x, x, x, x, x, x, x, x}; }

// Lanes of a SIMD value type V (8 or 16 floats or int32s), V with every lane x, and the int32 type of
// V's lane count (what its comparisons return).
template <typename V>
constexpr int lane_count() {
  return static_cast<int>(sizeof(V) / 4);
}

template <typename V, typename T>
inline V broadcast(T x) {
  V v;
  for (int i = 0; i < lane_count<V>(); ++i) v[i] = x;
  return v;
}

template <typename V>
struct IntLanesOf {
  typedef int32_t type __attribute__((vector_size(sizeof(V))));
};
template <typename V>
using IntLanes = typename IntLanesOf<V>::type;

inline F8 load8(const float* p) {
  F8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void store8(float* p, const F8& v) { std::memcpy(p, &v, sizeof(v)); }

// [a0+a1, a2+a3, b0+b1, b2+b3, a4+a5, a6+a7, b4+b5, b6+b7] (what AVX's vhaddps computes).
inline F8 hadd(const F8& a, const F8& b) {
  return __builtin_shufflevector(a, b, 0, 2, 8, 10, 4, 6, 12, 14) +
         __builtin_shufflevector(a, b, 1, 3, 9, 11, 5, 7, 13, 15);
}

// Pixel lanes [8t, 8t + 8) of a strip row from per-patch lanes d: lane l gets d[(8t + l) / K].
template <int K, int t>
inline F8 patch_to_pixels(const F8& d) {
  return __builtin_shufflevector(d, d, (8 * t + 0) / K, (8 * t + 1) / K, (8 * t + 2) / K, (8 * t + 3) / K,
                                 (8 * t + 4) / K, (8 * t + 5) / K, (8 * t + 6) / K, (8 * t + 7) / K);
}

// Patches of strip g (patches [N g, N g + N)) of a patch-row of Wp patches that lie in the image.
template <int N = kLanes>
inline int strip_valid(int64_t Wp, int64_t g) {
  return static_cast<int>(Wp - g * N < N ? Wp - g * N : N);
}

// Writes the first `valid` lanes of v to out[0..valid), converted to Out.
template <typename Out, typename Lanes>
inline void store_lanes(Out* out, const Lanes& v, int valid) {
  for (int p = 0; p < valid; ++p) out[p] = static_cast<Out>(v[p]);
}

// n values of T (F8, RunningMin, ...) on the heap at 64-byte alignment (std::vector does not promise
// the 32 bytes of an F8 everywhere), value-initialised.
template <typename T>
class LaneBuffer {
 public:
  explicit LaneBuffer(size_t n) : data_(static_cast<T*>(std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64 + 64))) {
    TORCH_CHECK(data_ != nullptr, "gramgan: out of memory for a ", n, "-value buffer");
    for (size_t i = 0; i < n; ++i) new (data_ + i) T();
  }
  ~LaneBuffer() { std::free(data_); }
  LaneBuffer(const LaneBuffer&) = delete;
  LaneBuffer& operator=(const LaneBuffer&) = delete;
  T& operator[](size_t i) { return data_[i]; }

 private:
  T* data_;
};

// Where a strip's pixels are: channel 0's top-left pixel and the channel / row strides.
template <typename Pixel>
struct StripOf {
  Pixel* p;
  int64_t HW, W;

  // Pixels [N t, N t + N) of row r of channel c, N the lanes of V.
  template <int K, typename V = F8>
  V load(int c, int r, int t) const {
    V v;
    std::memcpy(&v, p + c * HW + r * W + lane_count<V>() * t, sizeof(v));
    return v;
  }
};
using Strip = StripOf<const float>;  // read
using OutStrip = StripOf<float>;     // written

// The strip g (of N patches) of patch-row i of a (C, H, W) image.
template <int K, int N = kLanes>
inline Strip image_strip(const float* image, int64_t H, int64_t W, int64_t i, int64_t g) {
  return {image + i * K * W + g * N * K, H * W, W};
}

// Floats of a strip copied out of an image (C channels of K rows of N K pixels).
template <int K, int C, int N = kLanes>
constexpr int strip_floats() {
  return C * K * N * K;
}

// Eight patches from anywhere, side by side as a strip: lane p's patch has its top-left pixel of
// channel 0 at p[lane] and its own channel / row strides (unused lanes point at zeros, strides 0).
// Loads assemble the pixel vectors in registers (no copy through memory, whose narrow stores a wide
// load could not forward from).
struct GatheredStrip {
  typedef float F4 __attribute__((vector_size(16)));
  typedef float F2 __attribute__((vector_size(8)));
  const float* p[kLanes];
  int64_t HW[kLanes], W[kLanes];

  const float* at(int lane, int c, int r) const { return p[lane] + c * HW[lane] + r * W[lane]; }

  template <int K, typename V = F8>
  F8 load(int c, int r, int t) const {
    static_assert(std::is_same_v<V, F8>, "gathered strips hold eight patches");
    if constexpr (K == 8) {
      return load8(at(t, c, r));
    } else if constexpr (K == 4) {
      F4 lo, hi;
      std::memcpy(&lo, at(2 * t, c, r), sizeof(lo));
      std::memcpy(&hi, at(2 * t + 1, c, r), sizeof(hi));
      return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7);
    } else {
      F2 a, b, d, e;
      std::memcpy(&a, at(4 * t, c, r), sizeof(a));
      std::memcpy(&b, at(4 * t + 1, c, r), sizeof(b));
      std::memcpy(&d, at(4 * t + 2, c, r), sizeof(d));
      std::memcpy(&e, at(4 * t + 3, c, r), sizeof(e));
      const F4 lo = __builtin_shufflevector(a, b, 0, 1, 2, 3), hi = __builtin_shufflevector(d, e, 0, 1, 2, 3);
      return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7);
    }
  }
};

// K zeros: what the unused lanes of a GatheredStrip read.
inline const float* zero_patch() {
  alignas(32) static const float zeros[8] = {};
  return zeros;
}

// The first `valid` patches of the strip at s copied into scratch (the other lanes zero): the layout
// of a strip whose lanes are not all inside the image.
template <int K, int C, int N = kLanes>
inline Strip pad_strip(const Strip& s, int valid, float* scratch) {
  constexpr int64_t W = N * K;
  std::memset(scratch, 0, sizeof(float) * strip_floats<K, C, N>());
  for (int c = 0; c < C; ++c) {
    for (int r = 0; r < K; ++r)
      std::memcpy(scratch + (c * K + r) * W, s.p + c * s.HW + r * s.W, sizeof(float) * valid * K);
  }
  return {scratch, K * W, W};
}

// Column sums of pixel vector t (pixels [N t, N t + N) of each row, N the lanes of V) of strip s (a Strip,
// or a GatheredStrip for V = F8): acc[q] lane l is the sum over the K rows of the pair-q product of that
// pixel column.
template <int K, int C, typename Source, typename V>
inline void column_sums(const Source& s, int t, V* acc) {
  constexpr int P = pair_count<C>();
  GRAMGAN_LANES_UNROLL
  for (int q = 0; q < P; ++q) acc[q] = V{};
  GRAMGAN_LANES_UNROLL
  for (int r = 0; r < K; ++r) {
    V v[C];
    GRAMGAN_LANES_UNROLL
    for (int c = 0; c < C; ++c) v[c] = s.template load<K, V>(c, r, t);
    add_outer_products<C>(v, acc);
  }
}

// hadd of the column sums of pixel vectors t and t + 1, pair by pair.
template <int K, int C, typename Source>
inline void column_pair_sums(const Source& s, int t, F8* h) {
  constexpr int P = pair_count<C>();
  F8 a[P], b[P];
  column_sums<K, C>(s, t, a);
  column_sums<K, C>(s, t + 1, b);
  GRAMGAN_LANES_UNROLL
  for (int q = 0; q < P; ++q) h[q] = hadd(a[q], b[q]);
}

// The Grams (pairs, lanes = patches) of the 8 patches of strip s. Each pixel column is summed down the
// K rows (vertical multiply-adds), then the K columns of a patch are added pairwise with hadd
// (((c0 + c1) + (c2 + c3)) + ...), reduced as soon as two neighbouring pixel vectors are done so that
// few partial sums are live; the last shuffle puts patch p in lane p.
template <int K, int C, typename Source>
inline void strip_gram(const Source& s, F8* G) {
  static_assert(covers(KernelPatchSizes{}, K), "strips are written for the covered patch sizes");
  constexpr int P = pair_count<C>();
  const F8 inv_area = splat(1.0f / static_cast<float>(K * K));
  F8 h[P], h2[P];
  column_pair_sums<K, C>(s, 0, h);  // K = 2: patches 0 1 4 5 2 3 6 7
  if constexpr (K == 2) {
    GRAMGAN_LANES_UNROLL
    for (int q = 0; q < P; ++q) G[q] = __builtin_shufflevector(h[q], h[q], 0, 1, 4, 5, 2, 3, 6, 7) * inv_area;
    return;
  }
  column_pair_sums<K, C>(s, 2, h2);
  GRAMGAN_LANES_UNROLL
  for (int q = 0; q < P; ++q) h[q] = hadd(h[q], h2[q]);  // K = 4: patches 0 2 4 6 1 3 5 7
  if constexpr (K == 4) {
    GRAMGAN_LANES_UNROLL
    for (int q = 0; q < P; ++q) G[q] = __builtin_shufflevector(h[q], h[q], 0, 4, 1, 5, 2, 6, 3, 7) * inv_area;
    return;
  }
  // K = 8: h holds columns 0-3 of patches 0-3 then columns 4-7 of them; the same for patches 4-7.
  F8 y[P], y2[P];
  column_pair_sums<K, C>(s, 4, y);
  column_pair_sums<K, C>(s, 6, y2);
  GRAMGAN_LANES_UNROLL
  for (int q = 0; q < P; ++q) {
    const F8 x = h[q], yq = hadd(y[q], y2[q]);
    G[q] = (__builtin_shufflevector(x, yq, 0, 1, 2, 3, 8, 9, 10, 11) +
            __builtin_shufflevector(x, yq, 4, 5, 6, 7, 12, 13, 14, 15)) *
           inv_area;
  }
}

// Asks for the cache lines of the strip `ahead` strips to the right of s (software prefetch: a strip
// reads 2 C K short row segments, more streams than the hardware prefetchers follow).
template <int K, int C, int N = kLanes>
inline void prefetch_strip(const Strip& s, int ahead) {
  constexpr int kLineFloats = 16;
  GRAMGAN_LANES_UNROLL
  for (int c = 0; c < C; ++c) {
    GRAMGAN_LANES_UNROLL
    for (int r = 0; r < K; ++r) {
      const float* row = s.p + c * s.HW + r * s.W + ahead * N * K;
      GRAMGAN_LANES_UNROLL
      for (int x = 0; x < N * K; x += kLineFloats) __builtin_prefetch(row + x);
    }
  }
}

// Strip gram of `valid` (1..8) patches starting at s; lanes >= valid hold zeros' Grams.
template <int K, int C>
inline void strip_gram(const Strip& s, int valid, float* scratch, F8* G) {
  strip_gram<K, C>(valid == kLanes ? s : pad_strip<K, C>(s, valid, scratch), G);
}

// sum over the full C x C matrices of criterion(A - B), from pairs (lanes = patches), B's pair q read as
// pair_of(q): the diagonal and the (doubled) off-diagonal terms are summed apart, then added.
template <int C, typename V, typename PairOf>
inline V pair_criterion_sum_of(const V* A, const PairOf& pair_of, int criterion) {
  V diagonal = V{}, off = V{};
  int q = 0;
  GRAMGAN_LANES_UNROLL
  for (int a = 0; a < C; ++a) {
    GRAMGAN_LANES_UNROLL
    for (int b = a; b < C; ++b, ++q) {
      const V d = A[q] - pair_of(q);
      const V v = criterion == kCriterionMse ? d * d : (d < V{} ? -d : d);
      if (a == b) {
        diagonal += v;
      } else {
        off += v;
      }
    }
  }
  return diagonal + broadcast<V>(2.0f) * off;
}

// pair_criterion_sum_of with B's pairs as SIMD values.
template <int C, typename V>
inline V pair_criterion_sum(const V* A, const V* B, int criterion) {
  return pair_criterion_sum_of<C>(A, [B](int q) { return B[q]; }, criterion);
}

// ||A - B||_F^2 with A broadcast (one candidate) and B in lanes (8 queries at b, pair stride b_stride).
template <int C>
inline F8 frobenius2_broadcast(const F8* A, const float* B, int64_t b_stride) {
  return pair_criterion_sum_of<C>(A, [B, b_stride](int q) { return load8(B + q * b_stride); }, kCriterionMse);
}

// The selection key of the running argmin, cheaper than selection_key and equivalent under `<` against
// a best that started at +inf: +inf becomes the largest float, NaN stays NaN (and never compares less).
template <typename V>
inline V candidate_key(const V& score) {
  const V largest = broadcast<V>(std::numeric_limits<float>::max());
  return largest < score ? largest : score;
}

// A running argmin over candidates, lanes = patches: best starts at +inf, index at 0, and a candidate
// replaces the best only when its key is strictly smaller, so ties keep the lowest index, NaN never
// wins, all-NaN keeps index 0, and +inf beats NaN (the rule of docs/ops.md). (Every blend selects on a
// comparison written in place: GCC turns a 16-lane comparison kept as a value into scalar code, and an
// int32 selection on a float comparison too, hence Index = V, float indices, exact below 2^24, for the
// few candidates of the local scope.)
template <typename V = F8, typename Index = IntLanes<V>>
struct RunningMin {
  V best = broadcast<V>(std::numeric_limits<float>::infinity());
  Index index = Index{};

  // Folds in a candidate by its selection key (candidate_key).
  void take(const V& key, int32_t candidate) {
    index = key < best ? broadcast<Index>(candidate) : index;
    best = key < best ? key : best;
  }

  void update(const V& score, int32_t candidate) { take(candidate_key(score), candidate); }
};

// The local forward's running selection of one strip (lanes = patches), fed one candidate at a time:
// the score ||Ge - Gc||^2 (+ beta ||Gg - Gc||^2, Gg the ground truth's Grams, which candidate 0 sets)
// goes into the running argmin, and with gram_loss the loss criterion(Ge - Gc) and the residual
// Ge - Gc are kept where the candidate is selected (candidate 0's always: it stays selected when every
// score is NaN).
template <int C, typename V = F8>
struct StripSelection {
  RunningMin<V, V> run;
  V gg[pair_count<C>()];
  V residual[pair_count<C>()];
  V loss = V{};

  void add(const V* ge, const V* gc, int32_t m, float beta, bool gram_loss, int criterion) {
    V score = pair_criterion_sum<C>(ge, gc, kCriterionMse);
    if (beta != 0.0f) {
      if (m == 0) std::copy(gc, gc + pair_count<C>(), gg);
      score += broadcast<V>(beta) * pair_criterion_sum<C>(gg, gc, kCriterionMse);
    }
    const V key = candidate_key(score);
    if (gram_loss) {
      // Without the ground-truth term the mse loss is the score itself.
      const V l = criterion == kCriterionMse && beta == 0.0f ? score : pair_criterion_sum<C>(ge, gc, criterion);
      if (m == 0) {
        loss = l;
        GRAMGAN_LANES_UNROLL
        for (int q = 0; q < pair_count<C>(); ++q) residual[q] = ge[q] - gc[q];
      } else {
        loss = key < run.best ? l : loss;
        GRAMGAN_LANES_UNROLL
        for (int q = 0; q < pair_count<C>(); ++q) residual[q] = key < run.best ? ge[q] - gc[q] : residual[q];
      }
    }
    run.take(key, m);
  }

  // Stores the residual's C x C entries of the first `valid` lanes: entry (a, b) of lane p at
  // out[(a C + b) stride + p].
  void store_residual(float* out, int64_t stride, int valid) const {
    int q = 0;
    GRAMGAN_LANES_UNROLL
    for (int a = 0; a < C; ++a) {
      GRAMGAN_LANES_UNROLL
      for (int b = a; b < C; ++b, ++q) {
        for (int e : {a * C + b, b * C + a}) {
          if (valid == lane_count<V>()) {
            std::memcpy(out + e * stride, &residual[q], sizeof(V));
          } else {
            store_lanes(out + e * stride, residual[q], valid);
          }
          if (a == b) break;
        }
      }
    }
  }
};

}  // namespace lanes
}  // namespace cpu
}  // namespace gramgan
