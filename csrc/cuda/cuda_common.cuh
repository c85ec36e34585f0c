// Launch geometry of the CUDA kernels; their per-patch arithmetic is the shared code of
// csrc/include/gramgan_patch.h (also what the CPU kernels call).
//
// The kernels are templated on the dtype only (k and C are runtime values: few instantiations, so the
// extension compiles quickly); loops over channels are unrolled to keep per-patch values in registers.
// A thread handles one patch and streams its k*k pixels, except where that leaves too few threads: the
// local selections score a patch's candidates with a thread each (candidate_slots.cuh) and the local
// losses' backward runs a thread per pixel. The Gram is kept in registers in the layout of the largest
// supported channel count (NC = kMaxChannels: kMaxPairs entries of the upper triangle of a 4 x 4
// matrix). Channels beyond C are loaded as exact zeros, so their entries are 0 for
// every patch and drop out of every score and loss without branches; only the divisions use the real C.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cuda_launch.cuh"
#include "gramgan_common.h"
#include "gramgan_host.h"
#include "gramgan_patch.h"

namespace gramgan {
namespace cuda {

constexpr int kThreads = 128;

// A 1-D grid for n work items with kThreads threads per block; kernels loop with a grid stride, so
// capping the block count keeps any n within the launch limits.
inline dim3 grid_for(int64_t n) {
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t{1} << 20);
  return dim3(static_cast<unsigned int>(std::max<int64_t>(blocks, 1)));
}

__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

}  // namespace cuda
}  // namespace gramgan
