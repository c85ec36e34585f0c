// The vector kernels of texture_loss.cpp (the local and global forwards), compiled per target by
// cpu_targets.h: strips of kLanes<T> patches (cpu_strips.h), T = float or double.

// Local scope forward: one task per (image, band of patch-rows); the band's strips are scanned once per
// candidate image (C channels x a band of rows: long contiguous reads the prefetcher follows), and the
// running selection and the selected Grams stay in a few KB of cache.
template <typename T, int K, int C>
void local_forward_strips(const at::Tensor& sr, const at::Tensor& cand, double gt_weight, int target, int criterion,
                          at::Tensor& index, at::Tensor* loss, at::Tensor* residual) {
  using V = Vec<T>;
  constexpr int P = pair_count<C>(), N = kLanes<T>;
  constexpr int64_t band = std::max<int64_t>(1, kBandRows / K);  // patch-rows per task
  const int64_t B = sr.size(0), H = sr.size(2), W = sr.size(3), NC = cand.size(1);
  const int64_t Hp = H / K, Wp = W / K, CHW = C * H * W, bands = (Hp + band - 1) / band, groups = (Wp + N - 1) / N;
  const T* sp = sr.data_ptr<T>();
  const T* cp = cand.data_ptr<T>();
  int64_t* ip = index.data_ptr<int64_t>();
  T* lp = loss ? loss->data_ptr<T>() : nullptr;
  T* rp = loss ? residual->data_ptr<T>() : nullptr;
  const T beta = static_cast<T>(gt_weight);
  const bool gram_loss = lp != nullptr && target == kTargetGram;
  at::parallel_for(0, B * bands, 1, [&](int64_t begin, int64_t end) {
    AlignedBuffer<V> ge(band * groups * P);
    AlignedBuffer<StripSelection<C, V>> selections(band * groups);
    alignas(64) T scratch[kStripValues<K, C, T>];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / bands, i0 = (t % bands) * band, i1 = std::min(i0 + band, Hp);
      const int64_t n_strips = (i1 - i0) * groups;  // strip u: patch-row i0 + u / groups, strip u % groups
      auto strip_of = [&](const T* image, int64_t u) {
        return image_strip<K>(image, H, W, i0 + u / groups, u % groups);
      };
      for (int64_t u = 0; u < n_strips; ++u) {
        strip_gram<K, C>(whole_strip<K, C>(strip_of(sp + b * CHW, u), strip_valid<T>(Wp, u % groups), scratch),
                         &ge[u * P]);
        selections[u] = StripSelection<C, V>{};
      }
      for (int64_t n = 0; n < NC; ++n) {
        const T* image = cp + (b * NC + n) * CHW;
        for (int64_t u = 0; u < n_strips; ++u) {
          V gc[P];
          prefetch_strip<K, C>(strip_of(image, u), kPrefetchStrips);
          strip_gram<K, C>(whole_strip<K, C>(strip_of(image, u), strip_valid<T>(Wp, u % groups), scratch), gc);
          selections[u].add(&ge[u * P], gc, n, beta, gram_loss, criterion);
        }
      }
      for (int64_t u = 0; u < n_strips; ++u) {
        const int64_t i = i0 + u / groups, g = u % groups;
        const int valid = strip_valid<T>(Wp, g);
        const int64_t u0 = (b * Hp + i) * Wp + g * N;  // flat index of the strip's first patch
        store_lanes(ip + u0, selections[u].run.index, valid);
        if (lp == nullptr) continue;
        if (gram_loss) {
          selections[u].store_loss(lp + u0, rp + b * C * C * Hp * Wp + i * Wp + g * N, Hp * Wp, valid);
          continue;
        }
        for (int p = 0; p < valid; ++p) {
          const int64_t offset = i * K * W + (g * N + p) * K;
          lp[u0 + p] =
              write_pixel_residual<T>(sp + b * CHW + offset, H * W, W, cp + (b * NC + ip[u0 + p]) * CHW + offset, H * W,
                                      W, C, K, criterion, rp + b * CHW + offset);
        }
      }
    }
  });
}

// The Gram bank of every global candidate patch, (B, M, P): one task per (image, level, patch-row), the
// same strip Grams as the SR side (so equal patches score exactly 0).
template <typename T, int K, int C>
at::Tensor global_bank(const Levels& levels, int64_t B) {
  constexpr int P = pair_count<C>();
  at::Tensor bank = at::empty({B, levels.total, P}, levels.images[0].options());
  T* bp = bank.data_ptr<T>();
  std::vector<int64_t> row_start{0};
  for (size_t l = 0; l < levels.images.size(); ++l) row_start.push_back(row_start.back() + levels.height[l] / K);
  const int64_t rows_per_image = row_start.back();
  at::parallel_for(0, B * rows_per_image, 1, [&](int64_t begin, int64_t end) {
    alignas(64) T scratch[kStripValues<K, C, T>];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / rows_per_image, r = t % rows_per_image;
      size_t l = 0;
      while (row_start[l + 1] <= r) ++l;
      const int64_t i = r - row_start[l], H = levels.height[l], W = levels.width[l], Wp = W / K;
      const T* image = levels.images[l].data_ptr<T>() + b * C * H * W;
      row_grams<K, C>(image, H, W, i, bp + (b * levels.total + levels.offset[l] + i * Wp) * P, 1, P, scratch);
    }
  });
  return bank;
}

