// Host-side helpers shared by the CPU and CUDA entry points: argument decoding and checks, the
// patch-size dispatch, the level table of the global candidate list and the mask entry points.
//
// The Python layer (gramgan/ops/_validate.py) checks every argument before an op runs; the checks
// here are cheap guards so that a direct torch.ops.gramgan call with bad input raises instead of
// reading out of bounds.
#pragma once

// Light includes on purpose: this header is parsed by nvcc once per GPU architecture.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/linspace.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/zeros_like.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/util/string_view.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "gramgan_common.h"
#include "gramgan_patch.h"

namespace gramgan {

// "{v0, v1, ...}": a coverage list as the error messages name it.
template <int... Vs>
inline std::string coverage_text(std::integer_sequence<int, Vs...>) {
  std::string text = "{";
  for (const int v : {Vs...}) {
    if (text.size() > 1) text += ", ";
    text += std::to_string(v);
  }
  return text + "}";
}

// Runs f(std::integral_constant<int, V>{}) for the value v of the coverage list (what: its name in the
// error raised for any other value).
template <int... Vs, typename F>
inline void dispatch_covered(std::integer_sequence<int, Vs...> list, int64_t v, const char* what, F&& f) {
  const bool found = ((v == Vs ? (f(std::integral_constant<int, Vs>{}), true) : false) || ...);
  TORCH_CHECK(found, "gramgan: the fused kernels support ", what, " in ", coverage_text(list), ", got ", what, "=", v);
}

// The two dispatchers of the coverage rule (gramgan_common.h): the runtime patch size k and channel count C
// as compile-time constants.
template <typename F>
inline void dispatch_patch_size(int64_t k, F&& f) {
  dispatch_covered(KernelPatchSizes{}, k, "k", f);
}

template <typename F>
inline void dispatch_channels(int64_t channels, F&& f) {
  dispatch_covered(KernelChannelCounts{}, channels, "C", f);
}

// The patch sizes the fused kernels are written for.
inline void check_patch_size(int64_t k) {
  TORCH_CHECK(covers(KernelPatchSizes{}, k), "gramgan: the fused kernels support k in ",
              coverage_text(KernelPatchSizes{}), ", got k=", k);
}

inline int parse_target(c10::string_view target) {
  if (target == "gram") return kTargetGram;
  if (target == "pixel") return kTargetPixel;
  TORCH_CHECK(false, "gramgan: unknown target '", std::string(target), "' (expected 'gram' or 'pixel')");
}

inline int parse_criterion(c10::string_view criterion) {
  if (criterion == "mse") return kCriterionMse;
  if (criterion == "l1") return kCriterionL1;
  TORCH_CHECK(false, "gramgan: unknown criterion '", std::string(criterion), "' (expected 'mse' or 'l1')");
}

// true for "sliding", false for "grid".
inline bool parse_sliding(c10::string_view mode) {
  if (mode == "grid") return false;
  if (mode == "sliding") return true;
  TORCH_CHECK(false, "gramgan: unknown mask mode '", std::string(mode), "' (expected 'grid' or 'sliding')");
}

// float64 stays float64, every other float type yields float32 Grams and losses.
inline at::ScalarType acc_scalar_type(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

// A (B, C, H, W) floating image whose H and W are multiples of k (k == 0: any size), C covered.
inline void check_image(const at::Tensor& x, const char* name, int64_t k) {
  if (k > 0) check_patch_size(k);
  TORCH_CHECK(x.dim() == 4, "gramgan: ", name, " must be (B, C, H, W), got ", x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "gramgan: ", name, " must be floating, got ", x.scalar_type());
  TORCH_CHECK(covers(KernelChannelCounts{}, x.size(1)), "gramgan: the fused kernels support C in ",
              coverage_text(KernelChannelCounts{}), " channels, ", name, " has ", x.size(1));
  if (k > 0) {
    TORCH_CHECK(x.size(2) % k == 0 && x.size(3) % k == 0, "gramgan: ", name, " has shape ", x.sizes(),
                ": H and W must be multiples of k=", k);
  }
}

inline void check_pair(const at::Tensor& a, const at::Tensor& b, const char* a_name, const char* b_name) {
  TORCH_CHECK(a.device() == b.device(), "gramgan: ", b_name, " is on ", b.device(), " but ", a_name, " is on ",
              a.device());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "gramgan: ", b_name, " has dtype ", b.scalar_type(), " but ", a_name,
              " has ", a.scalar_type());
}

// sr (B, C, H, W) and local candidates (B, K, C, H, W), aligned, K >= 1.
inline void check_local(const at::Tensor& sr, const at::Tensor& candidates, int64_t k) {
  check_image(sr, "sr", k);
  check_pair(sr, candidates, "sr", "candidates");
  TORCH_CHECK(
      candidates.dim() == 5 && candidates.size(0) == sr.size(0) && candidates.size(1) >= 1 &&
          candidates.size(2) == sr.size(1) && candidates.size(3) == sr.size(2) && candidates.size(4) == sr.size(3),
      "gramgan: candidates must be (B, K>=1, C, H, W) aligned with sr ", sr.sizes(), ", got ", candidates.sizes());
  TORCH_CHECK(candidates.size(1) < (int64_t{1} << 31), "gramgan: at most 2^31 - 1 local candidates");
}

// The sources of the sampled local candidates (docs/ops.md, "Sampled candidates"): hr like sr,
// hr_half (B, C, H/2, W/2) like sr, thetas (B, J, 2, 3) floating on sr's device; H and W multiples of 2k.
inline void check_sampled(const at::Tensor& sr, const at::Tensor& hr, const at::Tensor& hr_half,
                          const at::Tensor& thetas, int64_t k) {
  check_image(sr, "sr", k);
  check_pair(sr, hr, "sr", "hr");
  check_pair(sr, hr_half, "sr", "hr_half");
  TORCH_CHECK(hr.sizes() == sr.sizes(), "gramgan: hr has shape ", hr.sizes(), " but sr has ", sr.sizes());
  const int64_t B = sr.size(0), C = sr.size(1), H = sr.size(2), W = sr.size(3);
  TORCH_CHECK(H % (2 * k) == 0 && W % (2 * k) == 0, "gramgan: sr has shape ", sr.sizes(),
              ": H and W must be multiples of 2k=", 2 * k, " for sampled candidates");
  TORCH_CHECK(hr_half.dim() == 4 && hr_half.size(0) == B && hr_half.size(1) == C && hr_half.size(2) == H / 2 &&
                  hr_half.size(3) == W / 2,
              "gramgan: hr_half must be (B, C, H/2, W/2) for sr ", sr.sizes(), ", got ", hr_half.sizes());
  TORCH_CHECK(thetas.dim() == 4 && thetas.size(0) == B && thetas.size(2) == 2 && thetas.size(3) == 3 &&
                  at::isFloatingType(thetas.scalar_type()) && thetas.device() == sr.device(),
              "gramgan: thetas must be floating (B, J, 2, 3) on ", sr.device(), ", got ", thetas.scalar_type(), " ",
              thetas.sizes(), " on ", thetas.device());
  TORCH_CHECK(thetas.size(1) < (int64_t{1} << 30), "gramgan: too many affine maps: ", thetas.size(1));
}

// The normalised coordinates of the n pixel centres along an axis, computed by the very ops affine_grid
// runs (align_corners=False: linspace(-1, 1, n) (n - 1) / n), so the sampled warps start from its grid
// exactly; options give the dtype (the accumulation type) and device.
//
// Computed once per (n, dtype, device) and kept: otherwise every training step would launch six small
// kernels for them (three per axis), as many as the rest of the sampled loss's forward. A new entry is
// waited for on its device before it is shared, so a call on another stream never reads it unwritten.
inline at::Tensor affine_base_coordinates(int64_t n, const at::TensorOptions& options) {
  using Key = std::tuple<int64_t, int, int, int>;  // n, dtype, device type, device index
  static std::mutex mutex;
  // Never destroyed: it may hold device memory, which must not be freed after the runtime is torn down.
  static auto* cache = new std::map<Key, at::Tensor>();
  const c10::Device device = options.device();
  const Key key{n, static_cast<int>(c10::typeMetaToScalarType(options.dtype())), static_cast<int>(device.type()),
                device.index()};
  const std::lock_guard<std::mutex> lock(mutex);
  const auto found = cache->find(key);
  if (found != cache->end()) return found->second;
  if (cache->size() >= 64) cache->clear();  // a run uses a few sizes; a sweep over many starts afresh
  at::Tensor coordinates = at::linspace(-1, 1, n, options).mul(n - 1).div(n);
  if (!device.is_cpu()) {
    const c10::impl::DeviceGuardImplInterface* guard = c10::impl::getDeviceGuardImpl(device.type());
    guard->getStream(coordinates.device()).synchronize();
  }
  cache->emplace(key, coordinates);
  return coordinates;
}

// patch_gram_backward's upstream gradient: (B, H/k, W/k, C, C) on x's device.
inline void check_gram_grad(const at::Tensor& grad, const at::Tensor& x, int64_t k) {
  TORCH_CHECK(grad.dim() == 5 && grad.size(0) == x.size(0) && grad.size(1) == x.size(2) / k &&
                  grad.size(2) == x.size(3) / k && grad.size(3) == x.size(1) && grad.size(4) == x.size(1),
              "gramgan: patch_gram_backward: grad has shape ", grad.sizes(), " for x ", x.sizes());
  TORCH_CHECK(grad.device() == x.device(), "gramgan: grad is on ", grad.device(), ", x on ", x.device());
}

// The texture-loss backward's upstream gradient and saved index: (B, H/k, W/k) on sr's device, the
// index int64.
inline void check_backward_args(const at::Tensor& grad, const at::Tensor& index, const at::Tensor& sr, int64_t k) {
  const std::vector<int64_t> shape{sr.size(0), sr.size(2) / k, sr.size(3) / k};
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(shape) && grad.device() == sr.device(), "gramgan: grad has shape ",
              grad.sizes(), " on ", grad.device(), ", expected ", at::IntArrayRef(shape), " on ", sr.device());
  TORCH_CHECK(
      index.sizes() == at::IntArrayRef(shape) && index.scalar_type() == at::kLong && index.device() == sr.device(),
      "gramgan: index must be int64 of shape ", at::IntArrayRef(shape), " on ", sr.device(), ", got ",
      index.scalar_type(), " ", index.sizes(), " on ", index.device());
}

