// A collective for the ranks of one machine through a shared file (mmap; under /dev/shm it
// never reaches a disk): a barrier in the file's header, then one slot per rank. A sum copies a
// chunk of each rank's data into its slot, waits for every rank, adds the slots in rank order
// into its own data and waits again before the slots are reused; a gather copies the other
// ranks' slots instead of adding them, and an all-to-all copies each rank's block for this one
// out of the others' slots (every rank's sizes shown first). It serves CPU runs and the
// tests of data parallelism; GPUs sum through NCCL (nccl.h), which meets and sums host values
// through this one.
#pragma once
#include <cstdint>
#include <string>

#include "collective.h"

namespace ml {

class SharedMemoryCollective final : public Collective {
 public:
  // Rank 0 creates `path` for this `session` (any stale file is replaced whole); the others
  // wait for it. Waits longer than timeout_s (for the file, or at a barrier) throw an Error
  // that names the rank and the step it waited at.
  SharedMemoryCollective(const std::string& path, uint64_t session, int rank, int world, double timeout_s = 300,
                         int64_t slot_bytes = int64_t{4} << 20);
  ~SharedMemoryCollective() override;
  SharedMemoryCollective(const SharedMemoryCollective&) = delete;
  SharedMemoryCollective& operator=(const SharedMemoryCollective&) = delete;

  int rank() const override { return rank_; }
  int world() const override { return world_; }
  void all_reduce_sum(float* data, int64_t n) override { sum(data, n); }
  void all_reduce_sum(double* data, int64_t n) override { sum(data, n); }
  void all_gather(float* data, const std::vector<int64_t>& bounds) override { gather(data, bounds); }
  void all_gather(double* data, const std::vector<int64_t>& bounds) override { gather(data, bounds); }
  // bytes at most a slot. NcclCollective hands out its id so.
  void broadcast(void* data, int64_t bytes, int root) override;
  void all_to_all(const void* send, const std::vector<int64_t>& send_bytes, void* recv,
                  const std::vector<int64_t>& recv_bytes) override;
  // Every rank's send_bytes and recv_bytes, shown to all: the bytes matrix[r][q] rank r sends to
  // rank q. Throws on every rank where a receiver expects other than its sender sends.
  std::vector<std::vector<int64_t>> check_exchange(const std::vector<int64_t>& send_bytes,
                                                   const std::vector<int64_t>& recv_bytes);

  enum class Kind : int64_t { Sum = 1, Gather = 2, AllToAll = 3 };
  // Every rank states the sum or gather it is about to make: n values of element_bytes each;
  // throws, naming this rank's and another's, when they differ. Each sum and gather here checks
  // so first.
  void check_same(Kind kind, int64_t n, int64_t element_bytes);

 private:
  struct Header;
  template <typename T>
  void sum(T* data, int64_t n);
  template <typename T>
  void gather(T* data, const std::vector<int64_t>& bounds);
  void barrier(const char* what);
  unsigned char* slot(int r) const;

  std::string path_;
  int rank_, world_;
  double timeout_s_;
  int64_t slot_bytes_;
  size_t bytes_ = 0;
  void* map_ = nullptr;
  Header* header_ = nullptr;
};

}  // namespace ml
