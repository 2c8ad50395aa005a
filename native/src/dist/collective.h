// Collectives between the ranks of a data-parallel run. Every rank holds a whole replica of the
// model and a slice of each global batch; after the backward the ranks sum their gradients
// (train/step.h), so every replica takes the same step. A sum runs in rank order, so every rank
// gets the same bits and a run does not depend on timing.
#pragma once
#include <cstdint>

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
};

}  // namespace ml
