// A small test harness for the native engine: named cases, one line per result
// ("ok <name>: <detail>" / "not ok <name>: <why>"), run all or by name.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/rng.h"

namespace mltest {

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Case {
  std::string name;
  std::function<std::string()> run;  // returns a detail line (e.g. the worst error seen)
};

std::vector<Case>& registry();

struct Register {
  Register(const char* name, std::function<std::string()> fn) { registry().push_back({name, std::move(fn)}); }
};

template <typename... Parts>
std::string str(const Parts&... parts) {
  std::ostringstream out;
  out.precision(3);
  (out << ... << parts);
  return out.str();
}

// Tracks the worst value of a metric against a bound; fails when the bound is crossed.
class Worst {
 public:
  Worst(std::string what, double bound) : what_(std::move(what)), bound_(bound) {}
  void add(const std::string& where, double value) {
    if (!(value <= bound_)) throw Failure(str(what_, " ", value, " > ", bound_, " at ", where));
    if (value > worst_) worst_ = value;
  }
  std::string report() const { return str("max ", what_, " ", worst_, " (bound ", bound_, ")"); }

 private:
  std::string what_;
  double bound_;
  double worst_ = 0;
};

inline std::vector<double> random_vector(ml::Rng& rng, int64_t n, double lo = -1.0, double hi = 1.0) {
  std::vector<double> v(n);
  for (auto& x : v) x = rng.uniform(lo, hi);
  return v;
}

// Central finite differences (fourth order) of loss() w.r.t. x[i] for up to max_samples indices (all when
// n ≤ max_samples), compared with analytic[i]. The error of element i is
// |analytic − numeric| / max(|numeric|, 1e-2 · max_j |analytic_j|): relative, except for
// entries a hundred times smaller than the tensor's largest gradient, which are judged
// against 1% of it (their finite difference is mostly rounding).
double gradient_error(const std::function<double()>& loss, double* x, int64_t n, const double* analytic,
                      ml::Rng& rng, int64_t max_samples = 48, double h = 1e-3);

struct Input {
  std::string name;
  std::vector<double>* value;
  const std::vector<double>* grad;
};

// Checks every input's analytic gradient against finite differences of loss(); throws on
// an error above `bound` (see gradient_error), else reports the worst error seen.
std::string check_gradients(const std::function<double()>& loss, const std::vector<Input>& inputs, ml::Rng& rng,
                            double bound = 1e-6, int64_t max_samples = 48);

// Runs the registered cases (all, or those named in argv; `--list` lists them), printing one
// line per case and a summary; returns the exit status. main() in main.cpp calls it.
int run_all(int argc, char** argv);

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace mltest

#define NATIVE_TEST(name)                                                 \
  static std::string name();                                              \
  static ::mltest::Register register_##name(#name, name);                 \
  static std::string name()

#define EXPECT(cond, ...) \
  do {                    \
    if (!(cond)) throw ::mltest::Failure(::mltest::str("expected ", #cond, ": ", __VA_ARGS__)); \
  } while (0)
