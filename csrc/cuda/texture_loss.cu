// CUDA kernels of the Gram selection and the texture loss (docs/ops.md), local and global scope.
//
// Local scope: one launch forward (the threads of an SR patch, one per candidate: candidate_slots.cuh;
// its Gram, each co-located candidate's Gram, the score, the argmin, the loss and the residual against
// the chosen candidate) and one launch backward from SR and that residual, a thread per pixel (also the
// sampled loss's backward).
// Global scope: the candidate Gram bank (B, M, kMaxPairs) is computed per level, then one launch keeps
// a running argmin over shared-memory tiles of the bank (no N x M score matrix); the pixel-target loss
// and the backward run once per level over the SR patches whose choice lies in that level.
// Every output element is written by exactly one thread: results are deterministic.
#include <tuple>
#include <vector>

#include "candidate_slots.cuh"
#include "cuda_common.cuh"
#include "cuda_ops.h"

namespace gramgan {
namespace cuda {
namespace {

constexpr int kTile = 128;  // bank entries per shared-memory tile of the global search

// Local forward: every thread of a patch (CandidateSlots) computes the patch's Gram and candidate 0's,
// then the Grams and selection keys of its own candidates; the patch's first thread takes the best of them
// from shared memory and writes the index and, unless loss is null (the selection alone), the loss and
// the residual.
template <typename scalar_t>
__global__ void local_forward_kernel(const scalar_t* __restrict__ sr, const scalar_t* __restrict__ cand, int64_t B,
                                     int C, int K, int64_t H, int64_t W, int64_t NC, const CandidateSlots layout,
                                     acc_type_t<scalar_t> beta, int target, int criterion, int64_t* __restrict__ index,
                                     acc_type_t<scalar_t>* __restrict__ loss,
                                     acc_type_t<scalar_t>* __restrict__ residual) {
  using acc_t = acc_type_t<scalar_t>;
  __shared__ SlotBests<acc_t> bests;
  const int64_t Hp = H / K, Wp = W / K, CHW = C * H * W;
  // Patch n's top-left pixel, relative to its image (worked out where needed, not kept across the barrier,
  // which would cost every thread registers).
  const auto patch_of = [&](int64_t n) { return ((n / Wp) % Hp) * K * W + (n % Wp) * K; };
  const auto score = [&](int64_t n, int slot, acc_t* ge) {
    const int64_t b = n / (Hp * Wp), patch = patch_of(n);
    const scalar_t* cand_b = cand + b * NC * CHW + patch;  // candidate c's patch: cand_b + c * CHW
    acc_t gg[kMaxPairs];
    patch_gram<kMaxChannels>(sr + b * CHW + patch, H * W, W, C, K, ge);
    patch_gram<kMaxChannels>(cand_b, H * W, W, C, K, gg);
    score_own_candidates(ge, gg, beta, NC, slot, layout.slots, [&](int64_t c, acc_t* gc) {
      patch_gram<kMaxChannels>(cand_b + c * CHW, H * W, W, C, K, gc);
    }, bests);
  };
  const auto write = [&](int64_t n, const acc_t* ge, int best) {
    const int64_t b = n / (Hp * Wp), patch = patch_of(n), chosen = bests.candidate[best];
    index[n] = chosen;
    if (loss == nullptr) return;
    if (target == kTargetGram) {
      loss[n] = gram_target_loss<kMaxChannels>(ge, 1, bests.gram[best], 1, C, criterion);
      write_gram_residual<kMaxChannels>(ge, 1, bests.gram[best], 1, C, residual + b * C * C * Hp * Wp + n % (Hp * Wp),
                                        Hp * Wp);
    } else {
      loss[n] = write_pixel_residual(sr + b * CHW + patch, H * W, W, cand + b * NC * CHW + chosen * CHW + patch, H * W,
                                     W, C, K, criterion, residual + b * CHW + patch);
    }
  };
  select_in_rounds(B * Hp * Wp, layout, bests, score, write);
}

// The backward of the local and sampled losses from SR and the forward's residual, a thread per SR pixel:
// its reads of SR and writes of dx are coalesced, and the K * K threads of a patch read its few residual
// values (or, for the pixel target, their own pixel's) and upstream gradient. A thread per patch, writing
// its K * K pixels one after another, had a sixteenth of the threads (k = 4) and strided accesses.
template <typename scalar_t>
__global__ void residual_backward_kernel(const acc_type_t<scalar_t>* __restrict__ grad, const scalar_t* __restrict__ sr,
                                         const acc_type_t<scalar_t>* __restrict__ residual, int64_t B, int C, int K,
                                         int64_t H, int64_t W, int target, int criterion, scalar_t* __restrict__ dx) {
  using acc_t = acc_type_t<scalar_t>;
  const int64_t Hp = H / K, Wp = W / K, HW = H * W, pixels = B * HW;
  for (int64_t t = global_thread(); t < pixels; t += grid_stride()) {
    const int64_t b = t / HW, yx = t % HW, y = yx / W, x = yx % W;
    const int64_t in_image = (y / K) * Wp + x / K, n = b * Hp * Wp + in_image;  // the pixel's patch
    const int64_t pixel = b * C * HW + yx;                                      // its channel 0 in SR and dx
    if (target == kTargetGram) {
      acc_t D[kMaxChannels][kMaxChannels];
      residual_grad_matrix<kMaxChannels>(residual + b * C * C * Hp * Wp + in_image, Hp * Wp, grad[n], C, K, criterion,
                                         D);
      apply_pixel_matrix<kMaxChannels>(D, sr + pixel, HW, C, dx + pixel);
    } else {
      pixel_residual_grad_at(residual + pixel, HW, C, pixel_grad_scale(grad[n], C, K), criterion, dx + pixel);
    }
  }
}

// Gram bank entries of one level: bank[(b * M + offset + q) * kMaxPairs + p] for patch q of level l.
template <typename scalar_t>
__global__ void bank_kernel(const scalar_t* __restrict__ image, int64_t B, int C, int K, int64_t H, int64_t W,
                            int64_t M, int64_t offset, acc_type_t<scalar_t>* __restrict__ bank) {
  using acc_t = acc_type_t<scalar_t>;
  const int64_t Hp = H / K, Wp = W / K, N = B * Hp * Wp;
  for (int64_t n = global_thread(); n < N; n += grid_stride()) {
    const int64_t b = n / (Hp * Wp), q = n % (Hp * Wp);
    acc_t G[kMaxPairs];
    patch_gram<kMaxChannels>(image + b * C * H * W + (q / Wp) * K * W + (q % Wp) * K, H * W, W, C, K, G);
    acc_t* dst = bank + (b * M + offset + q) * kMaxPairs;
#pragma unroll
    for (int p = 0; p < kMaxPairs; ++p) dst[p] = G[p];
  }
}

// Running argmin over the bank for every SR patch: blockIdx.x covers the patches of one image,
// blockIdx.y (with a stride) the images. With loss != nullptr the Gram-target loss is written too.
template <typename scalar_t>
__global__ void global_search_kernel(const scalar_t* __restrict__ sr, const acc_type_t<scalar_t>* __restrict__ bank,
                                     int64_t B, int C, int K, int64_t H, int64_t W, int64_t M,
                                     acc_type_t<scalar_t> beta, int criterion, int64_t* __restrict__ index,
                                     acc_type_t<scalar_t>* __restrict__ loss) {
  using acc_t = acc_type_t<scalar_t>;
  __shared__ acc_t tile[kTile * kMaxPairs];
  const int64_t Hp = H / K, Wp = W / K, N = Hp * Wp;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = n < N;
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    const acc_t* bank_b = bank + b * M * kMaxPairs;
    acc_t ge[kMaxPairs], gg[kMaxPairs];
    if (active) {
      patch_gram<kMaxChannels>(sr + b * C * H * W + (n / Wp) * K * W + (n % Wp) * K, H * W, W, C, K, ge);
#pragma unroll
      for (int p = 0; p < kMaxPairs; ++p) gg[p] = bank_b[n * kMaxPairs + p];  // level 0: the aligned GT
    }
    acc_t best = acc_t(0);
    int64_t chosen = 0;
    for (int64_t start = 0; start < M; start += kTile) {
      const int count = static_cast<int>(M - start < kTile ? M - start : kTile);
      __syncthreads();  // the previous tile is no longer read
      for (int e = threadIdx.x; e < count * kMaxPairs; e += blockDim.x) tile[e] = bank_b[start * kMaxPairs + e];
      __syncthreads();
      if (active) {
        for (int t = 0; t < count; ++t) {
          const acc_t key = selection_key(selection_score<kMaxChannels>(ge, gg, 1, tile + t * kMaxPairs, 1, beta));
          const int64_t m = start + t;
          if (improves(key, best, m == 0)) {
            best = key;
            chosen = m;
          }
        }
      }
    }
    if (active) {
      index[b * N + n] = chosen;
      if (loss != nullptr)
        loss[b * N + n] = gram_target_loss<kMaxChannels>(ge, 1, bank_b + chosen * kMaxPairs, 1, C, criterion);
    }
  }
}

// Pixel-target loss of the SR patches whose chosen candidate lies in level l (the others are skipped).
template <typename scalar_t>
__global__ void global_pixel_loss_kernel(const scalar_t* __restrict__ sr, const scalar_t* __restrict__ level,
                                         const int64_t* __restrict__ index, int64_t B, int C, int K, int64_t H,
                                         int64_t W, int64_t lH, int64_t lW, int64_t offset, int criterion,
                                         acc_type_t<scalar_t>* __restrict__ loss) {
  using acc_t = acc_type_t<scalar_t>;
  const int64_t Hp = H / K, Wp = W / K, N = B * Hp * Wp, lWp = lW / K, count = (lH / K) * lWp;
  for (int64_t n = global_thread(); n < N; n += grid_stride()) {
    const int64_t q = index[n] - offset;
    if (q < 0 || q >= count) continue;
    const int64_t b = n / (Hp * Wp), patch = ((n / Wp) % Hp) * K * W + (n % Wp) * K;
    const int64_t level_patch = (q / lWp) * K * lW + (q % lWp) * K;
    loss[n] = pixel_target_loss<acc_t>(sr + b * C * H * W + patch, H * W, W, level + b * C * lH * lW + level_patch,
                                       lH * lW, lW, C, K, criterion);
  }
}

// Backward of the SR patches whose chosen candidate lies in level l.
template <typename scalar_t>
__global__ void global_backward_kernel(const acc_type_t<scalar_t>* __restrict__ grad, const scalar_t* __restrict__ sr,
                                       const scalar_t* __restrict__ level, const int64_t* __restrict__ index, int64_t B,
                                       int C, int K, int64_t H, int64_t W, int64_t lH, int64_t lW, int64_t offset,
                                       int target, int criterion, scalar_t* __restrict__ dx) {
  const int64_t Hp = H / K, Wp = W / K, N = B * Hp * Wp, lWp = lW / K, count = (lH / K) * lWp;
  for (int64_t n = global_thread(); n < N; n += grid_stride()) {
    const int64_t q = index[n] - offset;
    if (q < 0 || q >= count) continue;
    const int64_t b = n / (Hp * Wp), patch = b * C * H * W + ((n / Wp) % Hp) * K * W + (n % Wp) * K;
    const int64_t level_patch = b * C * lH * lW + (q / lWp) * K * lW + (q % lWp) * K;
    patch_target_grad<kMaxChannels>(sr + patch, H * W, W, level + level_patch, lH * lW, lW, C, K, target, criterion,
                                    grad[n], dx + patch);
  }
}

// ---- entry points -------------------------------------------------------------------------------

std::tuple<at::Tensor, at::Tensor, at::Tensor> local_forward(const at::Tensor& sr_in, const at::Tensor& cand_in,
                                                             int64_t k, double gt_weight, int target, int criterion,
                                                             bool with_loss) {
  check_local(sr_in, cand_in, k);
  const c10::cuda::CUDAGuard guard(sr_in.device());
  const at::Tensor sr = sr_in.contiguous(), cand = cand_in.contiguous();
  const int64_t B = sr.size(0), C = sr.size(1), H = sr.size(2), W = sr.size(3);
  at::Tensor index = at::empty({B, H / k, W / k}, sr.options().dtype(at::kLong));
  at::Tensor loss, residual;
  if (with_loss) {
    loss = at::empty({B, H / k, W / k}, sr.options().dtype(acc_scalar_type(sr.scalar_type())));
    residual = at::empty(residual_shape(sr, k, target), loss.options());
  }
  const int64_t N = index.numel();
  if (N == 0) return {loss, index, residual};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, sr.scalar_type(), "gramgan_local_forward_cuda", [&] {
    using acc_t = acc_type_t<scalar_t>;
    const CandidateSlots layout(cand.size(1));
    GRAMGAN_LAUNCH(local_forward_kernel<scalar_t>, layout.blocks(N), layout.threads(), 0, stream)(
        sr.data_ptr<scalar_t>(), cand.data_ptr<scalar_t>(), B, static_cast<int>(C), static_cast<int>(k), H, W,
        cand.size(1), layout, static_cast<acc_t>(gt_weight), target, criterion, index.data_ptr<int64_t>(),
        with_loss ? loss.data_ptr<acc_t>() : nullptr, with_loss ? residual.data_ptr<acc_t>() : nullptr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {loss, index, residual};
}

std::tuple<at::Tensor, at::Tensor> global_forward(const at::Tensor& sr_in, at::TensorList candidates, int64_t k,
                                                  double gt_weight, int target, int criterion, bool with_loss) {
  check_image(sr_in, "sr", k);
  const c10::cuda::CUDAGuard guard(sr_in.device());
  const at::Tensor sr = sr_in.contiguous();
  const Levels levels(sr, candidates, k);
  const int64_t B = sr.size(0), C = sr.size(1), H = sr.size(2), W = sr.size(3), M = levels.total;
  at::Tensor index = at::empty({B, H / k, W / k}, sr.options().dtype(at::kLong));
  at::Tensor loss;
  if (with_loss) loss = at::empty({B, H / k, W / k}, sr.options().dtype(acc_scalar_type(sr.scalar_type())));
  const int64_t N = (H / k) * (W / k);  // SR patches per image
  if (B * N == 0) return {loss, index};
  const int64_t blocks = (N + kThreads - 1) / kThreads;
  TORCH_CHECK(blocks < (int64_t{1} << 31), "gramgan: too many patches per image: ", N);
  const dim3 search_grid(static_cast<unsigned int>(blocks), static_cast<unsigned int>(std::min<int64_t>(B, 65535)));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor bank = at::empty({B, M, kMaxPairs}, sr.options().dtype(acc_scalar_type(sr.scalar_type())));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, sr.scalar_type(), "gramgan_global_forward_cuda", [&] {
    using acc_t = acc_type_t<scalar_t>;
    for (size_t l = 0; l < levels.images.size(); ++l) {
      const int64_t count = B * (levels.height[l] / k) * (levels.width[l] / k);
      if (count == 0) continue;
      GRAMGAN_LAUNCH(bank_kernel<scalar_t>, grid_for(count), kThreads, 0, stream)(
          levels.images[l].data_ptr<scalar_t>(), B, static_cast<int>(C), static_cast<int>(k), levels.height[l],
          levels.width[l], M, levels.offset[l], bank.data_ptr<acc_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    acc_t* gram_loss = with_loss && target == kTargetGram ? loss.data_ptr<acc_t>() : nullptr;
    GRAMGAN_LAUNCH(global_search_kernel<scalar_t>, search_grid, kThreads, 0, stream)(
        sr.data_ptr<scalar_t>(), bank.data_ptr<acc_t>(), B, static_cast<int>(C), static_cast<int>(k), H, W, M,
        static_cast<acc_t>(gt_weight), criterion, index.data_ptr<int64_t>(), gram_loss);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (!with_loss || target == kTargetGram) return;
    for (size_t l = 0; l < levels.images.size(); ++l) {
      GRAMGAN_LAUNCH(global_pixel_loss_kernel<scalar_t>, grid_for(B * N), kThreads, 0, stream)(
          sr.data_ptr<scalar_t>(), levels.images[l].data_ptr<scalar_t>(), index.data_ptr<int64_t>(), B,
          static_cast<int>(C), static_cast<int>(k), H, W, levels.height[l], levels.width[l], levels.offset[l],
          criterion, loss.data_ptr<acc_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return {loss, index};
}

using Ops = SelectionOps<local_forward, global_forward>;

}  // namespace

at::Tensor gram_select_local_cuda(const at::Tensor& sr, const at::Tensor& candidates, int64_t k, double gt_weight) {
  return Ops::select_local(sr, candidates, k, gt_weight);
}

at::Tensor gram_select_global_cuda(const at::Tensor& sr, at::TensorList candidates, int64_t k, double gt_weight) {
  return Ops::select_global(sr, candidates, k, gt_weight);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> texture_loss_local_cuda(const at::Tensor& sr,
                                                                       const at::Tensor& candidates, int64_t k,
                                                                       double gt_weight, c10::string_view target,
                                                                       c10::string_view criterion) {
  return Ops::loss_local(sr, candidates, k, gt_weight, target, criterion);
}

std::tuple<at::Tensor, at::Tensor> texture_loss_global_cuda(const at::Tensor& sr, at::TensorList candidates, int64_t k,
                                                            double gt_weight, c10::string_view target,
                                                            c10::string_view criterion) {
  return Ops::loss_global(sr, candidates, k, gt_weight, target, criterion);
}

at::Tensor texture_loss_residual_backward_cuda(const at::Tensor& grad_in, const at::Tensor& sr_in,
                                               const at::Tensor& residual_in, int64_t k, c10::string_view target,
                                               c10::string_view criterion) {
  const int t = parse_target(target), c = parse_criterion(criterion);
  check_residual_backward_args(grad_in, sr_in, residual_in, k, t);
  const c10::cuda::CUDAGuard guard(sr_in.device());
  const at::Tensor sr = sr_in.contiguous(), residual = residual_in.contiguous();
  const at::Tensor grad = grad_in.to(acc_scalar_type(sr.scalar_type())).contiguous();
  at::Tensor dx = at::empty_like(sr);
  const int64_t pixels = sr.size(0) * sr.size(2) * sr.size(3);  // a thread each
  if (pixels == 0) return dx;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, sr.scalar_type(), "gramgan_residual_backward_cuda", [&] {
    using acc_t = acc_type_t<scalar_t>;
    GRAMGAN_LAUNCH(residual_backward_kernel<scalar_t>, grid_for(pixels), kThreads, 0, stream)(
        grad.data_ptr<acc_t>(), sr.data_ptr<scalar_t>(), residual.data_ptr<acc_t>(), sr.size(0),
        static_cast<int>(sr.size(1)), static_cast<int>(k), sr.size(2), sr.size(3), t, c, dx.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return dx;
}

at::Tensor texture_loss_global_backward_cuda(const at::Tensor& grad_in, const at::Tensor& sr_in,
                                             at::TensorList candidates, const at::Tensor& index_in, int64_t k,
                                             c10::string_view target, c10::string_view criterion) {
  check_image(sr_in, "sr", k);
  check_backward_args(grad_in, index_in, sr_in, k);
  const c10::cuda::CUDAGuard guard(sr_in.device());
  const at::Tensor sr = sr_in.contiguous(), index = index_in.contiguous();
  const Levels levels(sr, candidates, k);
  const at::Tensor grad = grad_in.to(acc_scalar_type(sr.scalar_type())).contiguous();
  const int t = parse_target(target), c = parse_criterion(criterion);
  at::Tensor dx = at::zeros_like(sr);  // every patch is written by the launch of its level
  const int64_t N = index.numel();
  if (N == 0) return dx;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, sr.scalar_type(), "gramgan_global_backward_cuda", [&] {
    using acc_t = acc_type_t<scalar_t>;
    for (size_t l = 0; l < levels.images.size(); ++l) {
      GRAMGAN_LAUNCH(global_backward_kernel<scalar_t>, grid_for(N), kThreads, 0, stream)(
          grad.data_ptr<acc_t>(), sr.data_ptr<scalar_t>(), levels.images[l].data_ptr<scalar_t>(),
          index.data_ptr<int64_t>(), sr.size(0), static_cast<int>(sr.size(1)), static_cast<int>(k), sr.size(2),
          sr.size(3), levels.height[l], levels.width[l], levels.offset[l], t, c, dx.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return dx;
}

}  // namespace cuda
}  // namespace gramgan