// Running argmin of one block of SR patches (ge, gg: pairs with stride n_pad, the block's first patch at
// offset 0) over the bank of one image (M x P, candidate m's pairs at bank[m * P]): the block's
// kQueryVectors running argmins stay in registers while the bank streams past.
template <int C, bool WithGt, typename T>
void global_search_block(const T* ge, const T* gg, int64_t n_pad, const T* bank, int64_t M, T beta,
                         RunningMin<Vec<T>>* runs) {
  using V = Vec<T>;
  constexpr int P = pair_count<C>();
  for (int64_t m = 0; m < M; ++m) {
    V c[P];
    for (int q = 0; q < P; ++q) c[q] = splat<V>(bank[m * P + q]);
    GRAMGAN_UNROLL
    for (int v = 0; v < kQueryVectors; ++v) {
      auto query = [&](const T* g) { return [g, n_pad, v](int q) { return load(g + q * n_pad + v * kLanes<T>); }; };
      V score = pair_criterion_sum_of<C>(c, query(ge), kCriterionMse);
      if constexpr (WithGt) score += splat<V>(beta) * pair_criterion_sum_of<C>(c, query(gg), kCriterionMse);
      runs[v].take(candidate_key(score), m);
    }
  }
}

// Global scope forward: the bank, the SR Grams of each image (pairs layout, stride n_pad), then one task
// per (image, block of SR patches) runs the search; no (N x M) scores ever exist.
template <typename T, int K, int C>
void global_forward_strips(const at::Tensor& sr, const Levels& levels, double gt_weight, int target, int criterion,
                           at::Tensor& index, at::Tensor* loss) {
  constexpr int P = pair_count<C>(), L = kLanes<T>;
  constexpr int64_t block = kQueryVectors * L;
  const int64_t B = sr.size(0), H = sr.size(2), W = sr.size(3);
  const int64_t Hp = H / K, Wp = W / K, N = Hp * Wp, CHW = C * H * W, M = levels.total;
  const int64_t blocks = (N + block - 1) / block, n_pad = blocks * block;
  const at::Tensor bank = global_bank<T, K, C>(levels, B);
  const T* bp = bank.data_ptr<T>();
  const T* sp = sr.data_ptr<T>();
  int64_t* ip = index.data_ptr<int64_t>();
  T* lp = loss ? loss->data_ptr<T>() : nullptr;
  const T beta = static_cast<T>(gt_weight);
  // SR Grams and ground-truth Grams (bank level 0, aligned with SR), (B, P, n_pad), zero padded.
  std::vector<T> ge(B * P * n_pad, T(0)), gg(B * P * n_pad, T(0));
  at::parallel_for(0, B * Hp, 1, [&](int64_t begin, int64_t end) {
    alignas(64) T scratch[kStripValues<K, C, T>];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / Hp, i = t % Hp;
      row_grams<K, C>(sp + b * CHW, H, W, i, ge.data() + b * P * n_pad + i * Wp, n_pad, 1, scratch);
      for (int64_t j = 0; j < Wp; ++j) {
        for (int q = 0; q < P; ++q) gg[b * P * n_pad + q * n_pad + i * Wp + j] = bp[(b * M + i * Wp + j) * P + q];
      }
    }
  });
  at::parallel_for(0, B * blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / blocks, n0 = (t % blocks) * block;
      const T* e = ge.data() + b * P * n_pad + n0;
      const T* bank_b = bp + b * M * P;
      RunningMin<Vec<T>> runs[kQueryVectors];
      if (beta != 0) {
        global_search_block<C, true>(e, gg.data() + b * P * n_pad + n0, n_pad, bank_b, M, beta, runs);
      } else {
        global_search_block<C, false>(e, e, n_pad, bank_b, M, beta, runs);
      }
      for (int v = 0; v < kQueryVectors; ++v) {
        const int64_t first = n0 + v * L;
        if (first < N)
          store_lanes(ip + b * N + first, runs[v].index, static_cast<int>(std::min<int64_t>(L, N - first)));
      }
      if (lp == nullptr) continue;
      for (int64_t n = n0; n < std::min(n0 + block, N); ++n) {
        const int64_t m = ip[b * N + n];
        if (target == kTargetGram) {
          lp[b * N + n] = gram_target_loss<C>(ge.data() + b * P * n_pad + n, n_pad, bank_b + m * P, 1, C, criterion);
        } else {
          int64_t cH = 0, cW = 0;
          const T* c = global_patch<T, K, C>(levels, b, m, &cH, &cW);
          lp[b * N + n] = pixel_target_loss<T>(sp + b * CHW + (n / Wp) * K * W + (n % Wp) * K, H * W, W, c, cH * cW, cW,
                                               C, K, criterion);
        }
      }
    }
  });
}
