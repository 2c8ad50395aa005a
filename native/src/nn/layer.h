// A layer of the residual stream: maps (batch·len, d_model) rows to rows of the same shape.
// forward keeps what backward needs; backward writes dx and accumulates parameter gradients.
#pragma once
#include <cstdint>
#include <vector>

#include "../ops/router/router.h"

namespace ml {

template <typename T>
class Layer {
 public:
  virtual ~Layer() = default;
  virtual void forward(const T* x, T* y, int64_t batch, int64_t len) = 0;
  virtual void backward(const T* dy, T* dx) = 0;

  // Training and inference differ for some routers (Sinkhorn balances only in training).
  virtual void set_training(bool) {}
  // The auxiliary (load-balancing) loss of the last forward, already weighted; its
  // gradient is part of backward().
  virtual double aux_loss() const { return 0; }
  // Routing decisions of the last forward, one per mixture-of-experts inside this layer.
  virtual void routings(std::vector<const cpu::Routing*>&) const {}
};

}  // namespace ml
