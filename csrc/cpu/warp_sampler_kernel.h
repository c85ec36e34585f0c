// The vector warp sampling of the sampled texture loss, float32, kVecLanes pixels at a time, for the x86
// targets (the generic one runs the scalar sample_warp_row). It performs the scalar code's operations in
// the same order, lane by lane, so the samples agree to the bit: products are rounded where grid_sample
// rounds them (ax, bx hold x * theta, formed once per warp, so no multiply-add contracts them), fused
// where it fuses them.

#ifndef GRAMGAN_TARGET_GENERIC

// The rest of grid_source_coordinate on unnormalised coordinates u along an axis of n pixels (span 2 n,
// last n - 1): reflection and clipping; or, where every u lies inside the image (inside: 0 <= u <= n - 1),
// only what is left of it, (u + 1/2) - 1/2. There u + 1/2 is positive and below n, so neither the absolute
// value, the flip nor the clip acts, and rounding is monotone: the same value to the bit.
inline Floats source_coordinate(const Floats& u, bool inside, const Floats& span, const Floats& last) {
  const Floats low = splat<Floats>(-0.5f);
  if (inside) return (u - low) + low;
  Floats extra = abs(u - low);
  if (any(~(extra < span))) extra = extra - trunc(extra / span) * span;  // whole periods off (rare; exact)
  // min / max return their second operand when one is NaN: a NaN stays (flipped is NaN too), then becomes 0.
  const Floats reflected = min(extra, span - extra) + low;
  return min(max(reflected, Floats{}), last);
}

// Rows y0 .. y0 + K - 1 of the warp by theta into out (channel c at out[c * K * W], row r at + r * W); ax,
// bx: x * theta[0] and x * theta[3] of every column.
// - Coordinates: source_coordinate, short where all kVecLanes positions lie inside the image.
// - Neighbours: samples whose north-west neighbours lie within kVecLanes consecutive columns of one or two
//   adjacent rows read them with vector loads from the planar image (permuted unless in order, each lane
//   then taking its row); any others with masked gathers (a neighbour outside the image reads as 0: it
//   weighs nothing, and its NaN must not leak).
// The last W % kVecLanes columns go through the scalar code.
inline void sample_warp_rows(const SampledCandidates<float, float>& src, const float* theta, const float* ax,
                             const float* bx, int C, int K, int64_t y0, float* out) {
  constexpr int N = kVecLanes;
  const int64_t H = src.H, W = src.W, vector_end = W - W % N;
  const int32_t W32 = static_cast<int32_t>(W), H32 = static_cast<int32_t>(H);
  const Floats one = splat<Floats>(1.0f), zero = Floats{}, low = splat<Floats>(-0.5f);
  const Floats half_w = splat<Floats>(static_cast<float>(W) / 2.0f),
               half_h = splat<Floats>(static_cast<float>(H) / 2.0f);
  const Floats span_w = splat<Floats>(static_cast<float>(W) * 2.0f),
               span_h = splat<Floats>(static_cast<float>(H) * 2.0f);
  const Floats last_w = splat<Floats>(static_cast<float>(W - 1)), last_h = splat<Floats>(static_cast<float>(H - 1));
  const Ints lanes = lane_indices(), all_lanes = splat<Ints>(-1);
  for (int r = 0; r < K; ++r) {
    const int64_t y = y0 + r;
    const float yn = src.ys[y];
    const Floats cx = splat<Floats>(yn * theta[1]), cy = splat<Floats>(yn * theta[4]);
    const Floats tx = splat<Floats>(theta[2]), ty = splat<Floats>(theta[5]);
    for (int64_t x = 0; x < vector_end; x += N) {
      const Floats u = fma((load(ax + x) + cx) + tx + one, half_w, low);  // unnormalised, as grid_source_coordinate
      const Floats v = fma((load(bx + x) + cy) + ty + one, half_h, low);
      const bool inside = all((u >= zero) & (u <= last_w) & (v >= zero) & (v <= last_h));
      const Floats ix = source_coordinate(u, inside, span_w, last_w), iy = source_coordinate(v, inside, span_h, last_h);
      const Ints x0 = __builtin_convertvector(ix, Ints), y0i = __builtin_convertvector(iy, Ints);  // floor: >= 0
      const Floats w = ix - __builtin_convertvector(x0, Floats), n = iy - __builtin_convertvector(y0i, Floats);
      const Floats e = one - w, s = one - n;
      const Floats nw = s * e, ne = s * w, sw = n * e, se = n * w;
      float* dst = out + r * W + x;
      const int32_t first_x = x0[0], top = y0i[0] < y0i[N - 1] ? y0i[0] : y0i[N - 1];
      const Ints offsets = x0 - first_x;
      const Ints in_span = (Uints)offsets <= splat<Uints>(N - 1);
      const Ints upper = y0i == top, lower = y0i == top + 1;
      const bool two_rows = any(lower);
      if (first_x + N <= W32 && top + 1 + (two_rows ? 1 : 0) < H32 && all(in_span & (upper | lower))) {
        // Plain loads of rows top .. top + 1 (+ 1 for two rows), permuted unless in order (the east ones of
        // the row's last kVecLanes pixels: p[N - 1] is past the row's end and reads as 0), then the lower
        // lanes take the rows below.
        const bool in_order = all(offsets == lanes), east_full = first_x + N + 1 <= W32;
        auto span = [&](const float* p, bool full) {
          const Floats loaded = full ? load(p) : load_prefix(p, N - 1);
          return in_order ? loaded : permute(loaded, offsets);
        };
        const float* q = src.hr + int64_t{top} * W + first_x;
        for (int c = 0; c < C; ++c, q += H * W) {
          Floats a = span(q, true), b = span(q + 1, east_full), d = span(q + W, true), f = span(q + W + 1, east_full);
          if (two_rows) {
            a = lower ? d : a;
            b = lower ? f : b;
            d = lower ? span(q + 2 * W, true) : d;
            f = lower ? span(q + 2 * W + 1, east_full) : f;
          }
          store(dst + c * K * W, fma(f, se, fma(d, sw, fma(b, ne, a * nw))));
        }
        continue;
      }
      const Ints at = y0i * W32 + x0, at_s = at + W32;
      const Ints east_in = x0 + 1 < W32, south_in = y0i + 1 < H32;
      const float* plane = src.hr;
      for (int c = 0; c < C; ++c, plane += H * W) {
        const Floats v0 = gather(plane, at, all_lanes) * nw;
        const Floats v1 = fma(gather(plane, at + 1, east_in), ne, v0);
        const Floats v2 = fma(gather(plane, at_s, south_in), sw, v1);
        store(dst + c * K * W, fma(gather(plane, at_s + 1, east_in & south_in), se, v2));
      }
    }
    sample_warp_row(src, theta, y, vector_end, W, K * W, out + r * W);
  }
}

#endif
