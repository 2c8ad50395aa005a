// A GPU layer of the residual stream: the device counterpart of ml::Layer. Activations are
// T (float or __nv_bfloat16), rows of (batch·len, d_model); parameters are looked up by name
// in DeviceParams (fp32 master weights and gradients, T compute copies). Everything is
// enqueued on the context's stream; nothing synchronises with the host.
#pragma once
#include <cstdint>
#include <vector>

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// Routing statistics of one mixture-of-experts layer's last forward, on the device; the
// runtime copies them to the host with the step's other metrics (one synchronisation).
struct DeviceExpertStats {
  const int64_t* counts = nullptr;   // (experts) kept assignments per expert
  const int64_t* dropped = nullptr;  // (1) assignments over capacity
  const double* aux_loss = nullptr;  // (1) weighted auxiliary loss, or null when the router has none
  int64_t experts = 0;
};

template <typename T>
class Layer {
 public:
  virtual ~Layer() = default;
  // y is overwritten; what backward needs is kept. x must stay valid until backward (layers
  // keep the pointer rather than a copy: the LM keeps every layer's normed input anyway).
  virtual void forward(const T* x, T* y, int64_t batch, int64_t len) = 0;
  // dx is overwritten; parameter gradients (fp32) accumulate.
  virtual void backward(const T* dy, T* dx) = 0;
  virtual void set_training(bool) {}
  // Whether forward and backward can be captured into a CUDA graph: no host synchronisation
  // and no reallocation while shapes stay the same.
  virtual bool capturable() const { return true; }
  // One entry per mixture-of-experts inside this layer, in order.
  virtual void expert_stats(std::vector<DeviceExpertStats>&) const {}
};

}  // namespace ml::cuda