// Shape of the residual of the local and sampled texture losses (docs/ops.md): (B, C, C, H/k, W/k), the
// Gram difference of every patch, for the Gram target; SR's shape (B, C, H, W), e - c*, for the pixel target.
inline std::vector<int64_t> residual_shape(const at::Tensor& sr, int64_t k, int target) {
  if (target == kTargetGram) return {sr.size(0), sr.size(1), sr.size(1), sr.size(2) / k, sr.size(3) / k};
  return sr.sizes().vec();
}

// The arguments of texture_loss_residual_backward: grad (B, H/k, W/k) and a residual of residual_shape in
// the accumulation dtype, on SR's device.
inline void check_residual_backward_args(const at::Tensor& grad, const at::Tensor& sr, const at::Tensor& residual,
                                         int64_t k, int target) {
  check_image(sr, "sr", k);
  const std::vector<int64_t> shape{sr.size(0), sr.size(2) / k, sr.size(3) / k}, res = residual_shape(sr, k, target);
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(shape) && grad.device() == sr.device(), "gramgan: grad has shape ",
              grad.sizes(), " on ", grad.device(), ", expected ", at::IntArrayRef(shape), " on ", sr.device());
  TORCH_CHECK(residual.sizes() == at::IntArrayRef(res) && residual.device() == sr.device() &&
                  residual.scalar_type() == acc_scalar_type(sr.scalar_type()),
              "gramgan: residual must be ", acc_scalar_type(sr.scalar_type()), " of shape ", at::IntArrayRef(res),
              " on ", sr.device(), " (the forward's third output), got ", residual.scalar_type(), " ", residual.sizes(),
              " on ", residual.device());
}

