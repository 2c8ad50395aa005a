// Collectives between the ranks of a data-parallel run. Every rank holds a whole replica of the
// model and a slice of each global batch; after the backward the ranks sum their gradients
// (train/step.h), so every replica takes the same step. Every rank gets the same bits from a sum,
// and a sum's order is fixed, so a run does not depend on timing: the shared-memory collective
// adds in rank order; NCCL's order is its own (see nccl.h), fixed for a given world and machine.
// With the optimizer sharded (ZeRO-1, train/step.h) each rank updates only its range of the
// weights and the ranks then gather them (all_gather): copies, so every rank holds the same bits.
// Expert parallel (nn/moe.h) moves tokens to the ranks that own their experts and back
// (all_to_all): copies again, in a fixed layout (blocks in rank order), so nothing depends on timing.
#pragma once
#include <cstdint>
#include <vector>

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
  // data[bounds[r], bounds[r+1]) ← rank r's, for every rank r; host memory. bounds has world() + 1
  // nondecreasing offsets, the same on every rank; each rank's own range is left as it is.
  virtual void all_gather(float* data, const std::vector<int64_t>& bounds) = 0;
  virtual void all_gather(double* data, const std::vector<int64_t>& bounds) = 0;
  // data[0, bytes) ← rank root's; host memory, a few bytes (decisions that rank 0 makes for all).
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  // Every rank sends send_bytes[q] bytes to each rank q, the blocks back to back in `send` in
  // rank order, and receives recv_bytes[q] from each rank q into `recv` likewise; host memory.
  // recv_bytes must be what the senders send (exchange the counts first, all_to_all_counts):
  // a mismatch throws on every rank, naming both. A rank's block to itself is copied too.
  virtual void all_to_all(const void* send, const std::vector<int64_t>& send_bytes, void* recv,
                          const std::vector<int64_t>& recv_bytes) = 0;
  // The counts before a variable-size all_to_all: to_each[q] for rank q in, from_each[q] (what
  // rank q has for this one) out; every rank calls it with world() counts.
  std::vector<int64_t> all_to_all_counts(const std::vector<int64_t>& to_each) {
    ML_CHECK(to_each.size() == size_t(world()), "data parallel: an all-to-all over ", world(), " ranks needs ",
             world(), " counts, got ", to_each.size());
    std::vector<int64_t> from_each(to_each.size());
    const std::vector<int64_t> each(to_each.size(), int64_t(sizeof(int64_t)));
    all_to_all(to_each.data(), each, from_each.data(), each);
    return from_each;
  }

  // Whether this collective sums and gathers GPU memory in place (all_reduce_sum_device,
  // all_gather_device), so that gradients and weights need not pass through the host.
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
  // A sum overlapped with the work that follows it (the gradients' buckets, train/step.h):
  // start_sum_device enqueues what all_reduce_sum_device does, on a stream of the collective's
  // own that first waits for the work already enqueued on `stream`, and returns without waiting
  // for the sum. wait_sums_device makes `stream` wait for every sum started, and returns once
  // they have ended (throwing as all_reduce_sum does). Sums start and end in the order started,
  // the same on every rank, and this collective's other device calls come after them. Only
  // where device_sums().
  virtual void start_sum_device(float* data, int64_t n, cudaStream_t stream, double scale) {
    throw Error("data parallel: this collective sums host memory only");
  }
  virtual void start_sum_device(double* data, int64_t n, cudaStream_t stream, double scale) {
    throw Error("data parallel: this collective sums host memory only");
  }
  virtual void wait_sums_device(cudaStream_t stream) {
    throw Error("data parallel: this collective sums host memory only");
  }
  // all_gather in GPU memory, after the work already enqueued on `stream`; returns once every
  // range is in data. Only where device_sums().
  virtual void all_gather_device(float* data, const std::vector<int64_t>& bounds, cudaStream_t stream) {
    throw Error("data parallel: this collective gathers host memory only");
  }
  virtual void all_gather_device(double* data, const std::vector<int64_t>& bounds, cudaStream_t stream) {
    throw Error("data parallel: this collective gathers host memory only");
  }
  // all_to_all in GPU memory, after the work already enqueued on `stream`; returns once every
  // block has arrived. Only where device_sums().
  virtual void all_to_all_device(const void* send, const std::vector<int64_t>& send_bytes, void* recv,
                                 const std::vector<int64_t>& recv_bytes, cudaStream_t stream) {
    throw Error("data parallel: this collective exchanges host memory only");
  }
};

}  // namespace ml
