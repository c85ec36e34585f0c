// The building blocks of the vector kernels: strips of N = kLanes<T> neighbouring K x K patches of one
// patch-row, one patch per lane. A strip's Grams are summed with the pixels of a row as the lanes (multiply-
// adds down each pixel column), then each patch's column sums are added pairwise in order (((c0 + c1) +
// (c2 + c3)) + ...), which leaves patch p's sum in lane p whatever N is: every target sums alike, so AVX2
// and AVX-512 agree to the bit. From there on every operation is vertical and the same in every lane, so
// identical patches get identical Grams wherever they lie (exact ties stay exact). Not a once-only header:
// cpu_targets.h includes it per target, after cpu_vec.h.

// Where a strip's pixels are: channel 0's top-left pixel and the channel / row strides.
template <typename Pixel>
struct StripOf {
  Pixel* p;
  int64_t HW, W;

  Pixel* row(int c, int r) const { return p + c * HW + r * W; }
};
template <typename T>
using Strip = StripOf<const T>;  // read
template <typename T>
using OutStrip = StripOf<T>;  // written

// Strip g (patches [N g, N g + N)) of patch-row i of a (C, H, W) image.
template <int K, typename T>
inline Strip<T> image_strip(const T* image, int64_t H, int64_t W, int64_t i, int64_t g) {
  return {image + i * K * W + g * kLanes<T> * K, H * W, W};
}

// Patches of strip g of a patch-row of Wp patches that lie in the image.
template <typename T>
inline int strip_valid(int64_t Wp, int64_t g) {
  return static_cast<int>(std::min<int64_t>(kLanes<T>, Wp - g * kLanes<T>));
}

// Values of a strip copied out of an image (C channels of K rows of N K pixels).
template <int K, int C, typename T>
constexpr int kStripValues = C * K * kLanes<T> * K;

// Writes the first `valid` lanes of v to out[0..valid), converted to Out.
template <typename Out, typename V>
inline void store_lanes(Out* out, const V& v, int valid) {
  for (int p = 0; p < valid; ++p) out[p] = static_cast<Out>(v[p]);
}

// The first `valid` patches of a strip (patch_of(p): patch p as a Strip) copied side by side into
// scratch, the other lanes zero: a strip whose patches are not all neighbours in one image row.
template <int K, int C, typename T, typename PatchOf>
inline Strip<T> copy_strip(int valid, const PatchOf& patch_of, T* scratch) {
  constexpr int64_t W = kLanes<T> * K;
  std::memset(scratch, 0, sizeof(T) * kStripValues<K, C, T>);
  for (int p = 0; p < valid; ++p) {
    const Strip<T> patch = patch_of(p);
    for (int c = 0; c < C; ++c) {
      for (int r = 0; r < K; ++r) std::memcpy(scratch + (c * K + r) * W + p * K, patch.row(c, r), sizeof(T) * K);
    }
  }
  return {scratch, K * W, W};
}

// Strip s itself when all its patches lie in the image, else its first `valid` patches padded (copy_strip).
template <int K, int C, typename T>
inline Strip<T> whole_strip(const Strip<T>& s, int valid, T* scratch) {
  if (valid == kLanes<T>) return s;
  return copy_strip<K, C>(valid, [&](int p) { return Strip<T>{s.p + p * K, s.HW, s.W}; }, scratch);
}

// In-order pairwise sums: lane i < N / 2 is a[2i] + a[2i + 1], lane N / 2 + i is b[2i] + b[2i + 1].
template <typename V, int... I>
inline V pair_sums(const V& a, const V& b, std::integer_sequence<int, I...>) {
  return __builtin_shufflevector(a, b, (2 * I)...) + __builtin_shufflevector(a, b, (2 * I + 1)...);
}

