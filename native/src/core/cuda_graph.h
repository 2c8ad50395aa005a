// A CUDA graph of work enqueued on one stream: captured once, replayed with one launch, so a
// training step's hundreds of kernels cost the host one call (and the GPU no gaps between
// them). Captures in relaxed mode: the caching allocator may still call cudaMalloc.
#pragma once
#include <functional>

#include "cuda_fwd.h"

typedef struct CUgraphExec_st* cudaGraphExec_t;

namespace ml::cuda {

class CudaGraph {
 public:
  CudaGraph() = default;
  CudaGraph(CudaGraph&& other) noexcept : exec_(other.exec_) { other.exec_ = nullptr; }
  CudaGraph& operator=(CudaGraph&& other) noexcept;
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  ~CudaGraph();

  // Records what `work` enqueues on `stream` without running it. An empty graph comes back
  // when CUDA cannot capture that work; any other exception from `work` ends the capture and
  // passes through.
  static CudaGraph capture(cudaStream_t stream, const std::function<void()>& work);

  void launch(cudaStream_t stream) const;
  explicit operator bool() const { return exec_ != nullptr; }

 private:
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace ml::cuda
