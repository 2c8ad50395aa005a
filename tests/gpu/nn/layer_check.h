// Helpers for the GPU layer tests: one layer built twice from the same declarations, on the
// fp64 CPU backend and on the CUDA backend in T, with the same weights (the CPU's, rounded to
// what T holds, uploaded as the GPU's master weights), run on the same input and output
// gradient; y, dx, every parameter gradient and the routing statistics are compared (counts
// and dropped exactly, the rest within layer_bound<T>()).
#pragma once
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "gpu/gpu_test.h"
#include "native/nn/layer_check.h"
#include "nn/cuda_backend.h"

namespace gputest {

template <typename T>
using Gpu = ml::CudaBackend<T>;
using mltest::Cpu64;

// Ops are held to bound<T>(); a whole layer keeps several intermediates (gates, their
// gradients, router logits) in T, so in bf16 its cancelling sums (the router bias's gradient
// over tokens) carry a few of those roundings: 2e-2.
template <typename T>
constexpr double layer_bound() {
  return std::is_same_v<T, float> ? 1e-5 : 2e-2;
}

// Uniform values on {−1, −½, 0, ½, 1}: with weights on a grid of 1/8 (|w| ≤ ¼ here) and a few
// dozen inputs, x·W is a multiple of 1/16 below 16, exact in bf16.
inline std::vector<double> coarse(ml::Rng& rng, int64_t n) {
  std::vector<double> v(n);
  for (auto& x : v) x = double(int64_t(rng.next_u64() % 5) - 2) / 2.0;
  return v;
}

// Rounds the CPU's weights to T's values and makes them the GPU's master weights. Router
// parameters are put on a grid of 1/8 first: with coarse() inputs the router's logits are then
// exact in every precision, so routing decisions cannot differ by rounding.
template <typename T>
void share_weights(ml::ParamStore<Cpu64>& host, ml::ParamStore<Gpu<T>>& device) {
  for (size_t i = 0; i < host.size(); ++i) {
    const int64_t n = host.spec(i).numel;
    double* v = host.master(i);
    std::vector<float> f(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) {
      if (host.spec(i).name.find("router.") != std::string::npos) v[k] = std::round(v[k] * 8.0) / 8.0;
      v[k] = to_double(to_storage<T>(v[k]));
      f[size_t(k)] = float(v[k]);
    }
    check(cudaMemcpy(device.master(i), f.data(), f.size() * sizeof(float), cudaMemcpyHostToDevice), "weights");
  }
  device.refresh_compute();
  sync("weights");
}

// A layer on both backends. `make(params)` declares it on either ParamStore and returns it.
template <typename T>
struct LayerPair {
  template <class Make>
  LayerPair(Make make, uint64_t seed) {
    cpu_layer = make(host);
    gpu_layer = make(device);
    host.allocate(seed);
    device.allocate(seed);
    share_weights();
  }

  void share_weights() { gputest::share_weights<T>(host, device); }

  Cpu64 cpu;
  ml::ParamStore<Cpu64> host{cpu};
  Gpu<T> gpu{true};
  ml::ParamStore<Gpu<T>> device{gpu};
  std::unique_ptr<ml::Layer<Cpu64>> cpu_layer;
  std::unique_ptr<ml::Layer<Gpu<T>>> gpu_layer;
};

// A layer pair with an input and an output gradient of rows × d_model, uniform in ±1 and
// rounded to T (what most layer tests run).
template <typename T>
struct LayerCase {
  template <class Make>
  LayerCase(Make make, int64_t rows, int64_t d_model, uint64_t seed) : pair(make, seed) {
    ml::Rng rng(seed);
    x = rounded<T>(uniform(rng, rows * d_model));
    dy = rounded<T>(uniform(rng, rows * d_model));
  }

