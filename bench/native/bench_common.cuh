// What the CUDA benchmarks share: random device inputs from a counter hash (no host copies),
// medians, and the date for the JSON lines.
#pragma once
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

#include "core/cuda_check.h"
#include "core/cuda_math.cuh"
#include "core/gpu.h"

namespace bench {

__device__ inline float hash_uniform(uint64_t i, uint64_t seed) {  // splitmix64 → [0, 1)
  uint64_t z = i * 0x9e3779b97f4a7c15ULL + seed;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return float((z ^ (z >> 31)) >> 40) * 0x1.0p-24f;
}

template <typename T>
__global__ void fill_uniform(T* p, int64_t n, float lo, float hi, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = ml::cuda::from_float<T>(lo + (hi - lo) * hash_uniform(uint64_t(i), seed));
}

template <typename T>
void fill(T* p, int64_t n, float lo, float hi, uint64_t seed) {
  fill_uniform<T><<<1024, 256>>>(p, n, lo, hi, seed);
  ML_CUDA_CHECK("benchmark inputs", cudaGetLastError());
}

inline double median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (double(v[n / 2 - 1]) + double(v[n / 2]));
}

inline std::string today() {
  const std::time_t now = std::time(nullptr);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", std::gmtime(&now));
  return buf;
}

// A benchmark's main: parse(argc, argv) gives the arguments (with a `dtype` of "bf16" or
// "fp32"); run(args, gpu, T{}) measures in that type. Without a GPU it says so and exits 0;
// errors print with the program's name and exit 1.
template <typename Parse, typename Run>
int main(const char* program, const char* what, int argc, char** argv, Parse parse, Run run) {
  try {
    const auto args = parse(argc, argv);
    const ml::GpuInfo gpu = ml::query_gpu();
    if (gpu.device_count == 0) {
      std::fprintf(stderr, "%s; skipping the %s benchmark\n", gpu.status.c_str(), what);
      return 0;
    }
    std::fprintf(stderr, "# %s\n", gpu.status.c_str());
    return args.dtype == "bf16" ? run(args, gpu, __nv_bfloat16{}) : run(args, gpu, float{});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 1;
  }
}

}  // namespace bench
