// Loading a shared library at run time (dlopen) from a list of candidates, and binding its
// symbols: how the engine uses cuBLASLt (core/cublaslt) and NCCL (dist/nccl_api) without
// linking them, so one build serves machines with and without them.
#pragma once
#include <string>
#include <vector>

#include "error.h"

namespace ml {

struct OpenedLibrary {
  void* handle = nullptr;  // null when no candidate loaded
  std::string path;        // the candidate that loaded
  std::string tried;       // "\n  <candidate>: <why it did not load>" for each that failed
};

// Opens the first candidate that loads (RTLD_NOW | RTLD_LOCAL); a library stays loaded for the
// life of the process.
OpenedLibrary open_first(const std::vector<std::string>& candidates);

void* symbol_address(const OpenedLibrary& lib, const char* symbol);

// Binds `fn` to `symbol` of an opened library; throws naming the library (`what`) and the file.
template <typename Fn>
void bind_symbol(const OpenedLibrary& lib, const char* what, const char* symbol, Fn& fn) {
  fn = reinterpret_cast<Fn>(symbol_address(lib, symbol));
  ML_CHECK(fn != nullptr, what, ": ", lib.path, " has no symbol ", symbol);
}

}  // namespace ml
