// Helpers for the GPU layer tests: a CPU layer in fp64 and the GPU layer on the same weights
// (the CPU's, rounded to what T holds, uploaded through a ParamList<float>), run on the same
// input and output gradient; y, dx, every parameter gradient and the routing statistics are
// compared (counts and dropped exactly, the rest within layer_bound<T>()).
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "gpu/gpu_test.h"
#include "nn/cuda/layer.h"
#include "nn/cuda/params.h"
#include "nn/layer.h"
#include "nn/param.h"

namespace gputest {

// Ops are held to bound<T>(); a whole layer keeps several intermediates (gates, their
// gradients, router logits) in T, so in bf16 its cancelling sums (the router bias's gradient
// over tokens) carry a few of those roundings: 2e-2.
template <typename T>
constexpr double layer_bound() {
  return std::is_same_v<T, float> ? 1e-5 : 2e-2;
}

// Rounds `host`'s values in place to T's, and returns the fp32 copy the GPU uploads. Router
// parameters are put on a grid of 1/8 first: with coarse() inputs the router's logits are
// then exact in every precision, so routing decisions cannot differ by rounding.
template <typename T>
ml::ParamList<float> device_copy(ml::ParamList<double>& host) {
  ml::ParamList<float> out;
  for (size_t i = 0; i < host.size(); ++i) {
    ml::Param<double>& p = host[i];
    ml::Param<float>& q = out.add(p.name, p.value.shape(), p.weight_decay, p.file_shape);
    for (int64_t j = 0; j < p.value.numel(); ++j) {
      double v = p.value.data()[j];
      if (p.name.find("router.") != std::string::npos) v = std::round(v * 8.0) / 8.0;
      v = to_double(to_storage<T>(v));
      p.value.data()[j] = v;
      q.value.data()[j] = float(v);
    }
  }
  return out;
}

// Uniform values on {−1, −½, 0, ½, 1}: with weights on a grid of 1/8 (|w| ≤ ¼ here) and a few
// dozen inputs, x·W is a multiple of 1/16 below 16, exact in bf16.
inline std::vector<double> coarse(ml::Rng& rng, int64_t n) {
  std::vector<double> v(n);
  for (auto& x : v) x = double(int64_t(rng.next_u64() % 5) - 2) / 2.0;
  return v;
}

// A GPU run's outputs: y, dx and every gradient (fp32), raw bytes too for determinism checks.
struct GpuRun {
  std::vector<double> y, dx;
  std::vector<std::vector<double>> grads;
  std::vector<unsigned char> bytes;
  std::vector<ml::cuda::DeviceExpertStats> stats;
};

template <typename T>
GpuRun run_gpu(ml::cuda::Layer<T>& layer, ml::cuda::DeviceParams<T>& params, const std::vector<double>& x,
               const std::vector<double>& dy, int64_t batch, int64_t len) {
  Dev<T> gx(x), gdy(dy), gy(int64_t(x.size())), gdx(int64_t(x.size()));
  gy.poison();
  gdx.poison();
  check(cudaMemset(params.grads(), 0, size_t(params.total()) * sizeof(float)), "zero gradients");
  layer.forward(gx.get(), gy.get(), batch, len);
  layer.backward(gdy.get(), gdx.get());
  sync("layer");
  GpuRun run;
  run.y = gy.download();
  run.dx = gdx.download();
  run.bytes = gy.bytes();
  const auto dxb = gdx.bytes();
  run.bytes.insert(run.bytes.end(), dxb.begin(), dxb.end());
  for (size_t i = 0; i < params.size(); ++i) {
    std::vector<float> g(size_t(params.info(i).numel));
    check(cudaMemcpy(g.data(), params.grad(i), g.size() * sizeof(float), cudaMemcpyDeviceToHost), "gradient");
    run.grads.emplace_back(g.begin(), g.end());
    const auto* raw = reinterpret_cast<const unsigned char*>(g.data());
    run.bytes.insert(run.bytes.end(), raw, raw + g.size() * sizeof(float));
  }
  layer.expert_stats(run.stats);
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
std::string compare(ml::Layer<double>& cpu, ml::ParamList<double>& host, const GpuRun& got,
                    const std::vector<double>& x, const std::vector<double>& dy, int64_t batch, int64_t len) {
  std::vector<double> y(x.size()), dx(x.size());
  for (size_t i = 0; i < host.size(); ++i) host[i].grad.fill(0.0);
  cpu.forward(x.data(), y.data(), batch, len);
  cpu.backward(dy.data(), dx.data());
  Errors errors(layer_bound<T>());
  errors.add("y", got.y, y);
  errors.add("dx", got.dx, dx);
  for (size_t i = 0; i < host.size(); ++i) {
    const auto& g = host[i].grad;
    errors.add(host[i].name, got.grads.at(i), std::vector<double>(g.data(), g.data() + g.numel()));
  }
  std::vector<const ml::cpu::Routing*> routings;
  cpu.routings(routings);
  EXPECT(routings.size() == got.stats.size(), routings.size(), " routings vs ", got.stats.size());
  std::string routed;
  for (size_t l = 0; l < routings.size(); ++l) {
    const ml::cpu::Routing& want = *routings[l];
    const ml::cuda::DeviceExpertStats& st = got.stats[l];
    EXPECT(st.experts == want.experts, "experts ", st.experts, " vs ", want.experts);
    for (int64_t e = 0; e < want.experts; ++e) {
      const int64_t count = download_one(st.counts, size_t(e));
      EXPECT(count == want.counts[e], "moe ", l, " expert ", e, ": count ", count, " vs ", want.counts[e]);
    }
    const int64_t dropped = download_one(st.dropped);
    EXPECT(dropped == want.dropped, "moe ", l, ": dropped ", dropped, " vs ", want.dropped);
    EXPECT(st.aux_loss != nullptr, "moe ", l, ": no aux loss on the device");
    errors.add("aux", {download_one(st.aux_loss)}, {want.aux_loss});
    routed += mltest::str(" dropped ", dropped, "/", want.top_k * want.tokens);
  }
  return errors.report() + routed;
}

}  // namespace gputest
