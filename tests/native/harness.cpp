#include "harness.h"

#include <algorithm>
#include <cstring>
#include <iostream>

namespace mltest {

std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

double gradient_error(const std::function<double()>& loss, double* x, int64_t n, const double* analytic,
                      ml::Rng& rng, int64_t max_samples, double h) {
  double scale = 0;
  for (int64_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(analytic[i]));
  std::vector<int64_t> picks;
  if (n <= max_samples) {
    for (int64_t i = 0; i < n; ++i) picks.push_back(i);
  } else {
    for (int64_t k = 0; k < max_samples; ++k) picks.push_back(int64_t(rng.next_u64() % uint64_t(n)));
  }
  double worst = 0;
  for (int64_t i : picks) {
    const double saved = x[i];
    auto at = [&](double offset) {
      x[i] = saved + offset;
      return loss();
    };
    // Fourth-order central difference: truncation error O(h⁴), so h can stay large enough
    // that rounding in the loss does not swamp small gradients.
    const double numeric = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h);
    x[i] = saved;
    const double denom = std::max({std::abs(numeric), 1e-2 * scale, 1e-300});
    worst = std::max(worst, std::abs(analytic[i] - numeric) / denom);
  }
  return worst;
}

std::string check_gradients(const std::function<double()>& loss, const std::vector<Input>& inputs, ml::Rng& rng,
                            double bound, int64_t max_samples) {
  Worst worst("relative gradient error", bound);
  for (const auto& in : inputs)
    worst.add(in.name, gradient_error(loss, in.value->data(), int64_t(in.value->size()), in.grad->data(), rng,
                                      max_samples));
  return worst.report();
}

int run_all(int argc, char** argv) {
  auto& cases = registry();
  if (argc > 1 && std::strcmp(argv[1], "--list") == 0) {
    for (const auto& c : cases) std::cout << c.name << "\n";
    return 0;
  }
  int passed = 0, failed = 0;
  for (const auto& c : cases) {
    if (argc > 1 && std::find_if(argv + 1, argv + argc, [&](const char* a) { return c.name == a; }) == argv + argc)
      continue;
    try {
      const std::string detail = c.run();
      std::cout << "ok " << c.name << ": " << detail << std::endl;
      ++passed;
    } catch (const std::exception& e) {
      std::cout << "not ok " << c.name << ": " << e.what() << std::endl;
      ++failed;
    }
  }
  std::cout << passed << " passed, " << failed << " failed" << std::endl;
  return failed ? 1 : 0;
}

}  // namespace mltest