// Sums over the pixel vectors [t0, t0 + Count) of strip s, pair by pair: for one pixel vector its column
// sums down the K rows, for more the in-order pairwise sums of the two halves'.
template <int K, int C, int Count, typename T>
inline void column_tree(const Strip<T>& s, int t0, Vec<T>* out) {
  using V = Vec<T>;
  constexpr int P = pair_count<C>();
  if constexpr (Count == 1) {
    GRAMGAN_UNROLL
    for (int q = 0; q < P; ++q) out[q] = V{};
    GRAMGAN_UNROLL
    for (int r = 0; r < K; ++r) {
      V v[C];
      GRAMGAN_UNROLL
      for (int c = 0; c < C; ++c) v[c] = load(s.row(c, r) + t0 * kLanes<T>);
      add_outer_products<C>(v, out);
    }
  } else {
    V a[P], b[P];
    column_tree<K, C, Count / 2>(s, t0, a);
    column_tree<K, C, Count / 2>(s, t0 + Count / 2, b);
    GRAMGAN_UNROLL
    for (int q = 0; q < P; ++q) out[q] = pair_sums(a[q], b[q], std::make_integer_sequence<int, kLanes<T>>{});
  }
}

// The Grams (pairs, lane p = patch p) of the patches of strip s, all inside the image (whole_strip).
template <int K, int C, typename T>
inline void strip_gram(const Strip<T>& s, Vec<T>* G) {
  static_assert(covers(KernelPatchSizes{}, K), "strips are written for the covered patch sizes");
  column_tree<K, C, K>(s, 0, G);                                                     // K pixel vectors per strip row
  for (int q = 0; q < pair_count<C>(); ++q) G[q] *= splat<Vec<T>>(T(1) / T(K * K));  // exact: K^2 = 4, 16, 64
}

// The Grams of the patches of patch-row i of a (C, H, W) image: pair q of patch j at
// out[q * pair_stride + j * patch_stride] (scratch: kStripValues<K, C, T> values).
template <int K, int C, typename T>
inline void row_grams(const T* image, int64_t H, int64_t W, int64_t i, T* out, int64_t pair_stride,
                      int64_t patch_stride, T* scratch) {
  for (int64_t g = 0; g < (W / K + kLanes<T> - 1) / kLanes<T>; ++g) {
    Vec<T> G[pair_count<C>()];
    const int valid = strip_valid<T>(W / K, g);
    strip_gram<K, C>(whole_strip<K, C>(image_strip<K>(image, H, W, i, g), valid, scratch), G);
    for (int p = 0; p < valid; ++p) {
      for (int q = 0; q < pair_count<C>(); ++q) out[q * pair_stride + (g * kLanes<T> + p) * patch_stride] = G[q][p];
    }
  }
}

// Prefetches the strip `ahead` strips right of s (its 2 C K row segments: more streams than hardware follows).
template <int K, int C, typename T>
inline void prefetch_strip(const Strip<T>& s, int ahead) {
  constexpr int kLineValues = 64 / sizeof(T);
  for (int c = 0; c < C; ++c) {
    for (int r = 0; r < K; ++r) {
      for (int x = 0; x < kLanes<T> * K; x += kLineValues) __builtin_prefetch(s.row(c, r) + ahead * kLanes<T> * K + x);
    }
  }
}

