// CPU kernels of the Gram selection and the texture loss (docs/ops.md), local and global scope.
//
// Local scope: one pass per patch-row computes the SR Grams, each candidate's Grams, the score, the
// running argmin and the loss; nothing bigger than a few rows of the image is ever held. Global scope:
// the candidate Gram bank (B, M, P) is computed first (small), then every patch-row scans it with a
// running argmin, so no (N x M) score matrix exists. The backward kernels are texture_loss_backward.cpp.
//
// float32 (and float16 / bfloat16, read as float32) runs the *_lanes kernels: 8 neighbouring patches
// per SIMD value (cpu_lanes.h), AVX2 + FMA when the CPU has them, and the local forward 16 with AVX-512
// (cpu_lanes_wide.h); the global search keeps 32 SR
// patches' running argmins in registers while the image's bank streams past, every distance a direct
// sum of squared differences. float64 runs the patch-at-a-time kernels below.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpu_gram.h"
#include "cpu_lanes.h"
#include "cpu_lanes_wide.h"

namespace gramgan {
namespace cpu {
namespace {

// Image rows per task of the local forward: each task streams a band of this many rows of every
// candidate image in turn (long contiguous reads the hardware prefetcher follows), keeping the
// running selection of the band's patches in cache.
constexpr int64_t kBandRows = 32;

// Local scope forward: index (always), per-patch loss and residual (when loss is given).
template <typename T, int K, int C>
void local_forward_kernel(const at::Tensor& sr, const at::Tensor& cand, double gt_weight, int target, int criterion,
                          at::Tensor& index, at::Tensor* loss, at::Tensor* residual) {
  constexpr int P = pair_count<C>();
  constexpr int64_t band = kBandRows / K > 0 ? kBandRows / K : 1;  // patch-rows per task
  const int64_t B = sr.size(0), H = sr.size(2), W = sr.size(3), NC = cand.size(1);
  const int64_t Hp = H / K, Wp = W / K, CHW = C * H * W, bands = (Hp + band - 1) / band;
  const T* sp = sr.data_ptr<T>();
  const T* cp = cand.data_ptr<T>();
  int64_t* ip = index.data_ptr<int64_t>();
  T* lp = loss ? loss->data_ptr<T>() : nullptr;
  T* rp = loss ? residual->data_ptr<T>() : nullptr;
  const T beta = static_cast<T>(gt_weight);
  at::parallel_for(0, B * bands, 1, [&](int64_t begin, int64_t end) {
    const int64_t most = band * Wp;
    std::vector<T> ge(P * most), gg(P * most), gc(P * most), g_best(P * most), score(most), best(most);
    std::vector<int32_t> idx(most);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / bands, i0 = (t % bands) * band, i1 = std::min(i0 + band, Hp), n_patches = (i1 - i0) * Wp;
      const T* cand_b = cp + b * NC * CHW;
      // Grams of the band's patches, pairs layout with stride n_patches.
      auto band_grams = [&](const T* image, T* G) {
        for (int64_t i = i0; i < i1; ++i) row_grams<T, K, C>(image, H, W, i, G + (i - i0) * Wp, n_patches, 1);
      };
      band_grams(sp + b * CHW, ge.data());
      band_grams(cand_b, gg.data());
      for (int64_t n = 0; n < NC; ++n) {
        const T* g_n = gg.data();
        if (n > 0) {
          band_grams(cand_b + n * CHW, gc.data());
          g_n = gc.data();
        }
        update_local_selection<T, C>(ge.data(), gg.data(), g_n, n_patches, beta, static_cast<int32_t>(n), score.data(),
                                     best.data(), idx.data(), g_best.data());
      }
      int64_t* index_out = ip + (b * Hp + i0) * Wp;  // the band's patches are consecutive in the output
      for (int64_t u = 0; u < n_patches; ++u) index_out[u] = idx[u];
      if (lp == nullptr) continue;
      T* out = lp + (b * Hp + i0) * Wp;
      for (int64_t u = 0; u < n_patches; ++u) {
        if (target == kTargetGram) {
          out[u] = gram_target_loss<C>(ge.data() + u, n_patches, g_best.data() + u, n_patches, C, criterion);
          write_gram_residual<C>(ge.data() + u, n_patches, g_best.data() + u, n_patches, C,
                                 rp + b * C * C * Hp * Wp + i0 * Wp + u, Hp * Wp);
        } else {
          const int64_t offset = (i0 + u / Wp) * K * W + (u % Wp) * K;
          out[u] = write_pixel_residual(sp + b * CHW + offset, H * W, W, cand_b + idx[u] * CHW + offset, H * W, W, C, K,
                                        criterion, rp + b * CHW + offset);
        }
      }
    }
  });
}

// The Gram bank of every global candidate patch, (B, M, P).
template <typename T, int K, int C>
at::Tensor global_bank(const Levels& levels, int64_t B) {
  constexpr int P = pair_count<C>();
  at::Tensor bank = at::empty({B, levels.total, P}, levels.images[0].options());
  T* bp = bank.data_ptr<T>();
  std::vector<int64_t> row_start{0};  // one task per (image, level, patch-row)
  for (size_t l = 0; l < levels.images.size(); ++l) row_start.push_back(row_start.back() + levels.height[l] / K);
  const int64_t rows_per_image = row_start.back();
  at::parallel_for(0, B * rows_per_image, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / rows_per_image, r = t % rows_per_image;
      size_t l = 0;
      while (row_start[l + 1] <= r) ++l;
      const int64_t i = r - row_start[l], H = levels.height[l], W = levels.width[l];
      const T* image = levels.images[l].data_ptr<T>() + b * C * H * W;
      row_grams<T, K, C>(image, H, W, i, bp + (b * levels.total + levels.offset[l] + i * (W / K)) * P, 1, P);
    }
  });
  return bank;
}

