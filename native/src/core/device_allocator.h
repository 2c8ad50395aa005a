// A caching allocator for device memory: freed blocks are kept and handed out again, so a
// training step or a benchmark loop that allocates the same sizes every iteration stops
// calling cudaMalloc / cudaFree (which synchronise the device) after its first iteration.
//
// Reuse is in host order, which is safe when the work that used a block and the work that
// reuses it run on the same stream (the engine runs a step on one stream). Work on another
// stream must be synchronised before the block it uses is freed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>

#include "error.h"

namespace ml::cuda {

// Thrown when CUDA has no memory left for a request, even after the cache is given back.
struct OutOfDeviceMemory : Error {
  using Error::Error;
};

// Device memory for `bytes` (at least 256-byte aligned). `what` names the caller in errors.
void* device_alloc(size_t bytes, const char* what);
void device_free(void* ptr);
// Returns every cached (free) block to CUDA.
void device_release_cached();

struct AllocatorStats {
  size_t in_use = 0, cached = 0, peak_in_use = 0;
  int64_t cuda_mallocs = 0;  // calls that reached cudaMalloc
};
AllocatorStats allocator_stats();
// Starts a new high-water mark at what is in use now.
void reset_peak_in_use();

// Owns `count` elements of device memory from the caching allocator.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(int64_t count, const char* what)
      : ptr_(count > 0 ? static_cast<T*>(device_alloc(size_t(count) * sizeof(T), what)) : nullptr), count_(count) {}
  DeviceBuffer(DeviceBuffer&& other) noexcept { swap(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    DeviceBuffer(std::move(other)).swap(*this);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_) device_free(ptr_);
  }

  T* get() const { return ptr_; }
  int64_t size() const { return count_; }
  size_t bytes() const { return size_t(count_) * sizeof(T); }

 private:
  void swap(DeviceBuffer& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
  }
  T* ptr_ = nullptr;
  int64_t count_ = 0;
};

}  // namespace ml::cuda
