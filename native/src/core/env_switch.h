// Off switches read from the environment: NAME=0 turns a feature off (to measure or test the
// path it replaces); unset, or any other value, leaves it on.
#pragma once
#include <cstdlib>
#include <cstring>

namespace ml {

inline bool switched_off(const char* name) {
  const char* value = std::getenv(name);
  return value && std::strcmp(value, "0") == 0;
}

}  // namespace ml
