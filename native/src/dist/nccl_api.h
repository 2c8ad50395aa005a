// The few NCCL entry points data parallelism over GPUs uses (dist/nccl.cu), declared by us from
// NCCL's public API documentation and loaded at run time (dlopen), as core/cublaslt does for
// cuBLASLt: the build needs no NCCL headers or library, so one build serves machines with and
// without NCCL (CI has none). The values below are the ABI values of NCCL 2.x's nccl.h.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "../core/cuda_fwd.h"

namespace ml::nccl {

using Result = int;  // ncclResult_t
constexpr Result kSuccess = 0, kInProgress = 7;
struct CommOpaque;
using Comm = CommOpaque*;  // ncclComm_t
using RedOp = int;         // ncclRedOp_t
constexpr RedOp kSum = 0;  // ncclSum
constexpr int kInt8 = 0, kFloat32 = 7, kFloat64 = 8;  // ncclDataType_t

struct UniqueId {
  char internal[128];  // NCCL_UNIQUE_ID_BYTES
};

// The leading fields of ncclConfig_t, which have kept their places since NCCL 2.14 added them.
// NCCL copies the first `size` bytes over its defaults, so this prefix asks for a nonblocking
// communicator and leaves every other setting NCCL's: its calls then return at once and the
// caller polls, so a rank that never arrives can be given up on (dist/nccl.cu).
struct ConfigPrefix {
  size_t size = 20;             // the bytes up to `blocking`'s end, not the struct's trailing padding
  unsigned magic = 0xcafebeef;  // NCCL_CONFIG_INITIALIZER's
  unsigned version = 21400;     // the layout's: NCCL_VERSION(2, 14, 0)
  int blocking = 0;
};
static_assert(offsetof(ConfigPrefix, blocking) + sizeof(int) == 20, "ncclConfig_t's leading fields");
constexpr int kMinVersion = 21400;  // nonblocking communicators

struct Api {
  Result (*get_version)(int* version);
  Result (*get_unique_id)(UniqueId* id);
  Result (*comm_init_rank_config)(Comm* comm, int nranks, UniqueId id, int rank, ConfigPrefix* config);
  Result (*comm_abort)(Comm comm);
  Result (*comm_get_async_error)(Comm comm, Result* state);
  const char* (*get_error_string)(Result result);
  Result (*all_reduce)(const void* send, void* recv, size_t count, int datatype, RedOp op, Comm comm,
                       cudaStream_t stream);
  Result (*broadcast)(const void* send, void* recv, size_t count, int datatype, int root, Comm comm,
                      cudaStream_t stream);
  // Point to point, for the all-to-all of expert parallelism: sends and receives between
  // group_start and group_end go out together (NCCL pairs them, so no ordering deadlocks).
  Result (*group_start)();
  Result (*group_end)();
  Result (*send)(const void* send, size_t count, int datatype, int peer, Comm comm, cudaStream_t stream);
  Result (*recv)(void* recv, size_t count, int datatype, int peer, Comm comm, cudaStream_t stream);
  std::string library;  // the file that was loaded
  int version = 0;      // NCCL_VERSION_CODE: major·10000 + minor·100 + patch
};

// Where NCCL is looked for, in order: $MAMBALAB_NCCL_LIB alone when it is set; else
// libnccl.so.2 through the dynamic linker (LD_LIBRARY_PATH, the ldconfig cache), then the pip
// wheel's copy (nvidia-nccl-cu12/-cu13, as PyTorch installs it) at
// <prefix>/lib/python3*/{site,dist}-packages/nvidia/nccl/lib/libnccl.so.2 for each prefix of
// $VIRTUAL_ENV, $CONDA_PREFIX, $HOME/.local, /usr/local, /usr, /opt/conda.
struct Search {
  std::vector<std::string> candidates;  // files to try, in order
  std::vector<std::string> patterns;    // the wheel locations searched (glob patterns)
};
Search search();

// Loads NCCL once, after setting NCCL_NVLS_ENABLE=0 in this process's environment (NVLink
// multicast must stay off on our GPU hosts, and NCCL reads it when a communicator starts).
// Throws ml::Error naming every place searched when no library loads, or when the one found is
// older than 2.14. A failed load is tried again at the next call.
const Api& api();

// "2.27.3" for a version code.
std::string version_name(int code);

}  // namespace ml::nccl