// Running argmin of the patches of one SR row (ge, gg: pairs layout, stride Wp) over the bank of one
// image (M x P); the loop over the row's patches is the one that vectorises.
template <typename T, int C>
void global_search_row(const T* ge, const T* gg, const T* bank, int64_t M, int64_t Wp, T beta, T* best,
                       int32_t* index) {
  constexpr int P = pair_count<C>();
  for (int64_t m = 0; m < M; ++m) {
    T gc[P];
    for (int q = 0; q < P; ++q) gc[q] = bank[m * P + q];
    const int32_t mi = static_cast<int32_t>(m);
    const bool first = m == 0;
    for (int64_t j = 0; j < Wp; ++j) {
      const T key = selection_key(selection_score<C>(ge + j, gg + j, Wp, gc, 1, beta));
      const bool better = improves(key, best[j], first);
      best[j] = better ? key : best[j];
      index[j] = better ? mi : index[j];
    }
  }
}

// Global scope forward: index (always) and per-patch loss (when loss is given).
template <typename T, int K, int C>
void global_forward_kernel(const at::Tensor& sr, const Levels& levels, double gt_weight, int target, int criterion,
                           at::Tensor& index, at::Tensor* loss) {
  constexpr int P = pair_count<C>();
  const int64_t B = sr.size(0), H = sr.size(2), W = sr.size(3);
  const int64_t Hp = H / K, Wp = W / K, CHW = C * H * W, M = levels.total;
  const at::Tensor bank = global_bank<T, K, C>(levels, B);
  const T* bp = bank.data_ptr<T>();
  const T* sp = sr.data_ptr<T>();
  int64_t* ip = index.data_ptr<int64_t>();
  T* lp = loss ? loss->data_ptr<T>() : nullptr;
  const T beta = static_cast<T>(gt_weight);
  at::parallel_for(0, B * Hp, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> ge(P * Wp), gg(P * Wp), best(Wp);
    std::vector<int32_t> idx(Wp);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / Hp, i = t % Hp;
      const T* bank_b = bp + b * M * P;
      row_grams<T, K, C>(sp + b * CHW, H, W, i, ge.data(), Wp, 1);
      for (int64_t j = 0; j < Wp; ++j) {  // level 0 is the ground truth, aligned with SR
        for (int q = 0; q < P; ++q) gg[q * Wp + j] = bank_b[(i * Wp + j) * P + q];
      }
      global_search_row<T, C>(ge.data(), gg.data(), bank_b, M, Wp, beta, best.data(), idx.data());
      for (int64_t j = 0; j < Wp; ++j) ip[t * Wp + j] = idx[j];
      if (lp == nullptr) continue;
      for (int64_t j = 0; j < Wp; ++j) {
        if (target == kTargetGram) {
          lp[t * Wp + j] = gram_target_loss<C>(ge.data() + j, Wp, bank_b + int64_t{idx[j]} * P, 1, C, criterion);
        } else {
          int64_t cH = 0, cW = 0;
          const T* c = global_patch<T, K, C>(levels, b, idx[j], &cH, &cW);
          lp[t * Wp + j] =
              pixel_target_loss<T>(sp + b * CHW + i * K * W + j * K, H * W, W, c, cH * cW, cW, C, K, criterion);
        }
      }
    }
  });
}

