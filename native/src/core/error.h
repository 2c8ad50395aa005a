// Errors the engine reports to its callers: what was expected, what was found, where.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace ml {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

}  // namespace ml

// Throws ml::Error with the streamed message parts when `cond` is false.
#define ML_CHECK(cond, ...)                                   \
  do {                                                        \
    if (!(cond)) throw ::ml::Error(::ml::detail::concat(__VA_ARGS__)); \
  } while (0)
