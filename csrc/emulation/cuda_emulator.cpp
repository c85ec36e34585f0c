// The block scheduler behind cuda_shim.h: a persistent pool of host threads runs the threads of one
// block at a time, with a real barrier for __syncthreads() (see the header for what is emulated).
#include "cuda_shim.h"

#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gramgan {
namespace emulation {
namespace {

constexpr unsigned kMaxBlockThreads = 1024;  // CUDA's limit

// Thrown inside a thread whose block has failed, to leave the kernel body.
struct BlockAborted {};

class BlockPool {
 public:
  static BlockPool& instance() {
    static BlockPool* pool = new BlockPool();  // never destroyed: the workers live until the process ends
    return *pool;
  }

  // Runs body(context) on `threads` workers with the given built-ins; returns the failure, "" if none.
  std::string run_block(unsigned threads, dim3 block, dim3 grid, uint3 block_index, void (*body)(const void*),
                        const void* context) {
    grow(threads);
    std::unique_lock<std::mutex> lock(mutex_);
    block_ = block;
    grid_ = grid;
    block_index_ = block_index;
    body_ = body;
    context_ = context;
    active_ = threads;
    finished_ = arrived_ = exited_ = 0;
    error_.clear();
    failed_ = false;
    ++block_generation_;
    start_.notify_all();
    done_.wait(lock, [&] { return finished_ == active_; });
    return error_;
  }

  void sync_threads() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (failed_) throw BlockAborted{};
    ++arrived_;
    if (arrived_ + exited_ == active_) {
      if (exited_ > 0) {
        fail_locked("__syncthreads() reached by some threads of the block after others had returned");
        throw BlockAborted{};
      }
      arrived_ = 0;
      ++barrier_generation_;
      barrier_.notify_all();
      return;
    }
    const uint64_t generation = barrier_generation_;
    barrier_.wait(lock, [&] { return barrier_generation_ != generation || failed_; });
    if (barrier_generation_ == generation) throw BlockAborted{};
  }

 private:
  void grow(unsigned threads) {
    while (workers_.size() < threads) {
      const unsigned index = static_cast<unsigned>(workers_.size());
      workers_.emplace_back([this, index] { work(index); });
      workers_.back().detach();
    }
  }

  void fail_locked(const std::string& message) {
    if (!failed_) error_ = message;
    failed_ = true;
    barrier_.notify_all();
  }

  void work(unsigned index) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      start_.wait(lock, [&] { return block_generation_ != seen; });
      seen = block_generation_;
      if (index >= active_) continue;
      blockDim = block_;
      gridDim = grid_;
      blockIdx = block_index_;
      threadIdx = uint3{index % block_.x, (index / block_.x) % block_.y, index / (block_.x * block_.y)};
      void (*body)(const void*) = body_;
      const void* context = context_;
      lock.unlock();
      std::string error;
      try {
        body(context);
      } catch (const BlockAborted&) {
      } catch (const std::exception& e) {
        error = std::string("exception in a thread: ") + e.what();
      }
      lock.lock();
      if (!error.empty()) fail_locked(error);
      ++exited_;
      if (arrived_ > 0) fail_locked("a thread returned while others of its block wait at __syncthreads()");
      if (++finished_ == active_) done_.notify_one();
    }
  }

  std::mutex mutex_;
  std::condition_variable start_, done_, barrier_;
  std::vector<std::thread> workers_;
  uint64_t block_generation_ = 0, barrier_generation_ = 0;
  dim3 block_, grid_;
  uint3 block_index_{0, 0, 0};
  void (*body_)(const void*) = nullptr;
  const void* context_ = nullptr;
  unsigned active_ = 0, finished_ = 0, arrived_ = 0, exited_ = 0;
  bool failed_ = false;
  std::string error_;
};

std::mutex& launch_mutex() {
  static std::mutex mutex;
  return mutex;
}

}  // namespace

void run_grid(dim3 grid, dim3 block, const char* kernel_name, void (*body)(const void*), const void* context) {
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  TORCH_CHECK(threads >= 1 && threads <= kMaxBlockThreads && grid.x >= 1 && grid.y >= 1 && grid.z >= 1 &&
                  grid.y <= 65535 && grid.z <= 65535,
              "gramgan emulation: invalid launch configuration of ", kernel_name, ": grid (", grid.x, ", ", grid.y,
              ", ", grid.z, "), block (", block.x, ", ", block.y, ", ", block.z, ")");
  const std::lock_guard<std::mutex> serial(launch_mutex());
  BlockPool& pool = BlockPool::instance();
  for (unsigned z = 0; z < grid.z; ++z) {
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) {
        const std::string error =
            pool.run_block(static_cast<unsigned>(threads), block, grid, uint3{x, y, z}, body, context);
        TORCH_CHECK(error.empty(), "gramgan emulation: kernel ", kernel_name, ", block (", x, ", ", y, ", ", z,
                    "): ", error);
      }
    }
  }
}

void sync_threads() { BlockPool::instance().sync_threads(); }

}  // namespace emulation
}  // namespace gramgan
