// MATLAB's imresize(x, 0.5) (bicubic, antialiased) as an 8-tap filter, shared by the CPU and CUDA kernels
// of gramgan::downsample_half (docs/ops.md, "Half-size image").
//
// At scale 1/2 the antialiased cubic kernel (a = -0.5, stretched to width 8) gives every output pixel o
// the same eight weights on input pixels 2o - 3 ... 2o + 4: (-3, -9, 29, 111, 111, 29, -9, -3) / 256,
// exact in binary and summing to 1, so MATLAB's normalisation changes nothing. Taps outside the image
// are mirrored back in with the edge pixel repeated (MATLAB's symmetric padding). Rows are filtered
// first, then columns, as imresize does when both scales are equal.
#pragma once

#include <cstdint>

#include "gramgan_common.h"

namespace gramgan {

constexpr int kHalfTaps = 8;

template <typename acc_t>
GRAMGAN_HD acc_t half_tap_weight(int t) {
  // Indexed by t = 0..7: the taps of input pixels 2o - 3 + t.
  const int numerators[kHalfTaps] = {-3, -9, 29, 111, 111, 29, -9, -3};
  return static_cast<acc_t>(numerators[t]) / static_cast<acc_t>(256);
}

// Input index 2o - 3 + t, mirrored into [0, n) with the edge repeated (period 2n).
GRAMGAN_HD int64_t half_tap_index(int64_t o, int t, int64_t n) {
  int64_t i = 2 * o - 3 + t;
  const int64_t period = 2 * n;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - 1 - i;
}

}  // namespace gramgan
