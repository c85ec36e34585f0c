// The vector kernel of downsample.cpp, compiled per target by cpu_targets.h (plain loops that the
// compiler vectorises for the target).

template <typename T>
void downsample_plane(const T* in, T* out, T* row, int64_t H, int64_t W) {
  const int64_t Ho = H / 2, Wo = W / 2;
  T w[kHalfTaps];
  for (int t = 0; t < kHalfTaps; ++t) w[t] = half_tap_weight<T>(t);
  // Output columns p in [2, Wo - 2) never leave the row; the others' mirrored taps, found once.
  const int64_t lo = std::min<int64_t>(2, Wo), hi = std::max<int64_t>(lo, Wo - 2);
  int64_t edge_taps[4][kHalfTaps];
  const int64_t edge_columns[4] = {0, 1, hi, hi + 1};
  for (int e = 0; e < 4; ++e) {
    for (int t = 0; t < kHalfTaps; ++t) edge_taps[e][t] = half_tap_index(std::min(edge_columns[e], Wo - 1), t, W);
  }
  T* even = row + W;
  T* odd = even + Wo;
  // One output row at a time, both passes while its filtered row is in L1: the rows pass,
  // row[x] = sum_t w[t] in[2o - 3 + t][x], then the columns pass, out[o][p] = sum_t w[t] row[2p - 3 + t].
  // The filtered row is split into its even and odd pixels (even[j] = row[2j], odd[j] = row[2j + 1]) so
  // that the taps of neighbouring outputs are neighbouring values: tap t of output p is
  // odd[p - 2 + t / 2] for even t, even[p - 1 + t / 2] for odd t, and the loop over p vectorises (the
  // same products, summed in the same order).
  for (int64_t o = 0; o < Ho; ++o) {
    const T* src[kHalfTaps];
    for (int t = 0; t < kHalfTaps; ++t) src[t] = in + half_tap_index(o, t, H) * W;
    for (int64_t x = 0; x < W; ++x) {
      T s = w[0] * src[0][x];
      for (int t = 1; t < kHalfTaps; ++t) s += w[t] * src[t][x];
      row[x] = s;
    }
    T* dst = out + o * Wo;
    for (int64_t j = 0; j < Wo; ++j) {
      even[j] = row[2 * j];
      odd[j] = row[2 * j + 1];
    }
    for (int e = 0; e < 4; ++e) {
      const int64_t p = edge_columns[e];
      if (p >= Wo || (p >= lo && p < hi)) continue;  // outside the image, or an interior column
      T s = w[0] * row[edge_taps[e][0]];
      for (int t = 1; t < kHalfTaps; ++t) s += w[t] * row[edge_taps[e][t]];
      dst[p] = s;
    }
    for (int64_t p = lo; p < hi; ++p) {
      T s = w[0] * odd[p - 2];
      s += w[1] * even[p - 1];
      s += w[2] * odd[p - 1];
      s += w[3] * even[p];
      s += w[4] * odd[p];
      s += w[5] * even[p + 1];
      s += w[6] * odd[p + 1];
      s += w[7] * even[p + 2];
      dst[p] = s;
    }
  }
}
