// NcclCollective: see nccl.h. Every NCCL call is nonblocking (nccl_api.h's ConfigPrefix): it
// returns ncclInProgress while NCCL works in the background, and settle() polls the
// communicator's state until it is done, fails, or the deadline passes. A sum then waits for its
// stream the same way (an event and the communicator's state), never in a blocking CUDA call.
// Sums started to overlap other work (start_sum_device) run on a stream of the collective's own,
// after an event of the caller's stream; the collective's other calls on any stream wait for
// them first, so its NCCL operations run in the order they were issued, as on every rank,
// whatever NCCL does with operations of one communicator on several streams.
#include <cuda_runtime.h>

#include <algorithm>
#include <set>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../core/cuda_check.h"
#include "nccl.h"
#include "nccl_api.h"
#include "shared_memory.h"
#include "wait.h"

namespace ml {
namespace {

template <typename T>
__global__ void scale_kernel(T* __restrict__ data, int64_t n, T factor) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    data[i] *= factor;
}

template <typename T>
void scale_in_place(T* data, int64_t n, T factor, cudaStream_t stream) {
  constexpr int kThreads = 256;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 4096);
  scale_kernel<T><<<unsigned(blocks), kThreads, 0, stream>>>(data, n, factor);
  ML_CUDA_CHECK_LAUNCH("data parallel: scaling before the sum");
}

class NcclCollective final : public Collective {
 public:
  NcclCollective(const std::string& rendezvous, uint64_t session, int rank, int world, int device, double timeout_s)
      : api_(nccl::api()), host_(rendezvous, session, rank, world, timeout_s), device_(device), timeout_s_(timeout_s) {
    ML_CUDA_CHECK("data parallel", cudaSetDevice(device));
    try {
      for (cudaEvent_t* event : {&done_, &reached_, &sums_done_})
        ML_CUDA_CHECK("data parallel", cudaEventCreateWithFlags(event, cudaEventDisableTiming));
      ML_CUDA_CHECK("data parallel", cudaStreamCreateWithFlags(&sums_stream_, cudaStreamNonBlocking));
      nccl::UniqueId id{};
      if (rank == 0) settle(api_.get_unique_id(&id), "taking NCCL's unique id (ncclGetUniqueId)");
      host_.broadcast(&id, sizeof id, 0);
      nccl::ConfigPrefix config;
      settle(api_.comm_init_rank_config(&comm_, world, id, rank, &config),
             "starting NCCL (ncclCommInitRankConfig) with the other ranks");
    } catch (...) {
      release_cuda();
      throw;
    }
  }

  // Abort rather than destroy: it frees the same resources without waiting on the other ranks
  // (each sum has finished before it returned), so a rank that died after the last sum cannot
  // hold up this one's exit.
  ~NcclCollective() override {
    cudaSetDevice(device_);
    if (comm_) api_.comm_abort(comm_);
    release_cuda();
  }

  int rank() const override { return host_.rank(); }
  int world() const override { return host_.world(); }
  void all_reduce_sum(float* data, int64_t n) override {
    usable();
    host_.all_reduce_sum(data, n);
  }
  void all_reduce_sum(double* data, int64_t n) override {
    usable();
    host_.all_reduce_sum(data, n);
  }
  void all_gather(float* data, const std::vector<int64_t>& bounds) override {
    usable();
    host_.all_gather(data, bounds);
  }
  void all_gather(double* data, const std::vector<int64_t>& bounds) override {
    usable();
    host_.all_gather(data, bounds);
  }
  void broadcast(void* data, int64_t bytes, int root) override {
    usable();
    host_.broadcast(data, bytes, root);
  }
  void all_to_all(const void* send, const std::vector<int64_t>& send_bytes, void* recv,
                  const std::vector<int64_t>& recv_bytes) override {
    usable();
    host_.all_to_all(send, send_bytes, recv, recv_bytes);
  }

  bool device_sums() const override { return true; }
  void all_reduce_sum_device(float* data, int64_t n, cudaStream_t stream, double scale) override {
    sum(data, n, stream, scale);
  }
  void all_reduce_sum_device(double* data, int64_t n, cudaStream_t stream, double scale) override {
    sum(data, n, stream, scale);
  }
  void start_sum_device(float* data, int64_t n, cudaStream_t stream, double scale) override {
    start_sum(data, n, stream, scale);
  }
  void start_sum_device(double* data, int64_t n, cudaStream_t stream, double scale) override {
    start_sum(data, n, stream, scale);
  }
  // `stream` waits for the started sums' last event; the host polls for their end, as finish does.
  void wait_sums_device(cudaStream_t stream) override {
    usable();
    if (!sums_started_) return;
    ML_CUDA_CHECK("data parallel", cudaSetDevice(device_));
    ML_CUDA_CHECK("data parallel", cudaStreamWaitEvent(stream, sums_done_, 0));
    finish(sums_stream_, "the sums started during the backward");
    sums_started_ = false;
  }
  void all_gather_device(float* data, const std::vector<int64_t>& bounds, cudaStream_t stream) override {
    gather(data, bounds, stream);
  }
  void all_gather_device(double* data, const std::vector<int64_t>& bounds, cudaStream_t stream) override {
    gather(data, bounds, stream);
  }

