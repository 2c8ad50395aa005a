#include "shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>

#include "../core/error.h"
#include "wait.h"

namespace ml {

// The file starts with this header (kHeaderBytes); slot r follows at kHeaderBytes + r · slot_bytes.
struct SharedMemoryCollective::Header {
  uint64_t magic, session;
  int64_t world, slot_bytes;
  std::atomic<int64_t> arrived;     // ranks at the current barrier
  std::atomic<int64_t> generation;  // barriers completed
};
// Other processes map the same atomics: they must be plain memory operations.
static_assert(std::atomic<int64_t>::is_always_lock_free, "the barrier needs lock-free 64-bit atomics");

using dist::after;
using dist::wait_until;

namespace {

constexpr uint64_t kMagic = 0x62616c61626d616dULL;  // "mambalab", little-endian
constexpr size_t kHeaderBytes = 256;
static_assert(kHeaderBytes % 64 == 0, "slots stay 64-byte aligned");

void* map_file(int fd, size_t bytes, const std::string& path) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ML_CHECK(p != MAP_FAILED, "data parallel: cannot map ", path, ": ", std::strerror(errno));
  return p;
}

}  // namespace

SharedMemoryCollective::SharedMemoryCollective(const std::string& path, uint64_t session, int rank, int world,
                                               double timeout_s, int64_t slot_bytes)
    : path_(path), rank_(rank), world_(world), timeout_s_(timeout_s), slot_bytes_(slot_bytes) {
  ML_CHECK(world >= 1 && rank >= 0 && rank < world, "data parallel: rank ", rank, " is not in [0, ", world, ")");
  ML_CHECK(slot_bytes >= 64 && slot_bytes % 64 == 0, "data parallel: slot_bytes must be a positive multiple of 64, got ",
           slot_bytes);
  ML_CHECK(timeout_s > 0, "data parallel: the timeout must be positive, got ", timeout_s);
  static_assert(sizeof(Header) <= kHeaderBytes, "the header fits before the slots");
  bytes_ = kHeaderBytes + size_t(world) * size_t(slot_bytes);
  if (rank == 0) {
    // Built whole under another name, then renamed: the others never see half a header.
    const std::string tmp = path + ".tmp" + std::to_string(getpid());
    const int fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    ML_CHECK(fd >= 0, "data parallel: cannot create ", tmp, ": ", std::strerror(errno));
    if (ftruncate(fd, off_t(bytes_)) != 0) {
      const int e = errno;
      close(fd);
      unlink(tmp.c_str());
      throw Error(detail::concat("data parallel: cannot size ", tmp, " to ", bytes_, " bytes: ", std::strerror(e)));
    }
    map_ = map_file(fd, bytes_, tmp);
    close(fd);
    header_ = new (map_) Header{kMagic, session, world, slot_bytes, {0}, {0}};
    ML_CHECK(rename(tmp.c_str(), path.c_str()) == 0, "data parallel: cannot rename ", tmp, " to ", path, ": ",
             std::strerror(errno));
  } else {
    // A stale file (another session) or one not there yet: wait for rank 0's.
    const bool found = wait_until(
        [&] {
          const int fd = open(path.c_str(), O_RDWR);
          if (fd < 0) return false;
          struct stat st {};
          const bool sized = fstat(fd, &st) == 0 && size_t(st.st_size) == bytes_;
          void* p = sized ? map_file(fd, bytes_, path) : nullptr;
          close(fd);
          if (!p) return false;
          const auto* h = static_cast<const Header*>(p);
          if (h->magic == kMagic && h->session == session && h->world == world && h->slot_bytes == slot_bytes) {
            map_ = p;
            header_ = static_cast<Header*>(p);
            return true;
          }
          munmap(p, bytes_);
          return false;
        },
        after(timeout_s));
    ML_CHECK(found, "data parallel: rank ", rank, " of ", world, " found no rendezvous from rank 0 at ", path,
             " within ", timeout_s, " s (rank 0 did not start, or belongs to another session)");
  }
  try {
    barrier("the start");
  } catch (const Error&) {
    munmap(map_, bytes_);
    if (rank == 0) unlink(path.c_str());
    throw;
  }
}

SharedMemoryCollective::~SharedMemoryCollective() {
  if (map_) munmap(map_, bytes_);
  if (rank_ == 0) unlink(path_.c_str());  // every rank mapped it at the start barrier
}

unsigned char* SharedMemoryCollective::slot(int r) const {
  return static_cast<unsigned char*>(map_) + kHeaderBytes + size_t(r) * size_t(slot_bytes_);
}

