// A parallel group such as "M|E" on the GPU: every branch reads the same input and their
// outputs are summed (ml::ParallelLayer's contract, see ../parallel.h).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "context.h"
#include "layer.h"

namespace ml::cuda {

template <typename T>
std::unique_ptr<Layer<T>> make_parallel_layer(int64_t d_model, std::vector<std::unique_ptr<Layer<T>>> branches,
                                              const Context& context);

}  // namespace ml::cuda
