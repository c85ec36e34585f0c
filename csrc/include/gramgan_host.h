// Host-side helpers shared by the CPU and CUDA entry points: argument decoding, the patch-size
// dispatch and the level table of the global candidate list.
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
#include <ATen/ops/zeros_like.h>
#include <c10/util/string_view.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "gramgan_common.h"

namespace gramgan {

// Runs f(std::integral_constant<int, K>{}) for the runtime patch size k (2, 4 or 8).
template <typename F>
inline void dispatch_patch_size(int64_t k, F&& f) {
  switch (k) {
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    default: TORCH_CHECK(false, "gramgan: the fused kernels support k in {2, 4, 8}, got k=", k);
  }
}

// The patch sizes the fused kernels are written for.
inline void check_patch_size(int64_t k) {
  TORCH_CHECK(k == 2 || k == 4 || k == 8, "gramgan: the fused kernels support k in {2, 4, 8}, got k=", k);
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
inline at::ScalarType acc_scalar_type(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

// A (B, C, H, W) floating image whose H and W are multiples of k (k == 0: any size), C <= 4.
inline void check_image(const at::Tensor& x, const char* name, int64_t k) {
  if (k > 0) check_patch_size(k);
  TORCH_CHECK(x.dim() == 4, "gramgan: ", name, " must be (B, C, H, W), got ", x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "gramgan: ", name, " must be floating, got ",
              x.scalar_type());
  TORCH_CHECK(x.size(1) >= 1 && x.size(1) <= kMaxChannels, "gramgan: the fused kernels support 1 to ",
              kMaxChannels, " channels, ", name, " has ", x.size(1));
  if (k > 0) {
    TORCH_CHECK(x.size(2) % k == 0 && x.size(3) % k == 0, "gramgan: ", name, " has shape ", x.sizes(),
                ": H and W must be multiples of k=", k);
  }
}

inline void check_pair(const at::Tensor& a, const at::Tensor& b, const char* a_name, const char* b_name) {
  TORCH_CHECK(a.device() == b.device(), "gramgan: ", b_name, " is on ", b.device(), " but ", a_name, " is on ",
              a.device());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "gramgan: ", b_name, " has dtype ", b.scalar_type(), " but ",
              a_name, " has ", a.scalar_type());
}

// sr (B, C, H, W) and local candidates (B, K, C, H, W), aligned, K >= 1.
inline void check_local(const at::Tensor& sr, const at::Tensor& candidates, int64_t k) {
  check_image(sr, "sr", k);
  check_pair(sr, candidates, "sr", "candidates");
  TORCH_CHECK(candidates.dim() == 5 && candidates.size(0) == sr.size(0) && candidates.size(1) >= 1 &&
                  candidates.size(2) == sr.size(1) && candidates.size(3) == sr.size(2) &&
                  candidates.size(4) == sr.size(3),
              "gramgan: candidates must be (B, K>=1, C, H, W) aligned with sr ", sr.sizes(), ", got ",
              candidates.sizes());
  TORCH_CHECK(candidates.size(1) < (int64_t{1} << 31), "gramgan: at most 2^31 - 1 local candidates");
}

// The global candidate list: where each level's patches start in the flat index, and its size.
struct Levels {
  std::vector<at::Tensor> images;  // contiguous (B, C, H_l, W_l)
  std::vector<int64_t> offset;     // first flat index of level l
  std::vector<int64_t> height, width;
  int64_t total = 0;               // M, the number of candidate patches per image

  // compute: the dtype the kernels read (the CPU converts float16 / bfloat16 to float32 once); by
  // default the candidates' own dtype.
  Levels(const at::Tensor& sr, at::TensorList candidates, int64_t k,
         at::ScalarType compute = at::ScalarType::Undefined) {
    TORCH_CHECK(!candidates.empty(), "gramgan: candidates is an empty list");
    for (size_t l = 0; l < candidates.size(); ++l) {
      const at::Tensor& image = candidates[l];
      check_image(image, "candidates[l]", k);
      check_pair(sr, image, "sr", "candidates[l]");
      TORCH_CHECK(image.size(0) == sr.size(0) && image.size(1) == sr.size(1),
                  "gramgan: candidates[", l, "] has shape ", image.sizes(), ", sr has ", sr.sizes());
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
