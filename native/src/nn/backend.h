// What a backend gives the layer tree (nn/*.h are written once over a backend B):
//   B::Act         activations and the weights layers multiply by (CPU: float or double;
//                  CUDA: float or bf16, a compute copy of the fp32 master weights)
//   B::Real        master weights, gradients, optimizer moments, the residual stream and its
//                  gradient, statistics (CPU: the same type as Act; CUDA: fp32)
//   B::Stat        scalars read back after a step: loss, gradient norm (CPU double, CUDA fp32)
//   B::Buffer<U>   owning memory on the backend's device (HostBuffer, cuda::DeviceBuffer)
//   B::kSegmentRows  dropless MoE: each expert's rows are rounded up to this (GEMM shapes)
//   B::kGraphs     whether a step can be captured and replayed (B::Graph, capture, launch: CUDA graphs)
// and, as member functions with one signature on both, the ops (ops/<op>/<op>.h) with their
// element types fixed as above, plus memory moves (zero, copy_to_host, from_host, copy, sync).
// Backends: nn/cpu_backend.h, nn/cuda_backend.h.
#pragma once
#include <cstdint>
#include <type_traits>
#include <utility>

namespace ml {

// Backends whose buffers live on a GPU have the stream they enqueue on (the CUDA backend).
template <class B, class = void>
constexpr bool kOnDevice = false;
template <class B>
constexpr bool kOnDevice<B, std::void_t<decltype(std::declval<const B&>().stream())>> = true;

// One parameter tensor for the optimizer: master weights, gradient, moments, decay, and the
// compute copy to refresh (null when the layers read the master weights themselves).
template <typename Real, typename Act>
struct OptimizerTensor {
  Real* param;
  Real* grad;
  Real* m;
  Real* v;
  int64_t size;
  double weight_decay;
  Act* compute;
};

// Routing statistics of one mixture-of-experts layer's last forward, in the backend's memory.
struct ExpertStats {
  const int64_t* counts = nullptr;   // (experts) kept assignments per expert
  const int64_t* dropped = nullptr;  // (1) assignments over capacity
  const double* aux_loss = nullptr;  // (1) weighted auxiliary loss
  int64_t experts = 0;
};

}  // namespace ml
