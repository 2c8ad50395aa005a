// Memory sizes for messages: "79.2 GiB".
#pragma once
#include <string>

namespace ml {

std::string gib(double bytes);

}  // namespace ml
