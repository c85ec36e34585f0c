// The local selection's parallel layout, shared by the local texture loss (stored candidates) and the
// sampled one (candidates read from their sources): the candidates of a patch are scored by several
// threads, one per candidate up to a block, and their argmin is taken in shared memory.
//
// Several threads per patch, not one: a patch's candidates are independent until the argmin, and one
// thread streaming all of them left too few threads at the paper's size (B = 8, 192 x 192: 18,432
// patches, about 4 warps on each of an H200's 132 SMs) and too long a chain of dependent loads in each
// to hide their latency.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cuda_common.cuh"

namespace gramgan {
namespace cuda {

// `slots` threads per patch (the candidate count, at most a block), thread `slot` scoring candidates slot,
// slot + slots, ...; `patches` patches per block of `threads()` threads.
struct CandidateSlots {
  int slots, patches;

  explicit CandidateSlots(int64_t candidates)
      : slots(static_cast<int>(std::min<int64_t>(candidates, kThreads))), patches(kThreads / slots) {}

  int threads() const { return slots * patches; }

  // Blocks for n patches (each block loops over its share of them when n needs more than the cap).
  dim3 blocks(int64_t n) const {
    return dim3(static_cast<unsigned int>(std::min<int64_t>((n + patches - 1) / patches, int64_t{1} << 20)));
  }
};

// What each thread of a block found among its candidates, in shared memory, for the patch's first thread.
template <typename acc_t>
struct SlotBests {
  acc_t key[kThreads];
  int64_t candidate[kThreads];
  acc_t gram[kThreads][kMaxPairs];
};

// This thread's share of a patch's `count` candidates: candidates slot, slot + slots, ..., candidate m's
// Gram given by gram_of(m, gc) and candidate 0's by gg (hr's, also the ground truth of every score).
// Keeps the lowest selection key, the lowest index on a tie, with its candidate and Gram, in bests.
template <typename acc_t, typename GramOf>
__device__ __forceinline__ void score_own_candidates(const acc_t* ge, const acc_t* gg, acc_t beta, int64_t count,
                                                     int slot, int slots, GramOf gram_of, SlotBests<acc_t>& bests) {
  acc_t gc[kMaxPairs], key_best = acc_t(0);
  int64_t chosen = slot;
  for (int64_t m = slot; m < count; m += slots) {
    if (m == 0) {
#pragma unroll
      for (int q = 0; q < kMaxPairs; ++q) gc[q] = gg[q];
    } else {
      gram_of(m, gc);
    }
    const acc_t key = selection_key(selection_score<kMaxChannels>(ge, gg, 1, gc, 1, beta));
    if (improves(key, key_best, m == slot)) {
      key_best = key;
      chosen = m;
#pragma unroll
      for (int q = 0; q < kMaxPairs; ++q) bests.gram[threadIdx.x][q] = gc[q];
    }
  }
  bests.key[threadIdx.x] = key_best;
  bests.candidate[threadIdx.x] = chosen;
}

// Which of the patch's threads own .. own + slots - 1 holds its chosen candidate: the lowest key, the lowest
// candidate index on a tie (keys are never NaN), the candidate one scan over all of them would keep.
template <typename acc_t>
__device__ __forceinline__ int best_slot(const SlotBests<acc_t>& bests, int own, int slots) {
  int best = own;
  for (int t = own + 1; t < own + slots; ++t) {
    const bool tie_to_lower = bests.key[t] == bests.key[best] && bests.candidate[t] < bests.candidate[best];
    if (bests.key[t] < bests.key[best] || tie_to_lower) best = t;
  }
  return best;
}

// A block's rounds over its share of the n_patches patches, `layout.patches` a round. In each, every thread
// of an existing patch n runs score(n, slot, ge): the patch's Gram into ge, then score_own_candidates; after
// the barrier, the patch's first thread runs write(n, ge, best), best the thread holding the chosen
// candidate in bests. The round bounds are the same for all the block's threads, which all meet at both
// barriers of every round.
template <typename acc_t, typename Score, typename Write>
__device__ __forceinline__ void select_in_rounds(int64_t n_patches, const CandidateSlots& layout,
                                                 const SlotBests<acc_t>& bests, Score score, Write write) {
  const int slot = static_cast<int>(threadIdx.x) % layout.slots, group = static_cast<int>(threadIdx.x) / layout.slots;
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * layout.patches; first < n_patches;
       first += static_cast<int64_t>(gridDim.x) * layout.patches) {
    const int64_t n = first + group;
    const bool exists = n < n_patches;
    acc_t ge[kMaxPairs];
    if (exists) score(n, slot, ge);
    __syncthreads();  // every thread's best is in shared memory
    if (exists && slot == 0) write(n, ge, best_slot(bests, static_cast<int>(threadIdx.x), layout.slots));
    __syncthreads();  // the shared results are read before the next round writes them
  }
}

}  // namespace cuda
}  // namespace gramgan