// ---- float32: eight patches per SIMD value (cpu_lanes.h) ------------------------------------------

using lanes::F8;
using lanes::image_strip;
using lanes::kLanes;
using lanes::store_lanes;
using lanes::strip_valid;

// Image rows per task of the float32 local forward (as kBandRows; fewer rows, more tasks to share).
constexpr int64_t kLaneBandRows = 16;
// How many strips ahead the candidate scan prefetches.
constexpr int kPrefetchStrips = 2;

// Local scope forward in float32: one task per (image, band of patch-rows); the band's strips are
// scanned once per candidate image (3 channels x a band of rows: long contiguous reads the prefetcher
// follows), and the running selection and the selected Grams stay in a few KB of cache. Strips of
// eight patches, or sixteen with AVX-512 (lanes::run_lanes; the same results).
template <int K, int C>
void local_forward_lanes(const at::Tensor& sr, const at::Tensor& cand, double gt_weight, int target, int criterion,
                         at::Tensor& index, at::Tensor* loss, at::Tensor* residual) {
  constexpr int P = pair_count<C>();
  constexpr int64_t band = kLaneBandRows / K;  // patch-rows per task
  const int64_t B = sr.size(0), H = sr.size(2), W = sr.size(3), NC = cand.size(1);
  const int64_t Hp = H / K, Wp = W / K, CHW = C * H * W, bands = (Hp + band - 1) / band;
  const float* sp = sr.data_ptr<float>();
  const float* cp = cand.data_ptr<float>();
  int64_t* ip = index.data_ptr<int64_t>();
  float* lp = loss ? loss->data_ptr<float>() : nullptr;
  float* rp = loss ? residual->data_ptr<float>() : nullptr;
  const float beta = static_cast<float>(gt_weight);
  const bool gram_loss = lp != nullptr && target == kTargetGram;
  at::parallel_for(0, B * bands, 1, [&](int64_t begin, int64_t end) {
    lanes::run_lanes([&](auto lanes_n) {
      constexpr int N = decltype(lanes_n)::value;
      using V = lanes::FloatLanes<N>;
      const int64_t groups = (Wp + N - 1) / N, strips = band * groups;
      lanes::LaneBuffer<V> ge(strips * P);
      lanes::LaneBuffer<lanes::StripSelection<C, V>> selections(strips);
      alignas(64) float scratch[lanes::strip_floats<K, C, N>()];
      for (int64_t t = begin; t < end; ++t) {
        const int64_t b = t / bands, i0 = (t % bands) * band, i1 = std::min(i0 + band, Hp);
        const int64_t n_strips = (i1 - i0) * groups;  // strip u: patch-row i0 + u / groups, strip u % groups
        auto strip_of = [&](const float* image, int64_t u) {
          return image_strip<K, N>(image, H, W, i0 + u / groups, u % groups);
        };
        for (int64_t u = 0; u < n_strips; ++u) {
          lanes::strip_gram<K, C>(strip_of(sp + b * CHW, u), strip_valid<N>(Wp, u % groups), scratch, &ge[u * P]);
          selections[u] = lanes::StripSelection<C, V>{};
        }
        for (int64_t n = 0; n < NC; ++n) {
          const float* image = cp + (b * NC + n) * CHW;
          for (int64_t u = 0; u < n_strips; ++u) {
            V gc[P];
            lanes::prefetch_strip<K, C, N>(strip_of(image, u), kPrefetchStrips);
            lanes::strip_gram<K, C>(strip_of(image, u), strip_valid<N>(Wp, u % groups), scratch, gc);
            selections[u].add(&ge[u * P], gc, static_cast<int32_t>(n), beta, gram_loss, criterion);
          }
        }
        for (int64_t u = 0; u < n_strips; ++u) {
          const int64_t i = i0 + u / groups, g = u % groups;
          const int valid = strip_valid<N>(Wp, g);
          const int64_t u0 = (b * Hp + i) * Wp + g * N;  // flat index of the strip's first patch
          store_lanes(ip + u0, selections[u].run.index, valid);
          if (lp == nullptr) continue;
          if (gram_loss) {
            store_lanes(lp + u0, selections[u].loss / lanes::broadcast<V>(C * C), valid);
            selections[u].store_residual(rp + b * C * C * Hp * Wp + i * Wp + g * N, Hp * Wp, valid);
            continue;
          }
          for (int p = 0; p < valid; ++p) {
            const int64_t offset = i * K * W + (g * N + p) * K;
            lp[u0 + p] =
                write_pixel_residual(sp + b * CHW + offset, H * W, W, cp + (b * NC + ip[u0 + p]) * CHW + offset, H * W,
                                     W, C, K, criterion, rp + b * CHW + offset);
          }
        }
      }
    });
  });
}

