// A dense, contiguous, row-major CPU tensor of one element type.
// Ops take raw pointers and sizes (see ops/*/<op>.h); Tensor only owns memory and shape.
#pragma once
#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "dtype.h"
#include "error.h"

namespace ml {

using Shape = std::vector<int64_t>;

inline int64_t shape_numel(const Shape& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}

std::string shape_str(const Shape& shape);

template <typename T>
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape) : shape_(std::move(shape)), data_(alloc(shape_numel(shape_))) {}

  static Tensor zeros(Shape shape) {
    Tensor t(std::move(shape));
    t.fill(T(0));
    return t;
  }

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  const Shape& shape() const { return shape_; }
  int64_t numel() const { return shape_numel(shape_); }
  int64_t dim(size_t i) const { return shape_.at(i); }
  bool empty() const { return !data_; }

  void fill(T value) { std::fill(data(), data() + numel(), value); }

 private:
  // 64-byte alignment keeps vector loads in the GEMM micro-kernels aligned.
  static std::shared_ptr<T[]> alloc(int64_t n) {
    ML_CHECK(n >= 0, "tensor: negative element count ", n);
    void* p = ::operator new[](static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T), std::align_val_t{64});
    return std::shared_ptr<T[]>(static_cast<T*>(p), [](T* q) { ::operator delete[](q, std::align_val_t{64}); });
  }

  Shape shape_;
  std::shared_ptr<T[]> data_;
};

}  // namespace ml
