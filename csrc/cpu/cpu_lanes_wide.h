// Sixteen patches per SIMD value (AVX-512): the strip Grams of cpu_lanes.h for strips of sixteen
// neighbouring patches, for the local and sampled forwards (run through lanes::run_lanes).
//
// The pixel columns are summed down the rows as in the eight-lane code, then reduced to one value per
// patch by in-order pairwise sums (((c0 + c1) + (c2 + c3)) + ...), the association of the eight-lane
// strip_gram: both give the same Grams to the bit, so selections, losses and residuals do not depend on
// the width. Everything after the Grams (scores, running argmin, losses) is the lane-generic code of
// cpu_lanes.h.
#pragma once

#include "cpu_lanes.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // 64-byte vectors never cross a non-inlined call

namespace gramgan {
namespace cpu {
namespace lanes {

typedef float F16 __attribute__((vector_size(64)));

// The float SIMD value of N lanes (8 or 16).
template <int N>
struct FloatLanesOf;
template <>
struct FloatLanesOf<8> {
  using type = F8;
};
template <>
struct FloatLanesOf<16> {
  using type = F16;
};
template <int N>
using FloatLanes = typename FloatLanesOf<N>::type;

// In-order pairwise sums of two sixteen-lane values: lane i < 8 is a[2i] + a[2i + 1], lane 8 + i is
// b[2i] + b[2i + 1].
inline F16 pair_sums(const F16& a, const F16& b) {
  return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) +
         __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}

// Sums over the pixel columns [16 t0, 16 (t0 + Count)) of strip s (rows K), a pair at a time: for one
// pixel vector its column sums down the K rows (column_sums), for more the in-order pairwise sums of the
// two halves'.
template <int K, int C, int Count>
inline void column_tree(const Strip& s, int t0, F16* out) {
  constexpr int P = pair_count<C>();
  if constexpr (Count == 1) {
    column_sums<K, C>(s, t0, out);
  } else {
    F16 a[P], b[P];
    column_tree<K, C, Count / 2>(s, t0, a);
    column_tree<K, C, Count / 2>(s, t0 + Count / 2, b);
    GRAMGAN_LANES_UNROLL
    for (int q = 0; q < P; ++q) out[q] = pair_sums(a[q], b[q]);
  }
}

// The Grams (pairs, lane p = patch p) of the sixteen patches of strip s, of which the first `valid` lie
// in the image (the others read as zeros, through scratch: strip_floats<K, C, 16>() floats).
template <int K, int C>
inline void strip_gram(const Strip& s, int valid, float* scratch, F16* G) {
  static_assert(covers(KernelPatchSizes{}, K), "strips are written for the covered patch sizes");
  constexpr int P = pair_count<C>();
  column_tree<K, C, K>(valid == 16 ? s : pad_strip<K, C, 16>(s, valid, scratch), 0, G);
  const F16 inv_area = broadcast<F16>(1.0f / static_cast<float>(K * K));
  GRAMGAN_LANES_UNROLL
  for (int q = 0; q < P; ++q) G[q] *= inv_area;
}

}  // namespace lanes
}  // namespace cpu
}  // namespace gramgan
