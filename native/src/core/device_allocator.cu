#include "device_allocator.h"

#include <map>
#include <mutex>
#include <unordered_map>

#include "cuda_check.h"

namespace ml::cuda {
namespace {

// Sizes are rounded so that similar requests share blocks: to 512 bytes below 1 MiB, to
// 2 MiB above. A cached block is reused for a request at least half its size.
size_t round_size(size_t bytes) {
  constexpr size_t kSmall = 512, kLarge = size_t(2) << 20;
  if (bytes < (size_t(1) << 20)) return (bytes + kSmall - 1) / kSmall * kSmall;
  return (bytes + kLarge - 1) / kLarge * kLarge;
}

struct Pool {
  std::mutex mutex;
  std::multimap<size_t, void*> free_blocks;  // size → block
  std::unordered_map<void*, size_t> live;    // block → size
  AllocatorStats stats;

  void release_cached_locked() {
    for (auto& [size, ptr] : free_blocks) {
      cudaFree(ptr);  // errors here would be from an earlier failure; nothing to recover
      stats.cached -= size;
    }
    free_blocks.clear();
  }
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: blocks may be freed during static destruction
  return *p;
}

}  // namespace

void* device_alloc(size_t bytes, const char* what) {
  const size_t size = round_size(bytes == 0 ? 1 : bytes);
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  auto it = p.free_blocks.lower_bound(size);
  void* ptr = nullptr;
  size_t got = size;
  if (it != p.free_blocks.end() && it->first <= 2 * size) {
    ptr = it->second;
    got = it->first;
    p.free_blocks.erase(it);
    p.stats.cached -= got;
  } else {
    cudaError_t err = cudaMalloc(&ptr, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear it, give the cache back and try once more
      p.release_cached_locked();
      err = cudaMalloc(&ptr, size);
    }
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      throw OutOfDeviceMemory(detail::concat(what, ": cudaMalloc(", size, " bytes) failed: out of memory (",
                                             p.stats.in_use, " bytes in use by the engine)"));
    }
    if (err != cudaSuccess)
      throw_cuda_error(what, detail::concat("cudaMalloc(", size, " bytes)").c_str(), err, __FILE__, __LINE__);
    ++p.stats.cuda_mallocs;
  }
  p.live[ptr] = got;
  p.stats.in_use += got;
  if (p.stats.in_use > p.stats.peak_in_use) p.stats.peak_in_use = p.stats.in_use;
  return ptr;
}

void device_free(void* ptr) {
  if (!ptr) return;
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  auto it = p.live.find(ptr);
  if (it == p.live.end()) return;  // not ours: ignore rather than corrupt the cache
  p.stats.in_use -= it->second;
  p.stats.cached += it->second;
  p.free_blocks.emplace(it->second, ptr);
  p.live.erase(it);
}

void device_release_cached() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.release_cached_locked();
}

void reset_peak_in_use() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.stats.peak_in_use = p.stats.in_use;
}

AllocatorStats allocator_stats() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  return p.stats;
}

}  // namespace ml::cuda
