// Kernels that test the emulator itself (tests/ops/test_cuda_emulated.py), registered as
// torch.ops.gramgan_emulator_selftest.*: every thread of a 2-D grid runs once with the right built-ins,
// __syncthreads() is a barrier for a shared-memory reduction, and a barrier that only some threads
// reach is an error.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "cuda_shim.h"

namespace {

constexpr int kReduceThreads = 128;

// out[global linear thread id] = that id + 1, from the built-ins alone.
__global__ void coverage_kernel(int64_t* out) {
  const int64_t block = static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x;
  const int64_t thread = static_cast<int64_t>(threadIdx.y) * blockDim.x + threadIdx.x;
  const int64_t id = block * blockDim.x * blockDim.y + thread;
  out[id] += id + 1;
}

// Tree sum of n values by one block in shared memory; every step reads what other threads wrote.
__global__ void block_sum_kernel(const float* x, int64_t n, float* out) {
  __shared__ float partial[kReduceThreads];
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += x[i];
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = partial[0];
}

__global__ void divergent_barrier_kernel(int64_t* out) {
  if (threadIdx.x < blockDim.x / 2) __syncthreads();
  out[threadIdx.x] = 1;
}

at::Tensor coverage(int64_t grid_x, int64_t grid_y, int64_t block_x, int64_t block_y) {
  at::Tensor out = at::zeros({grid_x * grid_y * block_x * block_y}, at::kLong);
  const dim3 grid(static_cast<unsigned>(grid_x), static_cast<unsigned>(grid_y));
  const dim3 block(static_cast<unsigned>(block_x), static_cast<unsigned>(block_y));
  GRAMGAN_LAUNCH(coverage_kernel, grid, block, 0, nullptr)(out.data_ptr<int64_t>());
  return out;
}

at::Tensor block_sum(const at::Tensor& x) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.is_contiguous(), "block_sum: contiguous float32 input");
  at::Tensor out = at::empty({}, x.options());
  GRAMGAN_LAUNCH(block_sum_kernel, 1, kReduceThreads, 0, nullptr)(x.data_ptr<float>(), x.numel(),
                                                                  out.data_ptr<float>());
  return out;
}

at::Tensor divergent_barrier() {
  at::Tensor out = at::zeros({kReduceThreads}, at::kLong);
  GRAMGAN_LAUNCH(divergent_barrier_kernel, 1, kReduceThreads, 0, nullptr)(out.data_ptr<int64_t>());
  return out;
}

}  // namespace

TORCH_LIBRARY(gramgan_emulator_selftest, m) {
  m.def("coverage(int grid_x, int grid_y, int block_x, int block_y) -> Tensor", &coverage);
  m.def("block_sum(Tensor x) -> Tensor", &block_sum);
  m.def("divergent_barrier() -> Tensor", &divergent_barrier);
}