// The Gram bank of every global candidate patch in float32, (B, M, P): one task per (image, level,
// patch-row), the same strip Grams as the SR side (so equal patches score exactly 0).
template <int K, int C>
at::Tensor global_bank_lanes(const Levels& levels, int64_t B) {
  constexpr int P = pair_count<C>();
  at::Tensor bank = at::empty({B, levels.total, P}, levels.images[0].options());
  float* bp = bank.data_ptr<float>();
  std::vector<int64_t> row_start{0};
  for (size_t l = 0; l < levels.images.size(); ++l) row_start.push_back(row_start.back() + levels.height[l] / K);
  const int64_t rows_per_image = row_start.back();
  at::parallel_for(0, B * rows_per_image, 1, [&](int64_t begin, int64_t end) {
    alignas(32) float scratch[lanes::strip_floats<K, C>()];
    lanes::run_simd([&] {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t b = t / rows_per_image, r = t % rows_per_image;
        size_t l = 0;
        while (row_start[l + 1] <= r) ++l;
        const int64_t i = r - row_start[l], H = levels.height[l], W = levels.width[l], Wp = W / K;
        const float* image = levels.images[l].data_ptr<float>() + b * C * H * W;
        float* row = bp + (b * levels.total + levels.offset[l] + i * Wp) * P;
        for (int64_t g = 0; g < (Wp + kLanes - 1) / kLanes; ++g) {
          F8 G[P];
          const int valid = strip_valid(Wp, g);
          lanes::strip_gram<K, C>(image_strip<K>(image, H, W, i, g), valid, scratch, G);
          for (int p = 0; p < valid; ++p) {
            for (int q = 0; q < P; ++q) row[(g * kLanes + p) * P + q] = G[q][p];
          }
        }
      }
    });
  });
  return bank;
}

// SR patches per task of the global search: kQueryVectors SIMD values of 8 patches, whose running
// argmins stay in registers while the image's whole bank streams past (from L2: M x P floats).
constexpr int kQueryVectors = 4;
constexpr int64_t kQueryBlock = kQueryVectors * kLanes;

// Running argmin of one block of SR patches (ge, gg: pairs with stride n_pad, the block's first patch at
// offset 0) over the bank of one image (M x P, candidate m's pairs at bank[m * P]).
template <int C, bool WithGt>
void global_search_block(const float* ge, const float* gg, int64_t n_pad, const float* bank, int64_t M, float beta,
                         lanes::RunningMin<>* runs) {
  constexpr int P = pair_count<C>();
  for (int64_t m = 0; m < M; ++m) {
    F8 c[P];
    for (int q = 0; q < P; ++q) c[q] = lanes::splat(bank[m * P + q]);
    GRAMGAN_LANES_UNROLL
    for (int v = 0; v < kQueryVectors; ++v) {
      F8 score = lanes::frobenius2_broadcast<C>(c, ge + v * kLanes, n_pad);
      if constexpr (WithGt) score += lanes::splat(beta) * lanes::frobenius2_broadcast<C>(c, gg + v * kLanes, n_pad);
      runs[v].update(score, static_cast<int32_t>(m));
    }
  }
}

