// The dense MLP layer ('F') on the GPU (ml::MlpLayer's contract, see ../mlp.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "../ffn.h"
#include "context.h"
#include "layer.h"
#include "params.h"

namespace ml::cuda {

template <typename T>
std::unique_ptr<Layer<T>> make_mlp_layer(int64_t d_model, const FfnConfig& config, DeviceParams<T>& params,
                                         const std::string& prefix, const Context& context);

}  // namespace ml::cuda
