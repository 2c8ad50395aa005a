// Tensor shapes, as parameters declare them and checkpoints store them. Ops take raw pointers
// and sizes (see ops/*/<op>.h); memory is owned by HostBuffer or cuda::DeviceBuffer.
#pragma once
#include <cstdint>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

namespace ml {

using Shape = std::vector<int64_t>;

inline int64_t shape_numel(const Shape& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}

std::string shape_str(const Shape& shape);

}  // namespace ml
