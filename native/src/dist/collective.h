// Collectives between the ranks of a data-parallel run. Every rank holds a whole replica of the
// model and a slice of each global batch; after the backward the ranks sum their gradients
// (train/step.h), so every replica takes the same step. Every rank gets the same bits from a sum,
// and a sum's order is fixed, so a run does not depend on timing: the shared-memory collective
// adds in rank order; NCCL's order is its own (see nccl.h), fixed for a given world and machine.
#pragma once
#include <cstdint>

#include "../core/cuda_fwd.h"
#include "../core/error.h"

namespace ml {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  // data[0, n) ← Σ over the ranks, in rank order, of their data[0, n); host memory. Every rank
  // calls it with the same n; a rank that does not arrive makes the others throw (no silent hang).
  virtual void all_reduce_sum(float* data, int64_t n) = 0;
  virtual void all_reduce_sum(double* data, int64_t n) = 0;

  // Whether this collective sums GPU memory in place (all_reduce_sum_device), so that gradients
  // need not pass through the host.
  virtual bool device_sums() const { return false; }
  // data[0, n) in GPU memory ← Σ over the ranks of scale · data[0, n), each rank with its own
  // scale, after the work already enqueued on `stream`. Returns once the sum is in data; throws as
  // all_reduce_sum does. Only where device_sums().
  virtual void all_reduce_sum_device(float* data, int64_t n, cudaStream_t stream, double scale) {
    throw Error("data parallel: this collective sums host memory only");
  }
  virtual void all_reduce_sum_device(double* data, int64_t n, cudaStream_t stream, double scale) {
    throw Error("data parallel: this collective sums host memory only");
  }
};

}  // namespace ml
