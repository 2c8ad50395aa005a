#include "shared_library.h"

#include <dlfcn.h>

namespace ml {

OpenedLibrary open_first(const std::vector<std::string>& candidates) {
  OpenedLibrary lib;
  for (const auto& path : candidates) {
    lib.handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib.handle) {
      lib.path = path;
      return lib;
    }
    const char* why = dlerror();
    lib.tried += "\n  " + path + ": " + (why ? why : "not found");
  }
  return lib;
}

void* symbol_address(const OpenedLibrary& lib, const char* symbol) { return dlsym(lib.handle, symbol); }

}  // namespace ml
