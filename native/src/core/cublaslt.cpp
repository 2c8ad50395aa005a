#include "cublaslt.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <vector>

#include "error.h"

namespace ml::cuda::lt {
namespace {

template <typename Fn>
void bind(void* lib, const char* symbol, Fn& fn, const std::string& path) {
  fn = reinterpret_cast<Fn>(dlsym(lib, symbol));
  ML_CHECK(fn != nullptr, "cuBLASLt: ", path, " has no symbol ", symbol);
}

Api load() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("MAMBALAB_CUBLASLT")) candidates.push_back(env);
  for (const char* name : {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}) {
    candidates.push_back(name);
    candidates.push_back(std::string("/usr/local/cuda/lib64/") + name);
  }
  std::string tried;
  for (const auto& path : candidates) {
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = dlerror();
      tried += "\n  " + path + ": " + (why ? why : "not found");
      continue;
    }
    Api a{};
    a.library = path;
    bind(lib, "cublasLtCreate", a.create, path);
    bind(lib, "cublasLtDestroy", a.destroy, path);
    bind(lib, "cublasLtMatmulDescCreate", a.matmul_desc_create, path);
    bind(lib, "cublasLtMatmulDescDestroy", a.matmul_desc_destroy, path);
    bind(lib, "cublasLtMatmulDescSetAttribute", a.matmul_desc_set_attribute, path);
    bind(lib, "cublasLtMatrixLayoutCreate", a.layout_create, path);
    bind(lib, "cublasLtMatrixLayoutDestroy", a.layout_destroy, path);
    bind(lib, "cublasLtMatrixLayoutSetAttribute", a.layout_set_attribute, path);
    bind(lib, "cublasLtMatmulPreferenceCreate", a.preference_create, path);
    bind(lib, "cublasLtMatmulPreferenceDestroy", a.preference_destroy, path);
    bind(lib, "cublasLtMatmulPreferenceSetAttribute", a.preference_set_attribute, path);
    bind(lib, "cublasLtMatmulAlgoGetHeuristic", a.algo_get_heuristic, path);
    bind(lib, "cublasLtMatmul", a.matmul, path);
    return a;  // the library stays loaded for the life of the process
  }
  throw Error("cuBLASLt: no library could be loaded (set MAMBALAB_CUBLASLT to its path); tried:" + tried);
}

}  // namespace

const Api& api() {
  static std::once_flag once;
  static Api loaded;
  std::call_once(once, [] { loaded = load(); });  // a throw leaves the flag unset: the next call retries
  return loaded;
}

const char* status_name(Status s) {
  switch (s) {
    case 0: return "CUBLAS_STATUS_SUCCESS";
    case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
    case 7: return "CUBLAS_STATUS_INVALID_VALUE";
    case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
    case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case 16: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_(unknown)";
  }
}

}  // namespace ml::cuda::lt
