// The CUDA runtime as the kernels see it: nvcc's, or the host emulation of the test build.
//
// Kernels are launched with GRAMGAN_LAUNCH(kernel, grid, block, shared_bytes, stream)(args...), which is
// kernel<<<grid, block, shared_bytes, stream>>>(args...) under nvcc. With GRAMGAN_CUDA_EMULATION the
// same sources compile as C++ against csrc/emulation/cuda_shim.h, which runs the launch on CPU threads
// and needs no CUDA runtime (docs/cuda-emulation.md).
#pragma once

#ifdef GRAMGAN_CUDA_EMULATION
#include "cuda_shim.h"
#else
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#define GRAMGAN_LAUNCH(kernel, grid, block, shared_bytes, stream) kernel<<<grid, block, shared_bytes, stream>>>
#endif