// Global scope forward in float32: the bank, the SR Grams of each image (pairs layout, stride n_pad),
// then one task per (image, block of SR patches) runs the search; no (N x M) scores ever exist.
template <int K, int C>
void global_forward_lanes(const at::Tensor& sr, const Levels& levels, double gt_weight, int target, int criterion,
                          at::Tensor& index, at::Tensor* loss) {
  constexpr int P = pair_count<C>();
  const int64_t B = sr.size(0), H = sr.size(2), W = sr.size(3);
  const int64_t Hp = H / K, Wp = W / K, N = Hp * Wp, CHW = C * H * W, M = levels.total;
  const int64_t blocks = (N + kQueryBlock - 1) / kQueryBlock, n_pad = blocks * kQueryBlock;
  const at::Tensor bank = global_bank_lanes<K, C>(levels, B);
  const float* bp = bank.data_ptr<float>();
  const float* sp = sr.data_ptr<float>();
  int64_t* ip = index.data_ptr<int64_t>();
  float* lp = loss ? loss->data_ptr<float>() : nullptr;
  const float beta = static_cast<float>(gt_weight);
  // SR Grams and ground-truth Grams (bank level 0, aligned with SR), (B, P, n_pad), zero padded.
  std::vector<float> ge(B * P * n_pad, 0.0f), gg(B * P * n_pad, 0.0f);
  at::parallel_for(0, B * Hp, 1, [&](int64_t begin, int64_t end) {
    alignas(32) float scratch[lanes::strip_floats<K, C>()];
    lanes::run_simd([&] {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t b = t / Hp, i = t % Hp;
        float* e = ge.data() + b * P * n_pad + i * Wp;
        for (int64_t g = 0; g < (Wp + kLanes - 1) / kLanes; ++g) {
          F8 G[P];
          const int valid = strip_valid(Wp, g);
          lanes::strip_gram<K, C>(image_strip<K>(sp + b * CHW, H, W, i, g), valid, scratch, G);
          for (int q = 0; q < P; ++q) store_lanes(e + q * n_pad + g * kLanes, G[q], valid);
        }
        for (int64_t j = 0; j < Wp; ++j) {
          for (int q = 0; q < P; ++q) gg[b * P * n_pad + q * n_pad + i * Wp + j] = bp[(b * M + i * Wp + j) * P + q];
        }
      }
    });
  });
  at::parallel_for(0, B * blocks, 1, [&](int64_t begin, int64_t end) {
    lanes::run_simd([&] {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t b = t / blocks, n0 = (t % blocks) * kQueryBlock;
        const float* e = ge.data() + b * P * n_pad + n0;
        const float* bank_b = bp + b * M * P;
        lanes::RunningMin<> runs[kQueryVectors];
        if (beta != 0.0f) {
          global_search_block<C, true>(e, gg.data() + b * P * n_pad + n0, n_pad, bank_b, M, beta, runs);
        } else {
          global_search_block<C, false>(e, nullptr, n_pad, bank_b, M, beta, runs);
        }
        for (int v = 0; v < kQueryVectors; ++v) {
          const int64_t first = n0 + v * kLanes;
          if (first < N)
            store_lanes(ip + b * N + first, runs[v].index, static_cast<int>(std::min<int64_t>(kLanes, N - first)));
        }
        if (lp == nullptr) continue;
        for (int64_t n = n0; n < std::min(n0 + kQueryBlock, N); ++n) {
          const int64_t m = ip[b * N + n];
          if (target == kTargetGram) {
            lp[b * N + n] = gram_target_loss<C>(ge.data() + b * P * n_pad + n, n_pad, bank_b + m * P, 1, C, criterion);
          } else {
            int64_t cH = 0, cW = 0;
            const float* c = global_patch<float, K, C>(levels, b, m, &cH, &cW);
            lp[b * N + n] = pixel_target_loss<float>(sp + b * CHW + (n / Wp) * K * W + (n % Wp) * K, H * W, W, c,
                                                     cH * cW, cW, C, K, criterion);
          }
        }
      }
    });
  });
}

