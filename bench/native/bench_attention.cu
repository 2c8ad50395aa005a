// mambalab_bench_attention: times the CUDA causal attention (ops/attention), forward and
// forward + backward, with CUDA events: warm-up, then the median of many runs, rotating among
// input sets. One JSON object per line on stdout (`mambalab bench attention` runs it); FLOPs
// count the causal half of the two products forward (2·b·h·L²·d) and 2.5 times that backward.
//
//   mambalab_bench_attention [--batch 8] [--heads 8] [--kv-heads 8] [--head-dim 64] [--len 1024]
//                            [--dtype bf16|fp32] [--warmup 5] [--iters 30] [--sets 2]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_common.cuh"
#include "core/device_allocator.h"
#include "core/gpu.h"
#include "ops/attention/attention.h"

namespace {

using ml::cuda::bf16;
using ml::cuda::DeviceBuffer;

struct Args {
  int64_t batch = 8, heads = 8, kv_heads = 8, head_dim = 64, len = 1024;
  std::string dtype = "bf16";
  int warmup = 5, iters = 30, sets = 2;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (i + 1 >= argc) throw std::runtime_error("missing value after " + key);
    const std::string v = argv[++i];
    if (key == "--batch") a.batch = std::stoll(v);
    else if (key == "--heads") a.heads = std::stoll(v);
    else if (key == "--kv-heads") a.kv_heads = std::stoll(v);
    else if (key == "--head-dim") a.head_dim = std::stoll(v);
    else if (key == "--len") a.len = std::stoll(v);
    else if (key == "--dtype") a.dtype = v;
    else if (key == "--warmup") a.warmup = std::stoi(v);
    else if (key == "--iters") a.iters = std::stoi(v);
    else if (key == "--sets") a.sets = std::max(1, std::stoi(v));
    else throw std::runtime_error("unknown option " + key);
  }
  if (a.dtype != "bf16" && a.dtype != "fp32") throw std::runtime_error("--dtype: expected bf16 or fp32, got " + a.dtype);
  return a;
}

template <typename T>
struct InputSet {
  DeviceBuffer<T> q, k, v, dout;
  InputSet(const Args& a, uint64_t seed)
      : q(a.batch * a.len * a.heads * a.head_dim, "bench"), k(a.batch * a.len * a.kv_heads * a.head_dim, "bench"),
        v(k.size(), "bench"), dout(q.size(), "bench") {
    bench::fill(q.get(), q.size(), -1.f, 1.f, seed + 1);
    bench::fill(k.get(), k.size(), -1.f, 1.f, seed + 2);
    bench::fill(v.get(), v.size(), -1.f, 1.f, seed + 3);
    bench::fill(dout.get(), dout.size(), -1.f, 1.f, seed + 4);
  }
};

template <typename T>
int run(const Args& a, const ml::GpuInfo& gpu) {
  const ml::cpu::AttentionDims d{a.batch, a.len, a.heads, a.kv_heads, a.head_dim};
  std::vector<std::unique_ptr<InputSet<T>>> sets;
  for (int s = 0; s < a.sets; ++s) sets.push_back(std::make_unique<InputSet<T>>(a, 1000 * uint64_t(s + 1)));
  DeviceBuffer<T> out(sets[0]->q.size(), "bench"), dq(out.size(), "bench"), dk(sets[0]->k.size(), "bench"),
      dv(dk.size(), "bench");
  DeviceBuffer<float> lse(a.batch * a.heads * a.len, "bench");
  ML_CUDA_CHECK("bench_attention", cudaDeviceSynchronize());
  cudaEvent_t e0, e1, e2;
  for (auto* e : {&e0, &e1, &e2}) ML_CUDA_CHECK("bench_attention", cudaEventCreate(e));
  std::vector<float> fwd, fwd_bwd;
  for (int i = 0; i < a.warmup + a.iters; ++i) {
    const InputSet<T>& x = *sets[size_t(i) % sets.size()];
    ML_CUDA_CHECK("bench_attention", cudaEventRecord(e0));
    ml::cuda::attention_forward<T>(d, x.q.get(), x.k.get(), x.v.get(), out.get(), lse.get(), nullptr);
    ML_CUDA_CHECK("bench_attention", cudaEventRecord(e1));
    ml::cuda::attention_backward<T>(d, x.q.get(), x.k.get(), x.v.get(), out.get(), lse.get(), x.dout.get(), dq.get(),
                                    dk.get(), dv.get(), nullptr);
    ML_CUDA_CHECK("bench_attention", cudaEventRecord(e2));
    ML_CUDA_CHECK("bench_attention", cudaEventSynchronize(e2));
    float f = 0, fb = 0;
    ML_CUDA_CHECK("bench_attention", cudaEventElapsedTime(&f, e0, e1));
    ML_CUDA_CHECK("bench_attention", cudaEventElapsedTime(&fb, e0, e2));
    if (i < a.warmup) continue;
    fwd.push_back(f);
    fwd_bwd.push_back(fb);
  }
  const double flops = 2.0 * double(a.batch * a.heads) * double(a.len) * double(a.len) * double(a.head_dim);
  const double f_ms = bench::median(fwd), fb_ms = bench::median(fwd_bwd);
  std::printf(
      "{\"name\":\"attention\",\"impl\":\"mambalab_cuda\",\"gpu\":\"%s\",\"date\":\"%s\",\"dtype\":\"%s\","
      "\"shape\":{\"batch\":%lld,\"heads\":%lld,\"kv_heads\":%lld,\"head_dim\":%lld,\"len\":%lld},\"causal\":true,"
      "\"fwd_ms\":%.4f,\"fwd_bwd_ms\":%.4f,\"fwd_tflops\":%.2f,\"fwd_bwd_tflops\":%.2f,\"warmup\":%d,\"iters\":%d,"
      "\"timing\":\"cuda events, median\"}\n",
      gpu.name.c_str(), bench::today().c_str(), a.dtype.c_str(), (long long)a.batch, (long long)a.heads,
      (long long)a.kv_heads, (long long)a.head_dim, (long long)a.len, f_ms, fb_ms, flops / f_ms * 1e-9,
      3.5 * flops / fb_ms * 1e-9, a.warmup, a.iters);
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return bench::main("mambalab_bench_attention", "attention", argc, argv, parse,
                     [](const Args& a, const ml::GpuInfo& gpu, auto type) { return run<decltype(type)>(a, gpu); });
}
