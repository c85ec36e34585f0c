// The vector kernels of texture_loss_backward.cpp (the Gram target's gradient), compiled per target by
// cpu_targets.h: strips of kLanes<T> patches (cpu_strips.h), T = float or double.

// One strip's Gram-target gradient: from the residual R = Ge - Gc of its patches (pairs, lanes = patches)
// and their upstream gradients, D = g criterion'(R) (2 / K^2) / C^2 per lane, then dx = D x a pixel vector
// at a time into the strip's place in dx (write_strip_product).
template <int K, int C, typename T>
inline void write_strip_gradient(const Vec<T>* R, const Vec<T>& g_up, int criterion, const Strip<T>& x, int valid,
                                 T* dx_strip, int64_t HW, int64_t W, T* out_pad) {
  using V = Vec<T>;
  const V scale = g_up / splat<V>(C * C) * splat<V>(T(2) / T(K * K)), one = splat<V>(1);
  V D[pair_count<C>()];
  for (int q = 0; q < pair_count<C>(); ++q) {
    const V d = R[q];
    const V slope = criterion == kCriterionMse ? splat<V>(2) * d : (d > V{} ? one : (d < V{} ? -one : V{}));
    D[q] = scale * slope;
  }
  write_strip_product<K, C>(D, x, valid, dx_strip, HW, W, out_pad);
}

// Backward of the global Gram target: per strip, the SR Grams and the selected patches' Grams (copied side
// by side out of the candidate images), then write_strip_gradient. locate(b, i, j, m, &cH, &cW) returns the
// chosen candidate m's patch for SR patch (b, i, j), from a (C, cH, cW) image; m must lie in [0, count).
template <typename T, int K, int C, typename Locate>
void gram_backward_strips(const at::Tensor& grad, const at::Tensor& sr, const at::Tensor& index, at::Tensor& dx,
                          int64_t count, const Locate& locate, int criterion) {
  const int64_t H = sr.size(2), W = sr.size(3);
  const int64_t* ip = index.data_ptr<int64_t>();
  const T* gp = grad.data_ptr<T>();
  T* dp = dx.data_ptr<T>();
  for_each_strip<K, C, T>(sr, [&](int64_t b, int64_t i, int64_t g, int valid, int64_t u0, int64_t offset,
                                  const Strip<T>& x, T* out_pad, T* scratch) {
    const Strip<T> chosen = copy_strip<K, C>(valid, [&](int p) {
      const int64_t m = ip[u0 + p];
      TORCH_CHECK(m >= 0 && m < count, "gramgan: saved index ", m, " out of range [0, ", count, ")");
      int64_t cH = H, cW = W;
      const T* patch = locate(b, i, g * kLanes<T> + p, m, &cH, &cW);
      return Strip<T>{patch, cH * cW, cW};
    }, scratch);
    Vec<T> ge[pair_count<C>()], gc[pair_count<C>()];
    strip_gram<K, C>(x, ge);
    strip_gram<K, C>(chosen, gc);
    for (int q = 0; q < pair_count<C>(); ++q) ge[q] -= gc[q];
    write_strip_gradient<K, C>(ge, load_lanes(gp + u0, valid), criterion, x, valid, dp + offset, H * W, W, out_pad);
  });
}

// Backward of the local and sampled Gram target from the forward's residual (pairs (a, b), a <= b, read for
// a strip of patches at once): reads SR and the residual only.
template <typename T, int K, int C>
void residual_backward_strips(const at::Tensor& grad, const at::Tensor& sr, const at::Tensor& residual, at::Tensor& dx,
                              int criterion) {
  const int64_t H = sr.size(2), W = sr.size(3), N = (H / K) * (W / K);
  const T* rp = residual.data_ptr<T>();
  const T* gp = grad.data_ptr<T>();
  T* dp = dx.data_ptr<T>();
  for_each_strip<K, C, T>(
      sr, [&](int64_t b, int64_t, int64_t, int valid, int64_t u0, int64_t offset, const Strip<T>& x, T* out_pad, T*) {
    const T* res = rp + b * C * C * N + (u0 - b * N);  // entry (a, c) of the strip's patches at res[(a C + c) N]
    Vec<T> R[pair_count<C>()];
    int q = 0;
    for (int a = 0; a < C; ++a) {
      for (int c = a; c < C; ++c, ++q) R[q] = load_lanes(res + (a * C + c) * N, valid);
    }
    write_strip_gradient<K, C>(R, load_lanes(gp + u0, valid), criterion, x, valid, dp + offset, H * W, W, out_pad);
  });
}
