#include "ops/selective_scan/selective_scan.h"

#include "../harness.h"

using namespace mltest;

namespace {

struct ScanCase {
  ml::ScanDims d;
  std::vector<double> u, delta, A, B, C, D, z, bias;

  ScanCase(ml::ScanDims dims, ml::Rng& rng) : d(dims) {
    const int64_t act = d.batch * d.len * d.dim, bc = d.batch * d.len * d.dstate;
    u = random_vector(rng, act);
    delta = random_vector(rng, act, -3, 1);
    A = random_vector(rng, d.dim * d.dstate, -2, -0.1);
    B = random_vector(rng, bc);
    C = random_vector(rng, bc);
    D = random_vector(rng, d.dim);
    z = random_vector(rng, act, -2, 2);
    bias = random_vector(rng, d.dim, -4, -1);
  }
  ml::ScanInputs<double> inputs() const {
    return {u.data(), delta.data(), B.data(), C.data(), z.data(), A.data(), D.data(), bias.data()};
  }
};

std::string check_scan(ml::ScanDims dims, uint64_t seed) {
  ml::Rng rng(seed);
  ScanCase s(dims, rng);
  const int64_t act = dims.batch * dims.len * dims.dim, bc = dims.batch * dims.len * dims.dstate;
  auto dout = random_vector(rng, act);
  std::vector<double> out(act), du(act), ddelta(act), dz(act), dB(bc), dC(bc);
  std::vector<double> dA(dims.dim * dims.dstate, 0.0), dD(dims.dim, 0.0), dbias(dims.dim, 0.0);
  auto loss = [&] {
    ml::cpu::selective_scan_forward<double>(s.d, s.inputs(), out.data());
    return dot(out, dout);
  };
  ml::cpu::selective_scan_backward<double>(
      s.d, s.inputs(), dout.data(),
      {du.data(), ddelta.data(), dB.data(), dC.data(), dz.data(), dA.data(), dD.data(), dbias.data()});
  return check_gradients(loss,
                         {{"u", &s.u, &du},
                          {"delta", &s.delta, &ddelta},
                          {"A", &s.A, &dA},
                          {"B", &s.B, &dB},
                          {"C", &s.C, &dC},
                          {"D", &s.D, &dD},
                          {"z", &s.z, &dz},
                          {"delta_bias", &s.bias, &dbias}},
                         rng);
}

}  // namespace

NATIVE_TEST(selective_scan_backward_matches_finite_differences) { return check_scan({2, 13, 20, 16}, 41); }
NATIVE_TEST(selective_scan_odd_sizes_backward_matches_finite_differences) {
  return check_scan({1, 1, 3, 16}, 42) + "; " + check_scan({3, 5, 1, 4}, 43) + "; " + check_scan({1, 37, 33, 2}, 44);
}

// The recurrence written out for one channel and one state: h_t = a_t h_{t−1} + dt_t b_t u_t.
NATIVE_TEST(selective_scan_matches_the_recurrence_written_out) {
  const ml::ScanDims d{1, 3, 1, 1};
  const std::vector<double> u = {1.0, -2.0, 0.5}, delta = {0.3, -0.2, 25.0}, A = {-1.5}, B = {0.7, 1.1, -0.4},
                            C = {2.0, -1.0, 0.3}, D = {0.25}, z = {0.1, -0.6, 1.2}, bias = {-0.5};
  std::vector<double> out(3);
  ml::cpu::selective_scan_forward<double>(d, {u.data(), delta.data(), B.data(), C.data(), z.data(), A.data(), D.data(),
                                              bias.data()},
                                          out.data());
  double h = 0;
  for (int t = 0; t < 3; ++t) {
    const double x = delta[t] + bias[0];
    const double dt = x > 20 ? x : std::log(1 + std::exp(x));
    h = std::exp(dt * A[0]) * h + dt * B[t] * u[t];
    const double y = (C[t] * h + D[0] * u[t]) * z[t] / (1 + std::exp(-z[t]));
    EXPECT(std::abs(out[t] - y) < 1e-14, "t=", t, " got ", out[t], " want ", y);
  }
  return "3 steps match, softplus threshold included";
}
