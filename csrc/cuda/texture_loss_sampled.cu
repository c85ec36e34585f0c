// CUDA kernels of the sampled local texture loss (docs/ops.md, "Sampled candidates"): the local texture
// loss against candidates read from hr, its half-size image and the affine maps, never stored.
//
// Forward: the threads of an SR patch (one per candidate, candidate_slots.cuh) compute its Gram, then stream
// their candidates' k x k pixels from the sources (hr, the re-tiled half-size image, or hr sampled through
// the warp) into those candidates' Grams; the patch's first thread takes the argmin over them and writes
// the index, the loss and the residual against the chosen candidate (G(e) - G(c*), or e - c* for the pixel
// target: what the backward, the local one, reads). The sampling and per-patch arithmetic are the shared
// code of csrc/include/gramgan_patch.h (also what the CPU kernels call). Every output element is written
// by exactly one thread: results are deterministic.
#include <tuple>

#include "candidate_slots.cuh"
#include "cuda_common.cuh"
#include "cuda_ops.h"

namespace gramgan {
namespace cuda {
namespace {

// Where the sources of every image of a batch live (device pointers), and the sizes.
template <typename scalar_t>
struct SampledBatch {
  const scalar_t* hr;                  // (B, C, H, W)
  const scalar_t* half;                // (B, C, H/2, W/2)
  const acc_type_t<scalar_t>* thetas;  // (B, J, 2, 3)
  const acc_type_t<scalar_t>* xs;      // (W) normalised pixel coordinates
  const acc_type_t<scalar_t>* ys;      // (H)
  int64_t B, H, W, J;
  int C, K;

  __device__ __forceinline__ SampledCandidates<acc_type_t<scalar_t>, scalar_t> image(int64_t b) const {
    return {hr + b * C * H * W, half + b * C * (H / 2) * (W / 2), thetas + b * J * 6, xs, ys, H, W, C, K};
  }
};

// Forward: every thread of a patch (CandidateSlots) computes the patch's Gram and hr's, then the Grams and
// selection keys of its own candidates; the patch's first thread takes the best of them from shared
// memory and writes the index, the loss and the residual. The same arithmetic and the same order of
// candidates as one thread scanning them all.
template <typename scalar_t>
__global__ void sampled_forward_kernel(const scalar_t* __restrict__ sr, const SampledBatch<scalar_t> in,
                                       const CandidateSlots layout, acc_type_t<scalar_t> beta, int target,
                                       int criterion, int64_t* __restrict__ index,
                                       acc_type_t<scalar_t>* __restrict__ loss,
                                       acc_type_t<scalar_t>* __restrict__ residual) {
  using acc_t = acc_type_t<scalar_t>;
  __shared__ SlotBests<acc_t> bests;
  const int64_t H = in.H, W = in.W, Hp = H / in.K, Wp = W / in.K;
  // Patch n's image and top-left pixel (worked out where needed, not kept across the barrier, which would
  // cost every thread registers).
  const auto image_of = [&](int64_t n) { return n / (Hp * Wp); };
  const auto row_of = [&](int64_t n) { return ((n / Wp) % Hp) * in.K; };
  const auto column_of = [&](int64_t n) { return (n % Wp) * in.K; };
  const auto score = [&](int64_t n, int slot, acc_t* ge) {
    const int64_t b = image_of(n), y0 = row_of(n), x0 = column_of(n);
    const SampledCandidates<acc_t, scalar_t> source = in.image(b);
    acc_t gg[kMaxPairs];
    patch_gram<kMaxChannels>(sr + b * in.C * H * W + y0 * W + x0, H * W, W, in.C, in.K, ge);
    patch_gram<kMaxChannels>(source.hr + y0 * W + x0, H * W, W, in.C, in.K, gg);  // candidate 0: hr itself
    score_own_candidates(ge, gg, beta, 2 + in.J, slot, layout.slots, [&](int64_t m, acc_t* gc) {
      source_patch_gram<kMaxChannels>(source, m, y0, x0, in.C, in.K, gc);
    }, bests);
  };
  const auto write = [&](int64_t n, const acc_t* ge, int best) {
    const int64_t b = image_of(n), y0 = row_of(n), x0 = column_of(n), chosen = bests.candidate[best];
    index[n] = chosen;
    if (target == kTargetGram) {
      loss[n] = gram_target_loss<kMaxChannels>(ge, 1, bests.gram[best], 1, in.C, criterion);
      write_gram_residual<kMaxChannels>(ge, 1, bests.gram[best], 1, in.C,
                                        residual + b * in.C * in.C * Hp * Wp + n % (Hp * Wp), Hp * Wp);
    } else {
      const int64_t pixel = b * in.C * H * W + y0 * W + x0;  // the patch's top-left pixel in SR
      loss[n] = write_source_pixel_residual<kMaxChannels>(in.image(b), chosen, y0, x0, in.C, in.K, sr + pixel,
                                                          residual + pixel, H * W, W, criterion);
    }
  };
  select_in_rounds(in.B * Hp * Wp, layout, bests, score, write);
}

// The inputs of one call, contiguous on the device, with affine_grid's normalised pixel coordinates.
struct SampledInputs {
  at::Tensor sr, hr, half, thetas, xs, ys;

