// Host memory with DeviceBuffer's interface (count, what; get, size, bytes), so the CPU
// backend's layers hold buffers exactly as the GPU backend's do. 64-byte aligned for the GEMM
// micro-kernels' vector loads; uninitialised, like device memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

#include "error.h"

namespace ml {

template <typename T>
class HostBuffer {
 public:
  HostBuffer() = default;
  HostBuffer(int64_t count, const char* what) : count_(count) {
    ML_CHECK(count >= 0, what, ": negative element count ", count);
    if (count > 0) ptr_ = static_cast<T*>(::operator new[](size_t(count) * sizeof(T), std::align_val_t{64}));
  }
  HostBuffer(HostBuffer&& other) noexcept { swap(other); }
  HostBuffer& operator=(HostBuffer&& other) noexcept {
    HostBuffer(std::move(other)).swap(*this);
    return *this;
  }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  ~HostBuffer() {
    if (ptr_) ::operator delete[](ptr_, std::align_val_t{64});
  }

  T* get() const { return ptr_; }
  int64_t size() const { return count_; }
  size_t bytes() const { return size_t(count_) * sizeof(T); }

 private:
  void swap(HostBuffer& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
  }
  T* ptr_ = nullptr;
  int64_t count_ = 0;
};

}  // namespace ml
