// Registers the CUDA kernels of csrc/cuda/*.cu for the CUDA dispatch key of the gramgan ops; in the
// emulated test build (GRAMGAN_CUDA_EMULATION, docs/cuda-emulation.md) the same kernels, run on host
// threads, for the CPU key of the gramgan_emulated ops. Every namespace's schemas come from
// gramgan/ops/_contract.py.
#include <torch/library.h>

#include "cuda_ops.h"

namespace {

void register_cuda_kernels(torch::Library& m) {
  using namespace gramgan::cuda;
  m.impl("patch_gram", &patch_gram_cuda);
  m.impl("patch_gram_backward", &patch_gram_backward_cuda);
  m.impl("gram_select_local", &gram_select_local_cuda);
  m.impl("gram_select_global", &gram_select_global_cuda);
  m.impl("texture_loss_local", &texture_loss_local_cuda);
  m.impl("texture_loss_global", &texture_loss_global_cuda);
  m.impl("texture_loss_residual_backward", &texture_loss_residual_backward_cuda);
  m.impl("texture_loss_global_backward", &texture_loss_global_backward_cuda);
  m.impl("texture_loss_sampled", &texture_loss_sampled_cuda);
  m.impl("texture_mask", &texture_mask_cuda);
  m.impl("mask_pair", &mask_pair_cuda);
  m.impl("mask_pair_backward", &mask_pair_backward_cuda);
  m.impl("downsample_half", &downsample_half_cuda);
}

}  // namespace

#ifdef GRAMGAN_CUDA_EMULATION
TORCH_LIBRARY_IMPL(gramgan_emulated, CPU, m) { register_cuda_kernels(m); }
#else
TORCH_LIBRARY_IMPL(gramgan, CUDA, m) { register_cuda_kernels(m); }
#endif