  // One ncclSend and one ncclRecv per peer with bytes to move (itself included), in one group:
  // NCCL matches each rank's send to the peer's receive. The sizes change every step, so every
  // call shows them to the other ranks through the host first (a mismatch throws on all ranks
  // before any byte moves, where NCCL would hang or overrun).
  void all_to_all_device(const void* send, const std::vector<int64_t>& send_bytes, void* recv,
                         const std::vector<int64_t>& recv_bytes, cudaStream_t stream) override {
    usable();
    host_.check_exchange(send_bytes, recv_bytes);
    int64_t total = 0;
    for (const int64_t b : send_bytes) total += b;
    const std::string what = detail::concat("an all-to-all of ", total, " bytes from this rank");
    ML_CUDA_CHECK("data parallel", cudaSetDevice(device_));
    after_started_sums(stream);
    const auto* out = static_cast<const unsigned char*>(send);
    auto* in = static_cast<unsigned char*>(recv);
    settle(api_.group_start(), what);
    int64_t sent = 0, received = 0;
    for (int q = 0; q < world(); ++q) {
      const int64_t n_out = send_bytes[size_t(q)], n_in = recv_bytes[size_t(q)];
      if (n_out > 0) settle(api_.send(out + sent, size_t(n_out), nccl::kInt8, q, comm_, stream), what);
      if (n_in > 0) settle(api_.recv(in + received, size_t(n_in), nccl::kInt8, q, comm_, stream), what);
      sent += n_out, received += n_in;
    }
    settle(api_.group_end(), what);
    finish(stream, what);
  }

 private:
  template <typename T>
  void sum(T* data, int64_t n, cudaStream_t stream, double scale) {
    const std::string what = detail::concat("an all-reduce of ", n, std::is_same_v<T, float> ? " floats" : " doubles");
    prepare_sum<T>(n);
    after_started_sums(stream);
    enqueue_sum(data, n, stream, scale, what);
    finish(stream, what);
  }

  // sum() without the wait: on sums_stream_, once `stream` has reached this point.
  template <typename T>
  void start_sum(T* data, int64_t n, cudaStream_t stream, double scale) {
    const std::string what = detail::concat("an all-reduce of ", n, std::is_same_v<T, float> ? " floats" : " doubles",
                                            " started during the backward");
    prepare_sum<T>(n);
    ML_CUDA_CHECK("data parallel", cudaEventRecord(reached_, stream));
    ML_CUDA_CHECK("data parallel", cudaStreamWaitEvent(sums_stream_, reached_, 0));
    enqueue_sum(data, n, sums_stream_, scale, what);
    ML_CUDA_CHECK("data parallel", cudaEventRecord(sums_done_, sums_stream_));
    sums_started_ = true;
  }

  template <typename T>
  void prepare_sum(int64_t n) {
    usable();
    agree(SharedMemoryCollective::Kind::Sum, n, int64_t(sizeof(T)));
    ML_CUDA_CHECK("data parallel", cudaSetDevice(device_));
  }

  // Each rank's own factor, applied before the values meet, by us rather than by NCCL's
  // pre-multiplied sum: on the H200 host's NCCL a world of one left the last 3 of 100003
  // floats unscaled. The same product, so the same bits.
  template <typename T>
  void enqueue_sum(T* data, int64_t n, cudaStream_t stream, double scale, const std::string& what) {
    const int type = std::is_same_v<T, float> ? nccl::kFloat32 : nccl::kFloat64;
    if (scale != 1.0) scale_in_place(data, n, T(scale), stream);
    settle(api_.all_reduce(data, data, size_t(n), type, nccl::kSum, comm_, stream), what);
  }

  // Work enqueued on `stream` from now on runs after the sums started (none: nothing to wait for).
  void after_started_sums(cudaStream_t stream) {
    if (sums_started_) ML_CUDA_CHECK("data parallel", cudaStreamWaitEvent(stream, sums_done_, 0));
  }

