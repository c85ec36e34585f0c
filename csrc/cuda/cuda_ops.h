// The CUDA entry points of gramgan._C (defined in the .cu files beside this header, registered for the
// CUDA dispatch key in register.cpp, which the host compiler builds: the .cu files stay free of the
// heavy operator-registration headers, so nvcc's per-architecture passes stay short).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <tuple>

namespace gramgan {
namespace cuda {

at::Tensor patch_gram_cuda(const at::Tensor& x, int64_t k);
at::Tensor patch_gram_backward_cuda(const at::Tensor& grad, const at::Tensor& x, int64_t k);

at::Tensor gram_select_local_cuda(const at::Tensor& sr, const at::Tensor& candidates, int64_t k, double gt_weight);
at::Tensor gram_select_global_cuda(const at::Tensor& sr, at::TensorList candidates, int64_t k, double gt_weight);

std::tuple<at::Tensor, at::Tensor, at::Tensor> texture_loss_local_cuda(const at::Tensor& sr,
                                                                       const at::Tensor& candidates, int64_t k,
                                                                       double gt_weight, c10::string_view target,
                                                                       c10::string_view criterion);
std::tuple<at::Tensor, at::Tensor> texture_loss_global_cuda(const at::Tensor& sr, at::TensorList candidates, int64_t k,
                                                            double gt_weight, c10::string_view target,
                                                            c10::string_view criterion);
at::Tensor texture_loss_residual_backward_cuda(const at::Tensor& grad, const at::Tensor& sr, const at::Tensor& residual,
                                               int64_t k, c10::string_view target, c10::string_view criterion);
at::Tensor texture_loss_global_backward_cuda(const at::Tensor& grad, const at::Tensor& sr, at::TensorList candidates,
                                             const at::Tensor& index, int64_t k, c10::string_view target,
                                             c10::string_view criterion);

std::tuple<at::Tensor, at::Tensor, at::Tensor> texture_loss_sampled_cuda(const at::Tensor& sr, const at::Tensor& hr,
                                                                         const at::Tensor& hr_half,
                                                                         const at::Tensor& thetas, int64_t k,
                                                                         double gt_weight, c10::string_view target,
                                                                         c10::string_view criterion);

at::Tensor texture_mask_cuda(const at::Tensor& x, int64_t k, double threshold, int64_t offset_y, int64_t offset_x,
                             c10::string_view mode, int64_t window);
std::tuple<at::Tensor, at::Tensor> mask_pair_cuda(const at::Tensor& sr, const at::Tensor& hr, int64_t k,
                                                  double threshold, int64_t offset_y, int64_t offset_x,
                                                  c10::string_view mode, int64_t window);
at::Tensor mask_pair_backward_cuda(const at::Tensor& grad, const at::Tensor& hr, int64_t k, double threshold,
                                   int64_t offset_y, int64_t offset_x, c10::string_view mode, int64_t window);

at::Tensor downsample_half_cuda(const at::Tensor& x);

}  // namespace cuda
}  // namespace gramgan