  SampledInputs(const at::Tensor& sr_in, const at::Tensor& hr_in, const at::Tensor& half_in,
                const at::Tensor& thetas_in, int64_t k) {
    check_sampled(sr_in, hr_in, half_in, thetas_in, k);
    const at::ScalarType acc = acc_scalar_type(sr_in.scalar_type());
    sr = sr_in.contiguous();
    hr = hr_in.contiguous();
    half = half_in.contiguous();
    thetas = thetas_in.to(acc).contiguous();
    xs = affine_base_coordinates(sr.size(3), sr.options().dtype(acc));
    ys = affine_base_coordinates(sr.size(2), sr.options().dtype(acc));
  }

  template <typename scalar_t>
  SampledBatch<scalar_t> batch(int64_t k) const {
    using acc_t = acc_type_t<scalar_t>;
    return {hr.data_ptr<scalar_t>(),
            half.data_ptr<scalar_t>(),
            thetas.data_ptr<acc_t>(),
            xs.data_ptr<acc_t>(),
            ys.data_ptr<acc_t>(),
            sr.size(0),
            sr.size(2),
            sr.size(3),
            thetas.size(1),
            static_cast<int>(sr.size(1)),
            static_cast<int>(k)};
  }
};

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> texture_loss_sampled_cuda(const at::Tensor& sr_in, const at::Tensor& hr,
                                                                         const at::Tensor& hr_half,
                                                                         const at::Tensor& thetas, int64_t k,
                                                                         double gt_weight, c10::string_view target,
                                                                         c10::string_view criterion) {
  const c10::cuda::CUDAGuard guard(sr_in.device());
  const SampledInputs in(sr_in, hr, hr_half, thetas, k);
  const int t = parse_target(target), c = parse_criterion(criterion);
  const at::Tensor& sr = in.sr;
  at::Tensor index = at::empty({sr.size(0), sr.size(2) / k, sr.size(3) / k}, sr.options().dtype(at::kLong));
  at::Tensor loss = at::empty(index.sizes(), sr.options().dtype(acc_scalar_type(sr.scalar_type())));
  at::Tensor residual = at::empty(residual_shape(sr, k, t), loss.options());
  const int64_t N = index.numel();
  if (N == 0) return {loss, index, residual};
  const CandidateSlots layout(2 + in.thetas.size(1));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, sr.scalar_type(), "gramgan_sampled_forward_cuda", [&] {
    using acc_t = acc_type_t<scalar_t>;
    GRAMGAN_LAUNCH(sampled_forward_kernel<scalar_t>, layout.blocks(N), layout.threads(), 0, stream)(
        sr.data_ptr<scalar_t>(), in.batch<scalar_t>(k), layout, static_cast<acc_t>(gt_weight), t, c,
        index.data_ptr<int64_t>(), loss.data_ptr<acc_t>(), residual.data_ptr<acc_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {loss, index, residual};
}

}  // namespace cuda
}  // namespace gramgan
