#include "cublaslt.h"

#include <cstdlib>
#include <mutex>
#include <vector>

#include "error.h"
#include "shared_library.h"

namespace ml::cuda::lt {
namespace {

Api load() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("MAMBALAB_CUBLASLT")) candidates.push_back(env);
  for (const char* name : {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}) {
    candidates.push_back(name);
    candidates.push_back(std::string("/usr/local/cuda/lib64/") + name);
  }
  const OpenedLibrary lib = open_first(candidates);
  if (!lib.handle)
    throw Error("cuBLASLt: no library could be loaded (set MAMBALAB_CUBLASLT to its path); tried:" + lib.tried);
  const auto bind = [&](const char* symbol, auto& fn) { bind_symbol(lib, "cuBLASLt", symbol, fn); };
  Api a{};
  a.library = lib.path;
  bind("cublasLtCreate", a.create);
  bind("cublasLtDestroy", a.destroy);
  bind("cublasLtMatmulDescCreate", a.matmul_desc_create);
  bind("cublasLtMatmulDescDestroy", a.matmul_desc_destroy);
  bind("cublasLtMatmulDescSetAttribute", a.matmul_desc_set_attribute);
  bind("cublasLtMatrixLayoutCreate", a.layout_create);
  bind("cublasLtMatrixLayoutDestroy", a.layout_destroy);
  bind("cublasLtMatrixLayoutSetAttribute", a.layout_set_attribute);
  bind("cublasLtMatmulPreferenceCreate", a.preference_create);
  bind("cublasLtMatmulPreferenceDestroy", a.preference_destroy);
  bind("cublasLtMatmulPreferenceSetAttribute", a.preference_set_attribute);
  bind("cublasLtMatmulAlgoGetHeuristic", a.algo_get_heuristic);
  bind("cublasLtMatmul", a.matmul);
  return a;
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
