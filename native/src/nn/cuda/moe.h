// The mixture-of-experts layer on the GPU (ml::MoeLayer's contract, see ../moe.h): router
// linear, route (switch; Sinkhorn during training), tokens permuted into expert-contiguous
// order, the experts' feed-forward blocks as grouped GEMMs, un-permuted and scaled by the
// gates, all on the context's stream.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "../moe.h"
#include "context.h"
#include "layer.h"
#include "params.h"

namespace ml::cuda {

template <typename T>
std::unique_ptr<Layer<T>> make_moe_layer(int64_t d_model, const MoeConfig& config, DeviceParams<T>& params,
                                         const std::string& prefix, const Context& context);

}  // namespace ml::cuda
