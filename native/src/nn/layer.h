// A layer of the residual stream: maps (batch·len, d_model) rows to rows of the same shape.
// forward keeps what backward needs; backward writes dx and accumulates parameter gradients.
#pragma once
#include <cstdint>

namespace ml {

template <typename T>
class Layer {
 public:
  virtual ~Layer() = default;
  virtual void forward(const T* x, T* y, int64_t batch, int64_t len) = 0;
  virtual void backward(const T* dy, T* dx) = 0;
};

}  // namespace ml