// ---- entry points -------------------------------------------------------------------------------
// float16 / bfloat16 inputs are converted to float32 once here; the kernels read T = float or double.

// Allocates the index (and with with_loss the loss) of sr's patches and runs
// kernel(T{}, K-constant, C-constant, index, loss or nullptr) for sr's type (float or double).
template <typename F>
std::tuple<at::Tensor, at::Tensor> run_forward(const at::Tensor& sr, int64_t k, bool with_loss, const F& kernel) {
  const int64_t B = sr.size(0), Hp = sr.size(2) / k, Wp = sr.size(3) / k;
  at::Tensor index = at::empty({B, Hp, Wp}, sr.options().dtype(at::kLong));
  at::Tensor loss;
  if (with_loss) loss = at::empty({B, Hp, Wp}, sr.options());
  dispatch_kernel(sr.scalar_type(), k, sr.size(1),
                  [&](auto t, auto kc, auto cc) { kernel(t, kc, cc, index, with_loss ? &loss : nullptr); });
  return {loss, index};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> local_forward(const at::Tensor& sr_in, const at::Tensor& cand_in,
                                                             int64_t k, double gt_weight, int target, int criterion,
                                                             bool with_loss) {
  check_local(sr_in, cand_in, k);
  const at::ScalarType compute = acc_scalar_type(sr_in.scalar_type());
  const at::Tensor sr = sr_in.to(compute).contiguous(), cand = cand_in.to(compute).contiguous();
  at::Tensor residual;
  if (with_loss) residual = at::empty(residual_shape(sr, k, target), sr.options());
  auto [loss, index] =
      run_forward(sr, k, with_loss, [&](auto t, auto kc, auto cc, at::Tensor& index, at::Tensor* loss) {
    constexpr int K = decltype(kc)::value, C = decltype(cc)::value;
    if constexpr (std::is_same_v<decltype(t), float>) {
      local_forward_lanes<K, C>(sr, cand, gt_weight, target, criterion, index, loss, &residual);
    } else {
      local_forward_kernel<decltype(t), K, C>(sr, cand, gt_weight, target, criterion, index, loss, &residual);
    }
  });
  return {loss, index, residual};
}

std::tuple<at::Tensor, at::Tensor> global_forward(const at::Tensor& sr_in, at::TensorList candidates, int64_t k,
                                                  double gt_weight, int target, int criterion, bool with_loss) {
  check_image(sr_in, "sr", k);
  const at::ScalarType compute = acc_scalar_type(sr_in.scalar_type());
  const Levels levels(sr_in, candidates, k, compute);
  const at::Tensor sr = sr_in.to(compute).contiguous();
  return run_forward(sr, k, with_loss, [&](auto t, auto kc, auto cc, at::Tensor& index, at::Tensor* loss) {
    constexpr int K = decltype(kc)::value, C = decltype(cc)::value;
    if constexpr (std::is_same_v<decltype(t), float>) {
      global_forward_lanes<K, C>(sr, levels, gt_weight, target, criterion, index, loss);
    } else {
      global_forward_kernel<decltype(t), K, C>(sr, levels, gt_weight, target, criterion, index, loss);
    }
  });
}

using Ops = SelectionOps<local_forward, global_forward>;

}  // namespace
}  // namespace cpu
}  // namespace gramgan

TORCH_LIBRARY_IMPL(gramgan, CPU, m) {
  m.impl("gram_select_local", &gramgan::cpu::Ops::select_local);
  m.impl("gram_select_global", &gramgan::cpu::Ops::select_global);
  m.impl("texture_loss_local", &gramgan::cpu::Ops::loss_local);
  m.impl("texture_loss_global", &gramgan::cpu::Ops::loss_global);
}
