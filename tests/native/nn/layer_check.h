// Layers on the fp64 CPU backend, and a finite-difference check of a whole layer:
// ⟨layer(x), dy⟩ + its auxiliary losses against backward(), over the input and every
// parameter (redrawn first, see randomise_parameters).
#pragma once
#include <string>
#include <vector>

#include "../harness.h"
#include "nn/cpu_backend.h"
#include "nn/layer.h"
#include "nn/params.h"

namespace mltest {

using Cpu64 = ml::CpuBackend<double>;
using Params64 = ml::ParamStore<Cpu64>;

// Redraws every parameter uniformly in ±0.5 (norm weights in [0.5, 1.5]), so that every path
// through a layer carries gradients of similar size; the trained initialisation makes some
// (dt, through a tiny softplus) too small for finite differences to resolve.
template <class B>
void randomise_parameters(ml::ParamStore<B>& params, ml::Rng& rng) {
  for (size_t i = 0; i < params.size(); ++i) {
    const bool norm = params.spec(i).name.find("norm") != std::string::npos;
    auto* v = params.master(i);
    for (int64_t k = 0; k < params.spec(i).numel; ++k) v[k] = norm ? rng.uniform(0.5, 1.5) : rng.uniform(-0.5, 0.5);
  }
}

// The weighted auxiliary losses of a CPU layer's (or model's) last forward.
inline double aux_loss(const std::vector<ml::ExpertStats>& stats) {
  double total = 0;
  for (const auto& s : stats) total += *s.aux_loss;
  return total;
}

inline std::vector<double> values(const Params64& params, size_t i) {
  return {params.master(i), params.master(i) + params.spec(i).numel};
}

inline std::vector<double> gradient(const Params64& params, size_t i) {
  return {params.grad(i), params.grad(i) + params.spec(i).numel};
}

inline std::string check_layer_gradients(ml::Layer<Cpu64>& layer, Params64& params, int64_t d_model, ml::Rng& rng,
                                         int64_t batch = 2, int64_t len = 9) {
  randomise_parameters(params, rng);
  const int64_t rows = batch * len;
  auto x = random_vector(rng, rows * d_model), dy = random_vector(rng, rows * d_model);
  std::vector<double> y(rows * d_model), dx(rows * d_model);
  // Parameters are perturbed through copies that the loss writes back before each forward.
  std::vector<std::vector<double>> vals(params.size()), grads(params.size());
  for (size_t i = 0; i < params.size(); ++i) vals[i] = values(params, i);
  auto loss = [&] {
    for (size_t i = 0; i < params.size(); ++i) std::copy(vals[i].begin(), vals[i].end(), params.master(i));
    layer.forward(x.data(), y.data(), batch, len);
    std::vector<ml::ExpertStats> stats;
    layer.expert_stats(stats);
    return dot(y, dy) + aux_loss(stats);
  };
  loss();
  layer.backward(dy.data(), dx.data());
  std::vector<Input> inputs = {{"x", &x, &dx}};
  for (size_t i = 0; i < params.size(); ++i) {
    grads[i] = gradient(params, i);
    inputs.push_back({params.spec(i).name, &vals[i], &grads[i]});
  }
  return check_gradients(loss, inputs, rng);
}

}  // namespace mltest