void SharedMemoryCollective::barrier(const char* what) {
  const int64_t generation = header_->generation.load(std::memory_order_acquire);
  if (header_->arrived.fetch_add(1, std::memory_order_acq_rel) + 1 == world_) {
    // The last to arrive opens the next barrier before releasing this one.
    header_->arrived.store(0, std::memory_order_relaxed);
    header_->generation.fetch_add(1, std::memory_order_release);
    return;
  }
  const bool released = wait_until(
      [&] { return header_->generation.load(std::memory_order_acquire) != generation; }, after(timeout_s_));
  ML_CHECK(released, "data parallel: rank ", rank_, " of ", world_, " waited ", timeout_s_, " s at ", what,
           " for the other ranks: one of them has stopped or hangs");
}

void SharedMemoryCollective::check_same(Kind kind, int64_t n, int64_t element_bytes) {
  if (world_ == 1) return;
  const auto verb = [](int64_t k) { return k == int64_t(Kind::Sum) ? "sums" : "gathers"; };
  const char* at = kind == Kind::Sum ? "a sum" : "a gather";
  const int64_t shape[3] = {int64_t(kind), n, element_bytes};
  std::memcpy(slot(rank_), shape, sizeof shape);
  barrier(at);
  for (int r = 0; r < world_; ++r) {
    int64_t other[3];
    std::memcpy(other, slot(r), sizeof other);
    ML_CHECK(other[0] == shape[0] && other[1] == n && other[2] == element_bytes, "data parallel: rank ", rank_, " ",
             verb(shape[0]), " ", n, " values of ", element_bytes, " bytes while rank ", r, " ", verb(other[0]), " ",
             other[1], " of ", other[2], ": the ranks' steps differ (same model, options and batch on every rank?)");
  }
  barrier(at);
}

void SharedMemoryCollective::broadcast(void* data, int64_t bytes, int root) {
  ML_CHECK(bytes >= 0 && bytes <= slot_bytes_ && root >= 0 && root < world_, "data parallel: a broadcast of ", bytes,
           " bytes from rank ", root, " does not fit ", world_, " ranks' slots of ", slot_bytes_, " bytes");
  if (world_ == 1) return;
  if (rank_ == root) std::memcpy(slot(root), data, size_t(bytes));
  barrier("a broadcast");
  if (rank_ != root) std::memcpy(data, slot(root), size_t(bytes));
  barrier("a broadcast");  // every rank has read the slot before it is written again
}

template <typename T>
void SharedMemoryCollective::sum(T* data, int64_t n) {
  if (world_ == 1) return;
  // The ranks must be at the same sum: each shows what it sums before any value moves.
  check_same(Kind::Sum, n, int64_t(sizeof(T)));
  const int64_t chunk = slot_bytes_ / int64_t(sizeof(T));
  for (int64_t offset = 0; offset < n; offset += chunk) {
    const int64_t m = std::min(chunk, n - offset);
    std::memcpy(slot(rank_), data + offset, size_t(m) * sizeof(T));
    barrier("a sum");
    for (int64_t i = 0; i < m; ++i) {
      T s = reinterpret_cast<const T*>(slot(0))[i];
      for (int r = 1; r < world_; ++r) s += reinterpret_cast<const T*>(slot(r))[i];
      data[offset + i] = s;
    }
    barrier("a sum");  // every rank has read the slots before they are written again
  }
}

template <typename T>
void SharedMemoryCollective::gather(T* data, const std::vector<int64_t>& bounds) {
  ML_CHECK(bounds.size() == size_t(world_) + 1, "data parallel: a gather over ", world_, " ranks needs ", world_ + 1,
           " bounds, got ", bounds.size());
  if (world_ == 1) return;
  check_same(Kind::Gather, bounds.back(), int64_t(sizeof(T)));
  int64_t longest = 0;
  for (int r = 0; r < world_; ++r) longest = std::max(longest, bounds[size_t(r) + 1] - bounds[size_t(r)]);
  // Chunk by chunk: each rank puts the next piece of its range in its slot, then every rank
  // copies the others' pieces out; ranges shorter than the longest run out early.
  const int64_t chunk = slot_bytes_ / int64_t(sizeof(T));
  const auto piece = [&](int r, int64_t offset) {
    return std::clamp<int64_t>(bounds[size_t(r) + 1] - bounds[size_t(r)] - offset, 0, chunk);
  };
  for (int64_t offset = 0; offset < longest; offset += chunk) {
    if (const int64_t m = piece(rank_, offset); m > 0)
      std::memcpy(slot(rank_), data + bounds[size_t(rank_)] + offset, size_t(m) * sizeof(T));
    barrier("a gather");
    for (int r = 0; r < world_; ++r)
      if (const int64_t m = piece(r, offset); r != rank_ && m > 0)
        std::memcpy(data + bounds[size_t(r)] + offset, slot(r), size_t(m) * sizeof(T));
    barrier("a gather");  // every rank has read the slots before they are written again
  }
}

template void SharedMemoryCollective::sum<float>(float*, int64_t);
template void SharedMemoryCollective::sum<double>(double*, int64_t);
template void SharedMemoryCollective::gather<float>(float*, const std::vector<int64_t>&);
template void SharedMemoryCollective::gather<double>(double*, const std::vector<int64_t>&);

}  // namespace ml
