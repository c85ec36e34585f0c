// Definitions shared by the CPU (.cpp) and CUDA (.cu) kernels of gramgan._C.
//
// Everything here is plain arithmetic usable on host and device: the accumulation type, the
// criterion and its derivative, luminance, reflect indexing and the NaN-aware argmin rule. Keeping
// them in one place is what makes the two backends compute the same thing (docs/ops.md).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#if defined(__CUDACC__)
#define GRAMGAN_HD __host__ __device__ __forceinline__
#else
#define GRAMGAN_HD inline
#endif

namespace gramgan {

// The coverage rule of the fused kernels, written once: the patch sizes k and channel counts C they are
// compiled for. The dispatchers of gramgan_host.h instantiate exactly these, gramgan._C exports them to
// Python (kernel_coverage: gramgan/ops/_backend.py routes anything else to the reference backend), and
// the C++ entry points check again (cheaply) so that a direct call cannot misbehave.
using KernelPatchSizes = std::integer_sequence<int, 2, 4, 8>;
using KernelChannelCounts = std::integer_sequence<int, 1, 2, 3, 4>;

// Whether v is one of the list's values.
template <int... Vs>
constexpr bool covers(std::integer_sequence<int, Vs...>, int64_t v) {
  return ((v == Vs) || ...);
}

// The largest of the list's values.
template <int... Vs>
constexpr int largest(std::integer_sequence<int, Vs...>) {
  int most = 0;
  ((most = Vs > most ? Vs : most), ...);
  return most;
}

constexpr int kMaxChannels = largest(KernelChannelCounts{});
constexpr int kMaxPairs = kMaxChannels * (kMaxChannels + 1) / 2;

// float16 / bfloat16 / float32 accumulate in float32, float64 in float64.
template <typename scalar_t>
struct AccType {
  using type = float;
};
template <>
struct AccType<double> {
  using type = double;
};
template <typename scalar_t>
using acc_type_t = typename AccType<scalar_t>::type;

enum Target : int { kTargetGram = 0, kTargetPixel = 1 };
enum Criterion : int { kCriterionMse = 0, kCriterionL1 = 1 };

// d**2 (mse) or |d| (l1).
template <typename T>
GRAMGAN_HD T criterion_value(T d, int criterion) {
  return criterion == kCriterionMse ? d * d : (d < T(0) ? -d : d);
}

// The derivative autograd uses: 2d (mse) or sign(d) with sign(0) = sign(NaN) = 0 (l1).
template <typename T>
GRAMGAN_HD T criterion_grad(T d, int criterion) {
  if (criterion == kCriterionMse) return T(2) * d;
  return d > T(0) ? T(1) : (d < T(0) ? T(-1) : T(0));
}

// argmin as the reference computes it, torch.nan_to_num(scores, nan=inf).argmin(): NaN counts as
// +inf and +inf as the largest finite value, so a NaN score never wins against a number.
template <typename T>
GRAMGAN_HD T selection_key(T score) {
  if (score != score) return std::numeric_limits<T>::infinity();
  if (score == std::numeric_limits<T>::infinity()) return std::numeric_limits<T>::max();
  return score;
}

// Index into [0, n) of i in [-(n-1), 2n-1) with reflect padding (the edge is not repeated).
GRAMGAN_HD int64_t reflect_index(int64_t i, int64_t n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

// Luminance weights of docs/ops.md (BT.601 for C = 3); other channel counts use the channel mean (ours).
constexpr double kLumaR = 0.299;
constexpr double kLumaG = 0.587;
constexpr double kLumaB = 0.114;

// Luminance of one pixel in float64 (as the reference does), reading channel c at p[c * stride].
template <typename scalar_t>
GRAMGAN_HD double luminance_at(const scalar_t* p, int64_t stride, int channels) {
  if (channels == 3) {
    return static_cast<double>(p[0]) * kLumaR + static_cast<double>(p[stride]) * kLumaG +
           static_cast<double>(p[2 * stride]) * kLumaB;
  }
  double sum = 0.0;
  for (int c = 0; c < channels; ++c) sum += static_cast<double>(p[c * stride]);
  return channels == 1 ? sum : sum / channels;
}

// The 0/1/NaN mask value of a standard deviation against the threshold.
template <typename T>
GRAMGAN_HD T mask_value(double std_dev, double threshold) {
  if (std_dev != std_dev) return static_cast<T>(std::numeric_limits<float>::quiet_NaN());
  return std_dev > threshold ? static_cast<T>(1.0f) : static_cast<T>(0.0f);
}

// Finite (neither NaN nor infinite), written so that host and device code agree without fast math.
GRAMGAN_HD bool is_finite(double v) { return v - v == 0.0; }

// Standard deviation from window sums (the reference's float64 raw-moment formula, clamped at 0):
// n values with sum s1 and sum of squares s2, none of them non-finite.
GRAMGAN_HD double window_std(double s1, double s2, int64_t n) {
  if (n <= 1) return 0.0;
  const double count = static_cast<double>(n);
  const double mean = s1 / count;
  const double var = (s2 / count - mean * mean) * (count / (count - 1.0));
  return var > 0.0 ? ::sqrt(var) : 0.0;
}

// Unbiased standard deviation from n values' sum of squared deviations (n = 1: 0, NaN stays NaN).
GRAMGAN_HD double unbiased_std(double squared_deviations, int64_t n) {
  if (squared_deviations != squared_deviations) return squared_deviations;
  if (n <= 1) return 0.0;
  return ::sqrt(squared_deviations / static_cast<double>(n - 1));
}

}  // namespace gramgan