  LayerPair<T> pair;
  std::vector<double> x, dy;
};

// A GPU run's outputs: y, dx and every gradient (fp32), raw bytes too for determinism checks.
struct GpuRun {
  std::vector<double> y, dx;
  std::vector<std::vector<double>> grads;
  std::vector<unsigned char> bytes;
  std::vector<ml::ExpertStats> stats;
};

template <typename T>
GpuRun run_gpu(LayerPair<T>& pair, const std::vector<double>& x, const std::vector<double>& dy, int64_t batch,
               int64_t len) {
  Dev<T> gx(x), gdy(dy), gy(int64_t(x.size())), gdx(int64_t(x.size()));
  gy.poison();
  gdx.poison();
  sync("inputs");
  auto& params = pair.device;
  pair.gpu.zero(params.grads(), size_t(params.total()) * sizeof(float));
  pair.gpu_layer->forward(gx.get(), gy.get(), batch, len);
  pair.gpu_layer->backward(gdy.get(), gdx.get());
  sync("layer");
  GpuRun run;
  run.y = gy.download();
  run.dx = gdx.download();
  run.bytes = gy.bytes();
  const auto dxb = gdx.bytes();
  run.bytes.insert(run.bytes.end(), dxb.begin(), dxb.end());
  for (size_t i = 0; i < params.size(); ++i) {
    std::vector<float> g(size_t(params.spec(i).numel));
    check(cudaMemcpy(g.data(), params.grad(i), g.size() * sizeof(float), cudaMemcpyDeviceToHost), "gradient");
    run.grads.emplace_back(g.begin(), g.end());
    const auto* raw = reinterpret_cast<const unsigned char*>(g.data());
    run.bytes.insert(run.bytes.end(), raw, raw + g.size() * sizeof(float));
  }
  pair.gpu_layer->expert_stats(run.stats);
  return run;
}

template <typename V>
V download_one(const V* p, size_t i = 0) {
  V v{};
  check(cudaMemcpy(&v, p + i, sizeof(V), cudaMemcpyDeviceToHost), "download");
  return v;
}

// The CPU layer's forward and backward on x, dy against the GPU run: returns the report.
template <typename T>
std::string compare(LayerPair<T>& pair, const GpuRun& got, const std::vector<double>& x, const std::vector<double>& dy,
                    int64_t batch, int64_t len) {
  auto& host = pair.host;
  std::vector<double> y(x.size()), dx(x.size());
  pair.cpu.zero(host.grads(), size_t(host.total()) * sizeof(double));
  pair.cpu_layer->forward(x.data(), y.data(), batch, len);
  pair.cpu_layer->backward(dy.data(), dx.data());
  Errors errors(layer_bound<T>());
  errors.add("y", got.y, y);
  errors.add("dx", got.dx, dx);
  for (size_t i = 0; i < host.size(); ++i) errors.add(host.spec(i).name, got.grads.at(i), mltest::gradient(host, i));
  std::vector<ml::ExpertStats> want;
  pair.cpu_layer->expert_stats(want);
  EXPECT(want.size() == got.stats.size(), want.size(), " routings vs ", got.stats.size());
  std::string routed;
  for (size_t l = 0; l < want.size(); ++l) {
    const ml::ExpertStats& st = got.stats[l];
    EXPECT(st.experts == want[l].experts, "experts ", st.experts, " vs ", want[l].experts);
    int64_t assignments = *want[l].dropped;
    for (int64_t e = 0; e < want[l].experts; ++e) {
      const int64_t count = download_one(st.counts, size_t(e));
      EXPECT(count == want[l].counts[e], "moe ", l, " expert ", e, ": count ", count, " vs ", want[l].counts[e]);
      assignments += count;
    }
    const int64_t dropped = download_one(st.dropped);
    EXPECT(dropped == *want[l].dropped, "moe ", l, ": dropped ", dropped, " vs ", *want[l].dropped);
    errors.add("aux", {download_one(st.aux_loss)}, {*want[l].aux_loss});
    routed += mltest::str(" dropped ", dropped, "/", assignments);
  }
  return errors.report() + routed;
}

// A layer case's GPU run against its CPU run.
template <typename T>
std::string check(LayerCase<T>& c, int64_t batch, int64_t len) {
  const GpuRun got = run_gpu<T>(c.pair, c.x, c.dy, batch, len);
  return compare<T>(c.pair, got, c.x, c.dy, batch, len);
}

// Two GPU runs of a layer case: identical bytes.
template <typename T>
std::string check_deterministic(LayerCase<T>& c, int64_t batch, int64_t len) {
  const GpuRun first = run_gpu<T>(c.pair, c.x, c.dy, batch, len);
  const GpuRun second = run_gpu<T>(c.pair, c.x, c.dy, batch, len);
  EXPECT(first.bytes == second.bytes, "two runs differ");
  return mltest::str(first.bytes.size(), " bytes of y, dx and gradients identical");
}

}  // namespace gputest
