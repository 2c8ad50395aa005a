#include "config.h"

namespace ml {

std::string describe_layers(const std::vector<LayerSpec>& layers) {
  std::string out;
  for (const auto& layer : layers) {
    if (!out.empty()) out += ' ';
    for (size_t j = 0; j < layer.size(); ++j) {
      if (j) out += '|';
      out += layer[j];
    }
  }
  return out;
}

}  // namespace ml
