// Multi-tensor launches: many parameter tensors processed by one kernel. Each tensor is cut
// into chunks of `chunk` elements, one block per chunk, and up to kMaxTensors tensors travel
// in one kernel-parameter struct, so an optimizer step over a model's few hundred tensors is
// a handful of launches.
#pragma once
#include <cstdint>
#include <vector>

namespace ml::cuda {

constexpr int kMaxTensors = 32;

template <typename Entry>
struct TensorBatch {
  Entry entries[kMaxTensors];
  int64_t first_block[kMaxTensors + 1];  // entries[i] owns blocks [first_block[i], first_block[i + 1])
  int count = 0;
  int64_t blocks_before = 0;  // blocks of the earlier batches: global block = blocks_before + blockIdx.x
  int64_t blocks() const { return first_block[count]; }
};

// Batches of the non-empty entries, in order; size_of(entry) is its element count.
template <typename Entry, typename SizeOf>
std::vector<TensorBatch<Entry>> make_batches(const std::vector<Entry>& entries, int64_t chunk, SizeOf size_of) {
  std::vector<TensorBatch<Entry>> batches;
  int64_t total = 0;
  for (const Entry& e : entries) {
    const int64_t n = size_of(e);
    if (n <= 0) continue;
    if (batches.empty() || batches.back().count == kMaxTensors) {
      batches.emplace_back();
      batches.back().first_block[0] = 0;
      batches.back().blocks_before = total;
    }
    TensorBatch<Entry>& b = batches.back();
    const int64_t blocks = (n + chunk - 1) / chunk;
    b.entries[b.count] = e;
    b.first_block[b.count + 1] = b.first_block[b.count] + blocks;
    ++b.count;
    total += blocks;
  }
  return batches;
}

#ifdef __CUDACC__
// Which entry owns this block (a short linear search over at most kMaxTensors).
template <typename Entry>
__device__ __forceinline__ int entry_of(const TensorBatch<Entry>& b, int64_t block) {
  int i = 0;
  while (i + 1 < b.count && block >= b.first_block[i + 1]) ++i;
  return i;
}
#endif

}  // namespace ml::cuda