  // Rank r's range, broadcast in place from r, for each rank in turn on the one stream: the
  // ranges may differ in length, which ncclAllGather's equal pieces would need padding for (the
  // weights' buffer has none). A broadcast copies, so every rank ends with the owners' bits.
  template <typename T>
  void gather(T* data, const std::vector<int64_t>& bounds, cudaStream_t stream) {
    usable();
    ML_CHECK(bounds.size() == size_t(world()) + 1, "data parallel: a gather over ", world(), " ranks needs ",
             world() + 1, " bounds, got ", bounds.size());
    const std::string what =
        detail::concat("an all-gather of ", bounds.back(), std::is_same_v<T, float> ? " floats" : " doubles");
    agree(SharedMemoryCollective::Kind::Gather, bounds.back(), int64_t(sizeof(T)));
    ML_CUDA_CHECK("data parallel", cudaSetDevice(device_));
    after_started_sums(stream);
    const int type = std::is_same_v<T, float> ? nccl::kFloat32 : nccl::kFloat64;
    for (int r = 0; r < world(); ++r) {
      T* range = data + bounds[size_t(r)];
      const int64_t n = bounds[size_t(r) + 1] - bounds[size_t(r)];
      if (n > 0) settle(api_.broadcast(range, range, size_t(n), type, r, comm_, stream), what);
    }
    finish(stream, what);
  }

  // Once per kind and size: later steps sum and gather the same sizes, and NCCL itself cannot
  // tell a mismatch.
  void agree(SharedMemoryCollective::Kind kind, int64_t n, int64_t element_bytes) {
    const std::tuple<SharedMemoryCollective::Kind, int64_t, int64_t> shape{kind, n, element_bytes};
    if (agreed_.count(shape)) return;
    host_.check_same(kind, n, element_bytes);
    agreed_.insert(shape);
  }

  // Waits until the call that returned `result` has taken effect; fails on an error or timeout.
  void settle(nccl::Result result, const std::string& what) {
    nccl::Result state = result;
    const bool settled = state != nccl::kInProgress || dist::wait_until(
        [&] {
          api_.comm_get_async_error(comm_, &state);
          return state != nccl::kInProgress;
        },
        dist::after(timeout_s_));
    if (!settled) fail(timed_out(what));
    if (state != nccl::kSuccess) fail(nccl_failed(what, state));
  }

  // Waits for the work enqueued on `stream` so far (the sum last), polling the communicator too:
  // NCCL reports a failed peer there while the sum's kernel waits for it.
  void finish(cudaStream_t stream, const std::string& what) {
    ML_CUDA_CHECK("data parallel", cudaEventRecord(done_, stream));
    nccl::Result state = nccl::kSuccess;
    cudaError_t event = cudaErrorNotReady;
    const bool ended = dist::wait_until(
        [&] {
          event = cudaEventQuery(done_);
          if (event != cudaErrorNotReady) return true;
          api_.comm_get_async_error(comm_, &state);
          return state != nccl::kSuccess && state != nccl::kInProgress;
        },
        dist::after(timeout_s_));
    if (!ended) fail(timed_out(what));
    if (event != cudaSuccess && event != cudaErrorNotReady)
      fail(detail::concat("CUDA failed at ", what, ": ", cudaGetErrorString(event)));
    if (state != nccl::kSuccess && state != nccl::kInProgress) fail(nccl_failed(what, state));
  }

  std::string timed_out(const std::string& what) const {
    return detail::concat("waited ", timeout_s_, " s for the other ranks at ", what,
                          ": one of them has stopped or hangs");
  }
  std::string nccl_failed(const std::string& what, nccl::Result state) const {
    return detail::concat("NCCL failed at ", what, ": ", api_.get_error_string(state),
                          " (NCCL reports so when another rank has stopped)");
  }

  // Stops NCCL on this rank (its kernels waiting for a peer return) and throws, now and at every
  // later call.
  [[noreturn]] void fail(const std::string& why) {
    if (comm_) api_.comm_abort(comm_);
    comm_ = nullptr;
    failure_ = detail::concat("data parallel: rank ", rank(), " of ", world(), " (GPU ", device_, "): ", why);
    throw Error(failure_);
  }

  void usable() const { ML_CHECK(failure_.empty(), failure_, " earlier"); }

  void release_cuda() {
    for (cudaEvent_t event : {done_, reached_, sums_done_})
      if (event) cudaEventDestroy(event);
    if (sums_stream_) cudaStreamDestroy(sums_stream_);
  }

  const nccl::Api& api_;
  SharedMemoryCollective host_;
  const int device_;
  const double timeout_s_;
  cudaEvent_t done_ = nullptr;
  // Overlapped sums: their stream, the caller's point each waits for, the last one's end.
  cudaStream_t sums_stream_ = nullptr;
  cudaEvent_t reached_ = nullptr, sums_done_ = nullptr;
  bool sums_started_ = false;  // since the last wait_sums_device
  nccl::Comm comm_ = nullptr;
  // (kind, n, element bytes) of the sums and gathers every rank has confirmed
  std::set<std::tuple<SharedMemoryCollective::Kind, int64_t, int64_t>> agreed_;
  std::string failure_;
};

}  // namespace

std::shared_ptr<Collective> make_nccl_collective(const std::string& rendezvous, uint64_t session, int rank, int world,
                                                 int device, double timeout_s) {
  return std::make_shared<NcclCollective>(rendezvous, session, rank, world, device, timeout_s);
}

}  // namespace ml
