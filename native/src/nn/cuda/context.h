// What every GPU layer of one model shares: the stream the whole step runs on, the scan's
// options and whether backward reductions must be deterministic (no atomics anywhere, so two
// runs with the same seed give bit-identical losses and weights).
#pragma once
#include "../../core/cuda_fwd.h"
#include "../../ops/selective_scan/selective_scan.h"

namespace ml::cuda {

struct Context {
  cudaStream_t stream = nullptr;
  ScanOptions scan;
  bool deterministic = true;
};

}  // namespace ml::cuda