// The mask's image, cell offset and (sliding mode) window.
inline void check_mask_args(const at::Tensor& x, int64_t k, int64_t oy, int64_t ox, bool sliding, int64_t window) {
  check_image(x, "x", 0);
  TORCH_CHECK(k >= 1 && oy >= 0 && oy < k && ox >= 0 && ox < k, "gramgan: offset (", oy, ", ", ox,
              ") must lie in [0, k)^2 with k=", k);
  if (sliding) {
    TORCH_CHECK(window >= 1 && window % 2 == 1, "gramgan: window must be an odd positive int, got ", window);
    TORCH_CHECK(window / 2 < x.size(2) && window / 2 < x.size(3), "gramgan: window=", window,
                " needs reflect padding smaller than H and W of ", x.sizes());
  }
}

// A tensor paired with the mask's source image hr: same shape, dtype and device.
inline void check_like_hr(const at::Tensor& hr, const at::Tensor& other, const char* name) {
  check_pair(hr, other, "hr", name);
  TORCH_CHECK(other.sizes() == hr.sizes(), "gramgan: ", name, " ", other.sizes(), " and hr ", hr.sizes(),
              " must have the same shape");
}

// ---- selection and loss entry points ------------------------------------------------------------
// The four forward ops of a backend from its two forward functions
// forward(sr, candidates, k, gt_weight, target, criterion, with_loss) -> (loss or undefined, index).
template <auto LocalForward, auto GlobalForward>
struct SelectionOps {
  static at::Tensor select_local(const at::Tensor& sr, const at::Tensor& candidates, int64_t k, double gt_weight) {
    return std::get<1>(LocalForward(sr, candidates, k, gt_weight, kTargetGram, kCriterionMse, false));
  }
  static at::Tensor select_global(const at::Tensor& sr, at::TensorList candidates, int64_t k, double gt_weight) {
    return std::get<1>(GlobalForward(sr, candidates, k, gt_weight, kTargetGram, kCriterionMse, false));
  }
  static std::tuple<at::Tensor, at::Tensor, at::Tensor> loss_local(const at::Tensor& sr, const at::Tensor& candidates,
                                                                   int64_t k, double gt_weight, c10::string_view target,
                                                                   c10::string_view criterion) {
    return LocalForward(sr, candidates, k, gt_weight, parse_target(target), parse_criterion(criterion), true);
  }
  static std::tuple<at::Tensor, at::Tensor> loss_global(const at::Tensor& sr, at::TensorList candidates, int64_t k,
                                                        double gt_weight, c10::string_view target,
                                                        c10::string_view criterion) {
    return GlobalForward(sr, candidates, k, gt_weight, parse_target(target), parse_criterion(criterion), true);
  }
};

