// Helpers for the GPU tests: device copies of host data in float or bf16, poisoned outputs,
// and the relative error ‖got − want‖ / ‖want‖ against the CPU reference run in fp64 on the
// same (rounded) inputs. Bounds: fp32 1e-5, bf16 1e-2, on outputs and on gradients.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "core/chained_launch.cuh"
#include "core/rng.h"
#include "native/harness.h"

namespace gputest {

using bf16 = __nv_bfloat16;

template <typename T>
constexpr double bound() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-2;
}

template <typename T>
constexpr const char* type_name() {
  return std::is_same_v<T, float> ? "fp32" : "bf16";
}

inline void check(cudaError_t err, const std::string& what) {
  if (err != cudaSuccess) throw mltest::Failure(what + ": " + cudaGetErrorName(err) + " " + cudaGetErrorString(err));
}

// Waits for the work on the default stream and surfaces any error from inside a kernel.
inline void sync(const std::string& what) {
  check(cudaGetLastError(), what + " (launch)");
  check(cudaDeviceSynchronize(), what + " (run)");
}

template <typename T>
T to_storage(double v) {
  if constexpr (std::is_same_v<T, float>) {
    return float(v);
  } else if constexpr (std::is_same_v<T, bf16>) {
    return __float2bfloat16_rn(float(v));
  } else {
    return T(v);
  }
}

template <typename T>
double to_double(T v) {
  if constexpr (std::is_same_v<T, bf16>) {
    return double(__bfloat162float(v));
  } else {
    return double(v);
  }
}

// The values a T array would hold: what the CPU reference must see.
template <typename T>
std::vector<double> rounded(std::vector<double> v) {
  for (auto& x : v) x = to_double(to_storage<T>(x));
  return v;
}

// A device array of n elements of T.
template <typename T>
class Dev {
 public:
  explicit Dev(int64_t n) : n_(n) { check(cudaMalloc(&p_, size_t(std::max<int64_t>(n, 1)) * sizeof(T)), "cudaMalloc"); }
  explicit Dev(const std::vector<double>& host) : Dev(int64_t(host.size())) { upload(host); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  ~Dev() { cudaFree(p_); }

  T* get() const { return p_; }
  int64_t size() const { return n_; }

  void upload(const std::vector<double>& host) {
    std::vector<T> tmp(host.size());
    for (size_t i = 0; i < host.size(); ++i) tmp[i] = to_storage<T>(host[i]);
    check(cudaMemcpy(p_, tmp.data(), tmp.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  std::vector<double> download() const {
    std::vector<T> tmp(static_cast<size_t>(n_));
    check(cudaMemcpy(tmp.data(), p_, tmp.size() * sizeof(T), cudaMemcpyDeviceToHost), "download");
    std::vector<double> out(tmp.size());
    for (size_t i = 0; i < tmp.size(); ++i) out[i] = to_double(tmp[i]);
    return out;
  }
  std::vector<unsigned char> bytes() const {
    std::vector<unsigned char> out(size_t(n_) * sizeof(T));
    check(cudaMemcpy(out.data(), p_, out.size(), cudaMemcpyDeviceToHost), "download");
    return out;
  }
  // All bits set: NaN in fp32 and bf16, so an element the kernel never wrote fails the check.
  void poison() { check(cudaMemset(p_, 0xff, size_t(n_) * sizeof(T)), "poison"); }

 private:
  T* p_ = nullptr;
  int64_t n_;
};

// A device array's elements as they are (ids, counts, flags).
template <typename V>
std::vector<V> download_raw(const Dev<V>& d) {
  std::vector<V> out(size_t(d.size()));
  check(cudaMemcpy(out.data(), d.get(), out.size() * sizeof(V), cudaMemcpyDeviceToHost), "download");
  return out;
}

// ‖got − want‖₂ / ‖want‖₂; infinite when anything is NaN or the sizes differ.
inline double rel_error(const std::vector<double>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// Collects the worst relative error of several outputs; throws at the first above `bound`.
class Errors {
 public:
  explicit Errors(double bound) : worst_("relative error", bound) {}
  void add(const std::string& name, const std::vector<double>& got, const std::vector<double>& want) {
    const double e = rel_error(got, want);
    worst_.add(name, e);
    detail_ += (detail_.empty() ? "" : ", ") + name + " " + mltest::str(e);
  }
  std::string report() const { return worst_.report() + " [" + detail_ + "]"; }

 private:
  mltest::Worst worst_;
  std::string detail_;
};

inline std::vector<double> uniform(ml::Rng& rng, int64_t n, double lo = -1.0, double hi = 1.0) {
  return mltest::random_vector(rng, n, lo, hi);
}

// An activation y = f(x), dx = dy · f'(x) (silu, gelu): the CUDA forward and backward of T on
// n random x in [−6, 6] against the CPU's in fp64, outputs poisoned first.
template <typename T>
std::string check_activation(const char* name, int64_t n, uint64_t seed,
                             void (*cpu_forward)(const double*, double*, int64_t),
                             void (*cpu_backward)(const double*, const double*, double*, int64_t),
                             void (*cuda_forward)(const T*, T*, int64_t, cudaStream_t),
                             void (*cuda_backward)(const T*, const T*, T*, int64_t, cudaStream_t)) {
  ml::Rng rng(seed);
  const auto x = rounded<T>(uniform(rng, n, -6, 6)), dy = rounded<T>(uniform(rng, n));
  std::vector<double> y(n), dx(n);
  cpu_forward(x.data(), y.data(), n);
  cpu_backward(x.data(), dy.data(), dx.data(), n);
  Dev<T> gx(x), gdy(dy), gy(n), gdx(n);
  gy.poison();
  gdx.poison();
  cuda_forward(gx.get(), gy.get(), n, nullptr);
  cuda_backward(gx.get(), gdy.get(), gdx.get(), n, nullptr);
  sync(name);
  Errors errors(bound<T>());
  errors.add("y", gy.download(), y);
  errors.add("dx", gdx.download(), dx);
  return errors.report();
}

// Copies src to dst after a delay that grows with the block: the kernel just before a chained
// kernel, still writing that kernel's input when it could begin (tests of chain_wait's place).
template <typename T>
__global__ void copy_late(const T* __restrict__ src, T* __restrict__ dst, int64_t n) {
  ml::cuda::chain_wait();
  const long long until = clock64() + 20000LL * (blockIdx.x % 4);
  while (clock64() < until) {
  }
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}

}  // namespace gputest
