// Compiled with -ffp-contract=off (CMakeLists.txt): param_init_value must round each step as
// the GPU does (see core/portable_math.h).
#include "param_init.h"

namespace ml::cpu {

template <typename T>
void param_init(const ParamInit& init, uint64_t seed, const std::string& name, T* out, int64_t n, int64_t first) {
  const uint64_t start = rng_start(seed, param_stream(name));
  for (int64_t i = 0; i < n; ++i) out[i] = T(param_init_value(init, start, first + i));
}

template void param_init<float>(const ParamInit&, uint64_t, const std::string&, float*, int64_t, int64_t);
template void param_init<double>(const ParamInit&, uint64_t, const std::string&, double*, int64_t, int64_t);

}  // namespace ml::cpu
