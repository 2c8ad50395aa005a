#include "bytes.h"

#include <iomanip>
#include <sstream>

namespace ml {

std::string gib(double bytes) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << bytes / double(int64_t{1} << 30) << " GiB";
  return out.str();
}

}  // namespace ml
