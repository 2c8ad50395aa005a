// Finite-difference check of a whole layer: ⟨layer(x), dy⟩ + aux_loss against backward(),
// over the input and every parameter (redrawn first, see randomise_parameters).
#pragma once
#include "../harness.h"
#include "nn/layer.h"
#include "nn/param.h"

namespace mltest {

inline std::string check_layer_gradients(ml::Layer<double>& layer, ml::ParamList<double>& params, int64_t d_model,
                                         ml::Rng& rng, int64_t batch = 2, int64_t len = 9) {
  randomise_parameters(params, rng);
  const int64_t rows = batch * len;
  auto x = random_vector(rng, rows * d_model), dy = random_vector(rng, rows * d_model);
  std::vector<double> y(rows * d_model), dx(rows * d_model);
  // Parameters are perturbed through copies that the loss writes back before each forward.
  std::vector<std::vector<double>> values(params.size()), grads(params.size());
  for (size_t i = 0; i < params.size(); ++i)
    values[i].assign(params[i].value.data(), params[i].value.data() + params[i].value.numel());
  auto loss = [&] {
    for (size_t i = 0; i < params.size(); ++i) std::copy(values[i].begin(), values[i].end(), params[i].value.data());
    layer.forward(x.data(), y.data(), batch, len);
    return dot(y, dy) + layer.aux_loss();
  };
  loss();
  layer.backward(dy.data(), dx.data());
  std::vector<Input> inputs = {{"x", &x, &dx}};
  for (size_t i = 0; i < params.size(); ++i) {
    grads[i].assign(params[i].grad.data(), params[i].grad.data() + params[i].grad.numel());
    inputs.push_back({params[i].name, &values[i], &grads[i]});
  }
  return check_gradients(loss, inputs, rng);
}

}  // namespace mltest