// ---- mask entry points --------------------------------------------------------------------------
// Shared by the CPU and CUDA backends, which pass `launch(x, k, threshold, oy, ox, sliding, window, out)`:
// their mask kernels over the contiguous image x, writing to a MaskOut<scalar_t> out.

template <typename Launch>
at::Tensor texture_mask_entry(const at::Tensor& x_in, int64_t k, double threshold, int64_t oy, int64_t ox,
                              c10::string_view mode, int64_t window, const Launch& launch) {
  const bool sliding = parse_sliding(mode);
  check_mask_args(x_in, k, oy, ox, sliding, window);
  const at::Tensor x = x_in.contiguous();
  at::Tensor mask = at::empty({x.size(0), 1, x.size(2), x.size(3)}, x.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gramgan_texture_mask", [&] {
    // clang-format off: it would align these values into a table
    const MaskOut<scalar_t> out{mask.data_ptr<scalar_t>(), nullptr, nullptr, nullptr, nullptr,
                                static_cast<int>(x.size(1)), x.size(2), x.size(3)};
    // clang-format on
    launch(x, k, threshold, oy, ox, sliding, window, out);
  });
  return mask;
}

template <typename Launch>
std::tuple<at::Tensor, at::Tensor> mask_pair_entry(const at::Tensor& sr_in, const at::Tensor& hr_in, int64_t k,
                                                   double threshold, int64_t oy, int64_t ox, c10::string_view mode,
                                                   int64_t window, const Launch& launch) {
  const bool sliding = parse_sliding(mode);
  check_mask_args(hr_in, k, oy, ox, sliding, window);
  check_like_hr(hr_in, sr_in, "sr");
  const at::Tensor sr = sr_in.contiguous(), hr = hr_in.contiguous();
  at::Tensor mask = at::empty({hr.size(0), 1, hr.size(2), hr.size(3)}, hr.options());
  at::Tensor sr_out = at::empty_like(sr), hr_out = at::empty_like(hr);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, hr.scalar_type(), "gramgan_mask_pair", [&] {
    const MaskOut<scalar_t> out{mask.data_ptr<scalar_t>(),
                                sr.data_ptr<scalar_t>(),
                                hr.data_ptr<scalar_t>(),
                                sr_out.data_ptr<scalar_t>(),
                                hr_out.data_ptr<scalar_t>(),
                                static_cast<int>(hr.size(1)),
                                hr.size(2),
                                hr.size(3)};
    launch(hr, k, threshold, oy, ox, sliding, window, out);
  });
  return {sr_out, hr_out};
}

