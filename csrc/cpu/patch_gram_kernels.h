// The vector kernels of patch_gram.cpp, compiled per target by cpu_targets.h: strips of kLanes<T> patches
// (cpu_strips.h).

// The Gram of every patch, (B, H/k, W/k, C, C).
template <typename T, int K, int C>
void patch_gram_strips(const at::Tensor& x, at::Tensor& out) {
  T* op = out.data_ptr<T>();
  for_each_strip<K, C, T>(x, [&](int64_t, int64_t, int64_t, int valid, int64_t u0, int64_t, const Strip<T>& s, T*, T*) {
    Vec<T> G[pair_count<C>()];
    strip_gram<K, C>(s, G);
    for (int p = 0; p < valid; ++p) {
      T* dst = op + (u0 + p) * C * C;
      int q = 0;
      for (int a = 0; a < C; ++a) {
        for (int b = a; b < C; ++b, ++q) dst[a * C + b] = dst[b * C + a] = G[q][p];
      }
    }
  });
}

// dx_u = (1/K^2) (dG + dG^T) x_u for every pixel u of every patch (dG: grad, (B, H/k, W/k, C, C)).
template <typename T, int K, int C>
void patch_gram_backward_strips(const at::Tensor& grad, const at::Tensor& x, at::Tensor& dx) {
  const T* gp = grad.data_ptr<T>();
  T* dp = dx.data_ptr<T>();
  for_each_strip<K, C, T>(
      x, [&](int64_t, int64_t, int64_t, int valid, int64_t u0, int64_t offset, const Strip<T>& s, T* out_pad, T*) {
    Vec<T> S[pair_count<C>()];
    int q = 0;
    for (int a = 0; a < C; ++a) {
      for (int b = a; b < C; ++b, ++q) {
        S[q] = Vec<T>{};
        for (int p = 0; p < valid; ++p) {
          const T* dG = gp + (u0 + p) * C * C;
          S[q][p] = (dG[a * C + b] + dG[b * C + a]) * (T(1) / T(K * K));
        }
      }
    }
    write_strip_product<K, C>(S, s, valid, dp + offset, x.size(2) * x.size(3), x.size(3), out_pad);
  });
}
