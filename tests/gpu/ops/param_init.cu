// Every initialisation recipe drawn on the device is the CPU's, bit for bit (the GPU model
// starts from the CPU model's weights without building one), and so is a part drawn alone.
#include <cstring>

#include "gpu/gpu_test.h"
#include "ops/param_init/param_init.h"

using namespace gputest;

namespace {

std::string check_recipe(const char* what, const ml::ParamInit& init, int64_t n) {
  std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
  ml::cpu::param_init<float>(init, 17, std::string("backbone.") + what, want.data(), n);
  float* g = nullptr;
  check(cudaMalloc(&g, size_t(n) * sizeof(float)), "malloc");
  ml::cuda::param_init(init, 17, std::string("backbone.") + what, g, n, nullptr);
  sync(what);
  check(cudaMemcpy(got.data(), g, size_t(n) * sizeof(float), cudaMemcpyDeviceToHost), "download");
  for (int64_t i = 0; i < n; ++i)
    EXPECT(std::memcmp(&got[i], &want[i], sizeof(float)) == 0, what, "[", i, "]: ", got[i], " vs ", want[i]);
  // The second half drawn alone (an expert-parallel rank's block) is the whole tensor's.
  const int64_t first = n / 2;
  ml::cuda::param_init(init, 17, std::string("backbone.") + what, g, n - first, nullptr, first);
  sync(what);
  check(cudaMemcpy(got.data(), g, size_t(n - first) * sizeof(float), cudaMemcpyDeviceToHost), "download");
  for (int64_t i = 0; i < n - first; ++i)
    EXPECT(std::memcmp(&got[i], &want[first + i], sizeof(float)) == 0, what, "[", first + i, "] drawn from ", first,
           " on: ", got[i], " vs ", want[first + i]);
  cudaFree(g);
  return mltest::str(what, " ", n);
}

}  // namespace

NATIVE_TEST(cuda_param_init_is_the_cpus_bit_for_bit) {
  return check_recipe("normal", ml::ParamInit::normal(0.02), 3'000'017) + ", " +
         check_recipe("uniform", ml::ParamInit::uniform(0.0441941738), 3'000'017) + ", " +
         check_recipe("dt_bias", ml::ParamInit::dt_bias(0.001, 0.1, 1e-4), 1'000'003) + ", " +
         check_recipe("s4d", ml::ParamInit::s4d_real(16), 65536) + ", " +
         check_recipe("constant", ml::ParamInit::constant(1.0), 1000) + " values identical";
}