// sum over the full C x C matrices of criterion(A - B), from pairs (lanes = patches), B's pair q read as
// pair_of(q): the diagonal and the (doubled) off-diagonal terms are summed apart, then added.
template <int C, typename V, typename PairOf>
inline V pair_criterion_sum_of(const V* A, const PairOf& pair_of, int criterion) {
  V diagonal = V{}, off = V{};
  int q = 0;
  GRAMGAN_UNROLL
  for (int a = 0; a < C; ++a) {
    GRAMGAN_UNROLL
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
  return diagonal + splat<V>(2) * off;
}

// The selection key of the running argmin, cheaper than selection_key and equivalent under `<` against a
// best that started at +inf: +inf becomes the largest value, NaN stays NaN (and never compares less).
template <typename V>
inline V candidate_key(const V& score) {
  const V largest = splat<V>(std::numeric_limits<ElementOf<V>>::max());
  return largest < score ? largest : score;
}

// A running argmin over candidates, lanes = patches: best starts at +inf, index at 0, and a candidate
// replaces the best only when its key is strictly smaller, so ties keep the lowest index, NaN never wins,
// all-NaN keeps index 0, and +inf beats NaN (the rule of docs/ops.md). Indices are held as values of V
// (exact below 2^24 for float: kMaxFloatIndex): every blend selects on a comparison written in place,
// as GCC turns an integer selection on a floating-point comparison into scalar code.
template <typename V>
struct RunningMin {
  V best = splat<V>(std::numeric_limits<ElementOf<V>>::infinity());
  V index = V{};

  // Folds in a candidate by its selection key (candidate_key).
  void take(const V& key, int64_t candidate) {
    index = key < best ? splat<V>(candidate) : index;
    best = key < best ? key : best;
  }
};

// The local forward's running selection of one strip (lanes = patches), fed one candidate at a time: the
// score ||Ge - Gc||^2 (+ beta ||Gg - Gc||^2, Gg the ground truth's Grams, which candidate 0 sets) goes
// into the running argmin, and with gram_loss the loss criterion(Ge - Gc) and the residual Ge - Gc are
// kept where the candidate is selected (candidate 0's always: it stays selected when every score is NaN).
template <int C, typename V>
struct StripSelection {
  RunningMin<V> run;
  V gg[pair_count<C>()];
  V residual[pair_count<C>()];
  V loss = V{};

  void add(const V* ge, const V* gc, int64_t m, ElementOf<V> beta, bool gram_loss, int criterion) {
    auto vectors = [](const V* B) { return [B](int q) { return B[q]; }; };
    V score = pair_criterion_sum_of<C>(ge, vectors(gc), kCriterionMse);
    if (beta != 0) {
      if (m == 0) std::copy(gc, gc + pair_count<C>(), gg);
      score += splat<V>(beta) * pair_criterion_sum_of<C>(gg, vectors(gc), kCriterionMse);
    }
    const V key = candidate_key(score);
    if (gram_loss) {
      // Without the ground-truth term the mse loss is the score itself.
      const V l =
          criterion == kCriterionMse && beta == 0 ? score : pair_criterion_sum_of<C>(ge, vectors(gc), criterion);
      if (m == 0) {
        loss = l;
        for (int q = 0; q < pair_count<C>(); ++q) residual[q] = ge[q] - gc[q];
      } else {
        loss = key < run.best ? l : loss;
        for (int q = 0; q < pair_count<C>(); ++q) residual[q] = key < run.best ? ge[q] - gc[q] : residual[q];
      }
    }
    run.take(key, m);
  }

  // Stores the loss (the mean over the C x C entries) and the residual's C x C entries of the first `valid`
  // lanes: lane p's loss at loss[p], its entry (a, b) at residual[(a C + b) stride + p].
  template <typename T>
  void store_loss(T* loss_out, T* residual_out, int64_t stride, int valid) const {
    store_lanes(loss_out, loss / splat<V>(C * C), valid);
    int q = 0;
    for (int a = 0; a < C; ++a) {
      for (int b = a; b < C; ++b, ++q) {
        store_lanes(residual_out + (a * C + b) * stride, residual[q], valid);
        if (a != b) store_lanes(residual_out + (b * C + a) * stride, residual[q], valid);
      }
    }
  }
};

// Pixel vector t of a strip row from per-patch lanes d: lane l gets d[(N t + l) / K].
template <int K, int t, typename V, int... I>
inline V patch_to_pixels(const V& d, std::integer_sequence<int, I...>) {
  constexpr int N = lanes_of<V>;
  return __builtin_shufflevector(d, d, ((N * t + I) / K)...);
}

// Pixel vector t of every row of the strip: out_u = D_p x_u, D_p the symmetric matrix (pairs D, lanes =
// patches) of the patch p that pixel u belongs to.
template <int K, int C, int t, typename T>
inline void apply_strip_vector(const Vec<T>* D, const Strip<T>& x, const OutStrip<T>& out) {
  using V = Vec<T>;
  V E[C][C];
  int q = 0;
  for (int a = 0; a < C; ++a) {
    for (int b = a; b < C; ++b, ++q) {
      E[a][b] = E[b][a] = patch_to_pixels<K, t>(D[q], std::make_integer_sequence<int, kLanes<T>>{});
    }
  }
  GRAMGAN_UNROLL
  for (int r = 0; r < K; ++r) {
    V v[C];
    GRAMGAN_UNROLL
    for (int c = 0; c < C; ++c) v[c] = load(x.row(c, r) + kLanes<T> * t);
    GRAMGAN_UNROLL
    for (int a = 0; a < C; ++a) {
      V o = V{};
      GRAMGAN_UNROLL
      for (int c = 0; c < C; ++c) o += E[a][c] * v[c];
      store(out.row(a, r) + kLanes<T> * t, o);
    }
  }
}

template <int K, int C, typename T, int... ts>
inline void apply_strip(const Vec<T>* D, const Strip<T>& x, const OutStrip<T>& out, std::integer_sequence<int, ts...>) {
  (apply_strip_vector<K, C, ts>(D, x, out), ...);
}

// dx_u = D_p x_u for every pixel u of the strip x (D: pairs of symmetric matrices, lanes = patches), written
// into the strip's place in dx (strides HW, W): x is zero-padded past `valid` patches, and a strip that is
// not whole goes through out_pad (kStripValues<K, C, T> values).
template <int K, int C, typename T>
inline void write_strip_product(const Vec<T>* D, const Strip<T>& x, int valid, T* dx_strip, int64_t HW, int64_t W,
                                T* out_pad) {
  constexpr int64_t SW = kLanes<T> * K;  // width of a copied strip
  const OutStrip<T> out = valid == kLanes<T> ? OutStrip<T>{dx_strip, HW, W} : OutStrip<T>{out_pad, K * SW, SW};
  apply_strip<K, C>(D, x, out, std::make_integer_sequence<int, K>{});
  if (valid == kLanes<T>) return;
  for (int c = 0; c < C; ++c) {
    for (int r = 0; r < K; ++r) std::memcpy(dx_strip + c * HW + r * W, out.row(c, r), sizeof(T) * valid * K);
  }
}

// Runs strip(b, i, g, valid, u0, offset, x, out_pad, scratch) for every strip of the (B, C, H, W) tensor
// `images` (x: the strip, zero-padded past `valid` patches; u0: the flat index of its first patch; offset:
// its first pixel's), one task per (image, patch-row).
template <int K, int C, typename T, typename F>
void for_each_strip(const at::Tensor& images, const F& strip) {
  const int64_t B = images.size(0), H = images.size(2), W = images.size(3), Hp = H / K, Wp = W / K;
  const int64_t groups = (Wp + kLanes<T> - 1) / kLanes<T>;
  const T* xp = images.data_ptr<T>();
  at::parallel_for(0, B * Hp, 1, [&](int64_t begin, int64_t end) {
    alignas(64) T x_pad[kStripValues<K, C, T>], out_pad[kStripValues<K, C, T>], scratch[kStripValues<K, C, T>];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / Hp, i = t % Hp;
      for (int64_t g = 0; g < groups; ++g) {
        const int valid = strip_valid<T>(Wp, g);
        const Strip<T> x = image_strip<K>(xp + b * C * H * W, H, W, i, g);
        strip(b, i, g, valid, t * Wp + g * kLanes<T>, x.p - xp, whole_strip<K, C>(x, valid, x_pad), out_pad, scratch);
      }
    }
  });
}

// The first `valid` values of p in lanes (the other lanes 0).
template <typename T>
inline Vec<T> load_lanes(const T* p, int valid) {
  if (valid == kLanes<T>) return load(p);
  Vec<T> v = Vec<T>{};
  for (int l = 0; l < valid; ++l) v[l] = p[l];
  return v;
}
