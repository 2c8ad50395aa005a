#include "nccl_api.h"

#include <glob.h>

#include <cstdlib>
#include <mutex>

#include "../core/error.h"
#include "../core/shared_library.h"

namespace ml::nccl {
namespace {

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// The files matching a glob pattern, sorted (glob's order); none when nothing matches.
std::vector<std::string> matching(const std::string& pattern) {
  glob_t found{};
  std::vector<std::string> out;
  if (glob(pattern.c_str(), 0, nullptr, &found) == 0)
    for (size_t i = 0; i < found.gl_pathc; ++i) out.emplace_back(found.gl_pathv[i]);
  globfree(&found);
  return out;
}

Api load() {
  // Before NCCL is loaded, so before any communicator starts, whatever the caller's environment.
  setenv("NCCL_NVLS_ENABLE", "0", 1);
  const Search where = search();
  const OpenedLibrary lib = open_first(where.candidates);
  if (!lib.handle) {
    std::string message = "NCCL: no library could be loaded; tried:" + lib.tried;
    if (!where.patterns.empty()) {
      message += "\nsearched for the pip wheel's copy (nvidia-nccl-cu12/-cu13, as PyTorch installs it) at:";
      for (const auto& pattern : where.patterns) message += "\n  " + pattern;
    }
    throw Error(message + "\nset MAMBALAB_NCCL_LIB to libnccl.so.2's path (with PyTorch: python3 -c \"import os, "
                          "nvidia.nccl; print(os.path.join(nvidia.nccl.__path__[0], 'lib', 'libnccl.so.2'))\")");
  }
  const auto bind = [&](const char* symbol, auto& fn) { bind_symbol(lib, "NCCL", symbol, fn); };
  Api a{};
  a.library = lib.path;
  bind("ncclGetVersion", a.get_version);
  bind("ncclGetUniqueId", a.get_unique_id);
  bind("ncclCommInitRankConfig", a.comm_init_rank_config);
  bind("ncclCommAbort", a.comm_abort);
  bind("ncclCommGetAsyncError", a.comm_get_async_error);
  bind("ncclGetErrorString", a.get_error_string);
  bind("ncclAllReduce", a.all_reduce);
  bind("ncclBroadcast", a.broadcast);
  bind("ncclGroupStart", a.group_start);
  bind("ncclGroupEnd", a.group_end);
  bind("ncclSend", a.send);
  bind("ncclRecv", a.recv);
  ML_CHECK(a.get_version(&a.version) == kSuccess, "NCCL: ", a.library, ": ncclGetVersion failed");
  ML_CHECK(a.version >= kMinVersion, "NCCL: ", a.library, " is NCCL ", version_name(a.version),
           "; data parallel needs 2.14 or newer (nonblocking communicators)");
  return a;
}

}  // namespace

Search search() {
  const std::string env = env_or_empty("MAMBALAB_NCCL_LIB");
  if (!env.empty()) return {{env}, {}};
  Search s{{"libnccl.so.2"}, {}};
  const std::string home = env_or_empty("HOME");
  for (const std::string& prefix : {env_or_empty("VIRTUAL_ENV"), env_or_empty("CONDA_PREFIX"),
                                    home.empty() ? home : home + "/.local", std::string("/usr/local"),
                                    std::string("/usr"), std::string("/opt/conda")}) {
    if (prefix.empty()) continue;
    for (const char* packages : {"site-packages", "dist-packages"}) {
      const std::string pattern = prefix + "/lib/python3*/" + packages + "/nvidia/nccl/lib/libnccl.so.2";
      s.patterns.push_back(pattern);
      for (auto& file : matching(pattern)) s.candidates.push_back(std::move(file));
    }
  }
  return s;
}

const Api& api() {
  static std::once_flag once;
  static Api loaded;
  std::call_once(once, [] { loaded = load(); });  // a throw leaves the flag unset: the next call retries
  return loaded;
}

std::string version_name(int code) {
  // NCCL_VERSION: major·1000 + minor·100 + patch up to 2.8, major·10000 + minor·100 + patch since.
  const int major = code >= 10000 ? code / 10000 : code / 1000;
  const int minor = code >= 10000 ? code / 100 % 100 : code / 100 % 10;
  return detail::concat(major, ".", minor, ".", code % 100);
}

}  // namespace ml::nccl
