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
  const auto verb = [](int64_t k) {
    return k == int64_t(Kind::Sum) ? "sums" : k == int64_t(Kind::Gather) ? "gathers" : "exchanges";
  };
  const char* at = kind == Kind::Sum ? "a sum" : kind == Kind::Gather ? "a gather" : "an all-to-all";
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

std::vector<std::vector<int64_t>> SharedMemoryCollective::check_exchange(const std::vector<int64_t>& send_bytes,
                                                                        const std::vector<int64_t>& recv_bytes) {
  const size_t w = size_t(world_);
  ML_CHECK(send_bytes.size() == w && recv_bytes.size() == w, "data parallel: an all-to-all over ", world_,
           " ranks needs ", world_, " send and receive sizes, got ", send_bytes.size(), " and ", recv_bytes.size());
  ML_CHECK(int64_t(2 * w * sizeof(int64_t)) <= slot_bytes_, "data parallel: ", world_,
           " ranks' all-to-all sizes do not fit a slot of ", slot_bytes_, " bytes");
  for (size_t q = 0; q < w; ++q)
    ML_CHECK(send_bytes[q] >= 0 && recv_bytes[q] >= 0, "data parallel: rank ", rank_, " exchanges a negative size with rank ", q);
  std::vector<std::vector<int64_t>> sends(w, std::vector<int64_t>(w)), recvs = sends;
  if (world_ == 1) {
    sends[0] = send_bytes, recvs[0] = recv_bytes;
  } else {
    check_same(Kind::AllToAll, world_, 1);
    auto* mine = reinterpret_cast<int64_t*>(slot(rank_));
    std::memcpy(mine, send_bytes.data(), w * sizeof(int64_t));
    std::memcpy(mine + w, recv_bytes.data(), w * sizeof(int64_t));
    barrier("an all-to-all");
    for (size_t r = 0; r < w; ++r) {
      const auto* theirs = reinterpret_cast<const int64_t*>(slot(int(r)));
      std::memcpy(sends[r].data(), theirs, w * sizeof(int64_t));
      std::memcpy(recvs[r].data(), theirs + w, w * sizeof(int64_t));
    }
    barrier("an all-to-all");
  }
  for (size_t r = 0; r < w; ++r)
    for (size_t q = 0; q < w; ++q)
      ML_CHECK(sends[r][q] == recvs[q][r], "data parallel: in an all-to-all rank ", r, " sends ", sends[r][q],
               " bytes to rank ", q, ", which expects ", recvs[q][r], " (exchange the counts first)");
  return sends;
}

void SharedMemoryCollective::all_to_all(const void* send, const std::vector<int64_t>& send_bytes, void* recv,
                                        const std::vector<int64_t>& recv_bytes) {
  const std::vector<std::vector<int64_t>> matrix = check_exchange(send_bytes, recv_bytes);
  const size_t w = size_t(world_);
  // Where rank r's block for rank q starts in r's send buffer, and where r's block lands in ours.
  std::vector<std::vector<int64_t>> starts(w, std::vector<int64_t>(w + 1, 0));
  int64_t longest = 0;
  for (size_t r = 0; r < w; ++r) {
    for (size_t q = 0; q < w; ++q) starts[r][q + 1] = starts[r][q] + matrix[r][q];
    longest = std::max(longest, starts[r][w]);
  }
  const auto* out = static_cast<const unsigned char*>(send);
  auto* in = static_cast<unsigned char*>(recv);
  const size_t me = size_t(rank_);
  if (world_ == 1) {
    if (longest > 0) std::memcpy(in, out, size_t(longest));
    return;
  }
  // Round by round, each rank's whole send buffer passes through its slot one window at a time;
  // every rank copies out the part of each window that is its block.
  for (int64_t window = 0; window < longest; window += slot_bytes_) {
    const int64_t mine = std::clamp<int64_t>(starts[me][w] - window, 0, slot_bytes_);
    if (mine > 0) std::memcpy(slot(rank_), out + window, size_t(mine));
    barrier("an all-to-all");
    int64_t landed = 0;  // where rank r's block starts in recv
    for (size_t r = 0; r < w; ++r) {
      const int64_t begin = std::max(starts[r][me], window), end = std::min(starts[r][me + 1], window + slot_bytes_);
      if (begin < end)
        std::memcpy(in + landed + (begin - starts[r][me]), slot(int(r)) + (begin - window), size_t(end - begin));
      landed += matrix[r][me];
    }
    barrier("an all-to-all");  // every rank has read the slots before they are written again
  }
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