// grad * M(hr), contiguous: the gradient of mask_pair's sr_masked with respect to sr.
template <typename Launch>
at::Tensor mask_pair_backward_entry(const at::Tensor& grad, const at::Tensor& hr, int64_t k, double threshold,
                                    int64_t oy, int64_t ox, c10::string_view mode, int64_t window,
                                    const Launch& launch) {
  check_like_hr(hr, grad, "grad");
  const at::Tensor mask = texture_mask_entry(hr, k, threshold, oy, ox, mode, window, launch);
  return at::mul(grad, mask).contiguous();
}

// The global candidate list: where each level's patches start in the flat index, and its size.
struct Levels {
  std::vector<at::Tensor> images;  // contiguous (B, C, H_l, W_l)
  std::vector<int64_t> offset;     // first flat index of level l
  std::vector<int64_t> height, width;
  int64_t total = 0;  // M, the number of candidate patches per image

  // compute: the dtype the kernels read (the CPU converts float16 / bfloat16 to float32 once); by
  // default the candidates' own dtype.
  Levels(const at::Tensor& sr, at::TensorList candidates, int64_t k,
         at::ScalarType compute = at::ScalarType::Undefined) {
    TORCH_CHECK(!candidates.empty(), "gramgan: candidates is an empty list");
    for (size_t l = 0; l < candidates.size(); ++l) {
      const at::Tensor& image = candidates[l];
      check_image(image, "candidates[l]", k);
      check_pair(sr, image, "sr", "candidates[l]");
      TORCH_CHECK(image.size(0) == sr.size(0) && image.size(1) == sr.size(1), "gramgan: candidates[", l, "] has shape ",
                  image.sizes(), ", sr has ", sr.sizes());
      images.push_back((compute == at::ScalarType::Undefined ? image : image.to(compute)).contiguous());
      offset.push_back(total);
      height.push_back(image.size(2));
      width.push_back(image.size(3));
      total += (image.size(2) / k) * (image.size(3) / k);
    }
    TORCH_CHECK(candidates[0].size(2) == sr.size(2) && candidates[0].size(3) == sr.size(3),
                "gramgan: candidates[0] (the ground truth) must have sr's size ", sr.sizes());
    TORCH_CHECK(total < (int64_t{1} << 31), "gramgan: at most 2^31 - 1 global candidate patches, got ", total);
  }

  // The level of flat candidate index m.
  size_t level_of(int64_t m) const {
    size_t l = 0;
    while (l + 1 < offset.size() && offset[l + 1] <= m) ++l;
    return l;
  }
};

}  // namespace gramgan
