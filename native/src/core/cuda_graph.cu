#include "cuda_graph.h"

#include <cuda_runtime.h>

#include "cuda_check.h"

namespace ml::cuda {

CudaGraph& CudaGraph::operator=(CudaGraph&& other) noexcept {
  if (this != &other) {
    if (exec_) cudaGraphExecDestroy(exec_);
    exec_ = other.exec_;
    other.exec_ = nullptr;
  }
  return *this;
}

CudaGraph::~CudaGraph() {
  if (exec_) cudaGraphExecDestroy(exec_);
}

CudaGraph CudaGraph::capture(cudaStream_t stream, const std::function<void()>& work) {
  ML_CUDA_CHECK("graph capture", cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
  cudaGraph_t graph = nullptr;
  try {
    work();
  } catch (...) {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    cudaStreamIsCapturing(stream, &status);
    cudaStreamEndCapture(stream, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    // A call that cannot be captured invalidates the capture and fails every later one:
    // that is "cannot capture", not an error of the work.
    if (status == cudaStreamCaptureStatusInvalidated) return {};
    throw;
  }
  CudaGraph out;
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  if (ended == cudaSuccess && graph && cudaGraphInstantiate(&out.exec_, graph, 0) != cudaSuccess) out.exec_ = nullptr;
  if (graph) cudaGraphDestroy(graph);
  cudaGetLastError();  // a refused capture leaves its error behind; the caller runs the work eagerly
  return out;
}

void CudaGraph::launch(cudaStream_t stream) const { ML_CUDA_CHECK("graph launch", cudaGraphLaunch(exec_, stream)); }

}  // namespace ml::cuda
