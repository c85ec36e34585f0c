// The CUDA built-ins on the host: lets csrc/cuda/*.cu compile as C++ (g++ -x c++) and run on the CPU,
// for the emulated test build only (GRAMGAN_CUDA_EMULATION; see docs/cuda-emulation.md).
//
// A launch runs its blocks one at a time, in blockIdx order. The threads of a block are real threads
// (a persistent pool) that run the kernel concurrently and meet at every __syncthreads(), so a missing
// barrier or a race between the threads of a block can change the result. __shared__ variables are
// function statics, shared by the threads of the running block (launches are serialised process-wide:
// there is one copy). A __syncthreads() that only some threads of a block reach (or reach after others
// have returned) is an error of the launch, raised as a c10::Error.
//
// Not emulated: warps (no __shfl_* or warp-synchronous code exists in the kernels), atomics, streams
// (a launch is synchronous), device memory (kernels read and write the CPU tensors' memory directly),
// fresh shared memory per block (a read before the block's first write sees what an earlier block left:
// GCC ignores section attributes on statics of templates, so they cannot be found and poisoned).
#pragma once

#include <c10/core/Device.h>
#include <c10/util/Exception.h>

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

#ifndef GRAMGAN_CUDA_EMULATION
#error "cuda_shim.h is the host emulation of CUDA: build with -DGRAMGAN_CUDA_EMULATION"
#endif

// ---- qualifiers: host code ---------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

// ---- built-in variables ------------------------------------------------------------------------------
struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
};

inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};

namespace gramgan {
namespace emulation {

// Runs body() once per thread of every block of the grid (blocks one after another, the threads of a
// block concurrently); throws c10::Error on a divergent barrier or an exception in a thread.
void run_grid(dim3 grid, dim3 block, const char* kernel_name, void (*body)(const void*), const void* context);

// The barrier of the running block.
void sync_threads();

struct EmulatedStream {};

// kernel(args...) on every thread of the grid, the arguments converted to the kernel's parameter types
// once (as a CUDA launch copies them), then passed by value to every thread.
template <typename... Params>
class Launch {
 public:
  Launch(void (*kernel)(Params...), dim3 grid, dim3 block, const char* name)
      : kernel_(kernel), grid_(grid), block_(block), name_(name) {}

  template <typename... Args>
  void operator()(Args&&... args) const {
    static_assert(sizeof...(Args) == sizeof...(Params), "kernel launched with the wrong number of arguments");
    const Call call{kernel_, std::tuple<std::decay_t<Params>...>(std::forward<Args>(args)...)};
    run_grid(grid_, block_, name_, &Call::run, &call);
  }

 private:
  struct Call {
    void (*kernel)(Params...);
    std::tuple<std::decay_t<Params>...> params;
    static void run(const void* self) {
      const Call& call = *static_cast<const Call*>(self);
      std::apply(call.kernel, call.params);
    }
  };

  void (*kernel_)(Params...);
  dim3 grid_, block_;
  const char* name_;
};

template <typename... Params>
Launch<Params...> launch(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t shared_bytes, const char* name) {
  TORCH_CHECK(shared_bytes == 0, "gramgan emulation: dynamic shared memory is not emulated (", name, ")");
  return Launch<Params...>(kernel, grid, block, name);
}

}  // namespace emulation
}  // namespace gramgan

inline void __syncthreads() { ::gramgan::emulation::sync_threads(); }

// What csrc/cuda/*.cu use of the CUDA runtime: streams and device guards do nothing on the host, and a
// launch has finished (or thrown) when it returns.
using cudaStream_t = ::gramgan::emulation::EmulatedStream*;

namespace c10 {
namespace cuda {

struct CUDAGuard {
  explicit CUDAGuard(c10::Device device) {
    TORCH_CHECK(device.is_cpu(), "gramgan emulation: the emulated CUDA kernels run on CPU tensors, got ", device);
  }
};

struct CUDAStream {
  operator cudaStream_t() const { return nullptr; }
};

inline CUDAStream getCurrentCUDAStream() { return {}; }

}  // namespace cuda
}  // namespace c10

#define C10_CUDA_KERNEL_LAUNCH_CHECK() \
  do {                                 \
  } while (false)

// kernel<<<grid, block, shared_bytes, stream>>>(args...) in nvcc's build (csrc/cuda/cuda_launch.cuh).
#define GRAMGAN_LAUNCH(kernel, grid, block, shared_bytes, stream) \
  ::gramgan::emulation::launch(kernel, grid, block, shared_bytes, #kernel)
