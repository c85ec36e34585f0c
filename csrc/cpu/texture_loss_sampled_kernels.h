// The vector kernels of texture_loss_sampled.cpp, compiled per target by cpu_targets.h: the warp sampling
// (float32, warp_sampler_kernel.h) and the forward on strips of kLanes<T> patches (cpu_strips.h).

#include "warp_sampler_kernel.h"

// Rows y0 .. y0 + K - 1 of every candidate of one image into strip, laid out (2 + J, C, K, W), products the
// image's warp_column_products. Without copy_sources, only the warps (slots 2 ..).
template <typename T, int K, int C>
void sample_strip(const SampledCandidates<T, T>& src, int64_t J, int64_t y0, T* strip, const T* products, bool vector,
                  bool copy_sources) {
  const int64_t H = src.H, W = src.W, HW = H * W, plane = K * W, half_W = W / 2, half_HW = (H / 2) * half_W;
  T* retiled = strip + C * plane;
  if (copy_sources) {
    for (int c = 0; c < C; ++c) {
      for (int r = 0; r < K; ++r) {
        std::memcpy(strip + c * plane + r * W, src.hr + c * HW + (y0 + r) * W, W * sizeof(T));
        const T* half_row = src.half + c * half_HW + retiled_coordinate(y0 + r, K) * half_W;
        for (int64_t j = 0; j < W / K; ++j) {
          std::memcpy(retiled + c * plane + r * W + j * K, half_row + (j / 2) * K, K * sizeof(T));
        }
      }
    }
  }
  for (int64_t w = 0; w < J; ++w) {
    const T* theta = src.thetas + w * 6;
    T* warped = strip + (2 + w) * C * plane;
#ifndef GRAMGAN_TARGET_GENERIC
    if constexpr (std::is_same_v<T, float>) {
      if (vector) {
        sample_warp_rows(src, theta, products + 2 * w * W, products + (2 * w + 1) * W, C, K, y0, warped);
        continue;
      }
    }
#endif
    for (int r = 0; r < K; ++r) sample_warp_row(src, theta, y0 + r, 0, W, plane, warped + r * W);
  }
}

// Candidate 1's strip g: half patches (N / 2) g .. (N / 2) g + N / 2 - 1 of the half-size Grams, each twice.
template <typename T, int... I>
inline Vec<T> retiled_lanes(const T* grams, int64_t g, std::integer_sequence<int, I...>) {
  typedef T Half __attribute__((vector_size(kVecBytes / 2)));
  Half half;
  std::memcpy(&half, grams + g * (kLanes<T> / 2), sizeof(half));
  return __builtin_shufflevector(half, half, (I / 2)...);
}

// The sampled forward: per patch-row (threads take them as they ask), the warps' rows are sampled into a
// cache-resident buffer, then each strip runs the local forward's selection and loss. For the Gram target,
// candidate 0's Grams are read from hr itself and candidate 1's computed once per half-size patch (shared
// by the two patch-rows that re-tile it); the pixel target, whose residual needs the pixels, copies both.
template <typename T, int K, int C>
void sampled_forward_strips(const SampledInputs& in, double gt_weight, int target, int criterion, SampledOutputs& out) {
  using V = Vec<T>;
  constexpr int P = pair_count<C>(), N = kLanes<T>;
  const int64_t H = in.H, W = in.W, Hp = H / K, Wp = W / K, HW = H * W, NC = 2 + in.J;
  const int64_t plane = K * W, stride = C * plane;
  const int64_t half_row = ((Wp / 2 + N - 1) / N) * N;  // the half-size Grams' row
  const T* sp = in.sr.data_ptr<T>();
  const T* hp = in.hr.data_ptr<T>();
  int64_t* ip = out.index.data_ptr<int64_t>();
  T* lp = out.loss.data_ptr<T>();
  T* rp = out.residual.data_ptr<T>();
  const T beta = static_cast<T>(gt_weight);
  const bool gram_loss = target == kTargetGram;
  // The vector sampler (x86 targets) takes float32 images small enough for its 32-bit pixel offsets.
  const bool vector_sampler = std::is_same_v<T, float> && in.J > 0 && HW < (int64_t{1} << 31) && vector_level() >= 1;
  parallel_tasks(in.B * Hp, [&](auto& next) {
    AlignedBuffer<T> strip_buffer(NC * stride), half_grams(P * half_row);
    std::vector<T> products(2 * in.J * W);
    alignas(64) T pad[kStripValues<K, C, T>];
    T* strip = strip_buffer.data();
    int64_t products_of = -1;    // the image whose warp_column_products are in products
    int64_t half_grams_of = -1;  // the (image, half patch-row) whose Grams are in half_grams
    for (int64_t t = 0; next(t);) {
      const int64_t b = t / Hp, i = t % Hp, row = b * C * HW + i * K * W;
      if (vector_sampler && b != products_of) {
        warp_column_products(in.image<T>(b, K), in.J, products.data());
        products_of = b;
      }
      sample_strip<T, K, C>(in.image<T>(b, K), in.J, i * K, strip, products.data(), vector_sampler, !gram_loss);
      if (gram_loss && b * Hp + i / 2 != half_grams_of) {
        row_grams<K, C>(in.half.data_ptr<T>() + b * C * (HW / 4), H / 2, W / 2, i / 2, half_grams.data(), half_row, 1,
                        pad);
        half_grams_of = b * Hp + i / 2;
      }
      for (int64_t g = 0; g < (Wp + N - 1) / N; ++g) {
        const int valid = strip_valid<T>(Wp, g);
        auto strip_gram_of = [&](const T* p, int64_t HW_, int64_t W_, V* G) {
          strip_gram<K, C>(whole_strip<K, C>(Strip<T>{p + g * N * K, HW_, W_}, valid, pad), G);
        };
        V ge[P], gc[P];
        strip_gram_of(sp + row, HW, W, ge);
        StripSelection<C, V> selection;
        for (int64_t m = 0; m < NC; ++m) {
          if (m == 0 && gram_loss) {
            strip_gram_of(hp + row, HW, W, gc);
          } else if (m == 1 && gram_loss) {
            for (int q = 0; q < P; ++q)
              gc[q] = retiled_lanes(half_grams.data() + q * half_row, g, std::make_integer_sequence<int, N>{});
          } else {
            strip_gram_of(strip + m * stride, plane, W, gc);
          }
          selection.add(ge, gc, m, beta, gram_loss, criterion);
        }
        store_lanes(ip + t * Wp + g * N, selection.run.index, valid);
        if (!gram_loss) continue;
        selection.store_loss(lp + t * Wp + g * N, rp + b * C * C * Hp * Wp + i * Wp + g * N, Hp * Wp, valid);
      }
      if (gram_loss) continue;
      for (int64_t j = 0; j < Wp; ++j) {
        lp[t * Wp + j] = write_pixel_residual<T>(sp + row + j * K, HW, W, strip + ip[t * Wp + j] * stride + j * K,
                                                 plane, W, C, K, criterion, rp + row + j * K);
      }
    }
  });
}
