// param_init: a parameter's initial values. Element i is a function of (seed, the parameter's
// name, i) alone, so the CPU and the GPU fill the same tensor with the same bits, in any
// order, and adding a parameter does not shift the others' values.
//   uniform(b)                U(−b, b)                                  (nn.Linear, nn.Conv1d)
//   normal(σ)                 σ · N(0, 1), Box–Muller on draws 2i, 2i+1  (embeddings)
//   constant(c)               c                                         (norm weights, D, zero biases)
//   dt_bias(lo, hi, floor)    softplus⁻¹(dt), dt = max(floor, e^U(log lo, log hi))   (Mamba's dt_proj.bias)
//   s4d_real(N)               log(1 + i mod N): A = −(1, …, N) per channel           (Mamba's A_log)
// Values are made in double (with ../../core/portable_math.h) and rounded once to the
// parameter's type.
#pragma once
#include <cstdint>
#include <string>

#include "../../core/host_device.h"
#include "../../core/rng.h"

namespace ml {

struct ParamInit {
  enum class Kind { Uniform, Normal, Constant, DtBias, S4DReal };
  Kind kind = Kind::Constant;
  double a = 0, b = 0, c = 0;

  static ParamInit uniform(double bound) { return {Kind::Uniform, bound}; }
  static ParamInit normal(double std) { return {Kind::Normal, std}; }
  static ParamInit constant(double value) { return {Kind::Constant, value}; }
  static ParamInit dt_bias(double dt_min, double dt_max, double floor) { return {Kind::DtBias, dt_min, dt_max, floor}; }
  static ParamInit s4d_real(int64_t d_state) { return {Kind::S4DReal, double(d_state)}; }
};

// The random stream of a parameter: FNV-1a of its name.
inline uint64_t param_stream(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// Element i of a parameter whose stream starts at `start` (rng_start(seed, param_stream(name))).
ML_HD inline double param_init_value(const ParamInit& init, uint64_t start, int64_t i) {
  switch (init.kind) {
    case ParamInit::Kind::Uniform:
      return ::fma(2.0 * init.a, rng_unit(rng_draw(start, uint64_t(i))), -init.a);
    case ParamInit::Kind::Normal:
      return init.a * rng_normal(rng_draw(start, 2 * uint64_t(i)), rng_draw(start, 2 * uint64_t(i) + 1));
    case ParamInit::Kind::Constant:
      return init.a;
    case ParamInit::Kind::DtBias: {
      const double lo = portable::log(init.a), hi = portable::log(init.b);
      double dt = portable::exp(::fma(rng_unit(rng_draw(start, uint64_t(i))), hi - lo, lo));
      dt = dt > init.c ? dt : init.c;
      return dt + portable::log(-portable::expm1(-dt));
    }
    case ParamInit::Kind::S4DReal:
      return portable::log(double(1 + i % int64_t(init.a)));
  }
  return 0;
}

namespace cpu {

// out[0, n) = the parameter's initial values [first, first + n) (a part of it: an expert-parallel
// rank's block of the experts).
template <typename T>
void param_init(const ParamInit& init, uint64_t seed, const std::string& name, T* out, int64_t n, int64_t first = 0);

}  // namespace cpu
}  // namespace ml

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// The same on a device fp32 array (master weights), enqueued on `stream`.
void param_init(const ParamInit& init, uint64_t seed, const std::string& name, float* out, int64_t n,
                cudaStream_t stream, int64_t first = 0);

}  // namespace ml::cuda
