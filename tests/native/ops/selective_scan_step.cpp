#include "ops/selective_scan_step/selective_scan_step.h"

#include <cmath>

#include "../harness.h"
#include "ops/linear/linear.h"

using namespace mltest;

namespace {

struct Sequence {
  int64_t batch, len, dim, N;
  std::vector<double> u, delta, z, B, C, A, D, bias;

  Sequence(int64_t b, int64_t l, int64_t d, int64_t n, ml::Rng& rng)
      : batch(b), len(l), dim(d), N(n), u(random_vector(rng, b * l * d)), delta(random_vector(rng, b * l * d)),
        z(random_vector(rng, b * l * d)), B(random_vector(rng, b * l * n)), C(random_vector(rng, b * l * n)),
        A(random_vector(rng, d * n, -2, -0.1)), D(random_vector(rng, d)), bias(random_vector(rng, d)) {}

  ml::ScanInputs<double> inputs() const {
    return {u.data(), delta.data(), B.data(), C.data(), z.data(), A.data(), D.data(), bias.data()};
  }
  // Step t's inputs for every sequence, (batch, ·) as the step takes them.
  std::vector<double> at(const std::vector<double>& v, int64_t t, int64_t width) const {
    std::vector<double> out(batch * width);
    for (int64_t r = 0; r < batch; ++r)
      for (int64_t c = 0; c < width; ++c) out[r * width + c] = v[(r * len + t) * width + c];
    return out;
  }
};

}  // namespace

// The scan's final state after the first p steps, then steps: every output equals the whole
// scan's, and the state after all steps equals the whole scan's final state.
NATIVE_TEST(selective_scan_step_continues_the_scan_from_its_final_state) {
  ml::Rng rng(51);
  const Sequence s(2, 11, 5, 4, rng);
  const int64_t p = 4;
  std::vector<double> want(s.u.size()), final_want(s.batch * s.dim * s.N);
  ml::cpu::selective_scan_forward<double>({s.batch, s.len, s.dim, s.N}, s.inputs(), want.data(), final_want.data());

  Sequence head = s;  // the first p steps alone, laid out (batch, p, ·)
  head.len = p;
  for (auto* v : {&head.u, &head.delta, &head.z}) v->assign(s.batch * p * s.dim, 0.0);
  for (auto* v : {&head.B, &head.C}) v->assign(s.batch * p * s.N, 0.0);
  for (int64_t r = 0; r < s.batch; ++r)
    for (int64_t t = 0; t < p; ++t) {
      for (int64_t c = 0; c < s.dim; ++c)
        for (auto [dst, src] : {std::pair{&head.u, &s.u}, {&head.delta, &s.delta}, {&head.z, &s.z}})
          (*dst)[(r * p + t) * s.dim + c] = (*src)[(r * s.len + t) * s.dim + c];
      for (int64_t n = 0; n < s.N; ++n)
        for (auto [dst, src] : {std::pair{&head.B, &s.B}, {&head.C, &s.C}})
          (*dst)[(r * p + t) * s.N + n] = (*src)[(r * s.len + t) * s.N + n];
    }
  std::vector<double> head_out(head.u.size()), h(s.batch * s.dim * s.N);
  ml::cpu::selective_scan_forward<double>({s.batch, p, s.dim, s.N}, head.inputs(), head_out.data(), h.data());

  Worst err("relative error", 1e-13);
  for (int64_t t = p; t < s.len; ++t) {
    const auto u = s.at(s.u, t, s.dim), delta = s.at(s.delta, t, s.dim), z = s.at(s.z, t, s.dim);
    const auto B = s.at(s.B, t, s.N), C = s.at(s.C, t, s.N);
    std::vector<double> out(s.batch * s.dim);
    const ml::ScanInputs<double> in{u.data(), delta.data(), B.data(), C.data(), z.data(),
                                    s.A.data(), s.D.data(), s.bias.data()};
    ml::cpu::selective_scan_step<double>({s.batch, s.dim, s.N}, in, h.data(), out.data());
    const auto expected = s.at(want, t, s.dim);
    for (size_t i = 0; i < out.size(); ++i)
      err.add(str("step ", t, " element ", i), std::abs(out[i] - expected[i]) / std::max(1.0, std::abs(expected[i])));
  }
  for (size_t i = 0; i < h.size(); ++i)
    err.add(str("final state ", i), std::abs(h[i] - final_want[i]) / std::max(1.0, std::abs(final_want[i])));
  return err.report();
}

// Projected: the step on x_proj's rows equals dt_proj's linear, then the step on delta, B and C
// taken apart.
NATIVE_TEST(selective_scan_step_projected_equals_dt_proj_then_the_step) {
  ml::Rng rng(52);
  const int64_t batch = 3, dim = 7, N = 4, R = 5, width = R + 2 * N;
  const auto xproj = random_vector(rng, batch * width), dt_w = random_vector(rng, dim * R);
  const auto u = random_vector(rng, batch * dim), z = random_vector(rng, batch * dim);
  const auto A = random_vector(rng, dim * N, -2, -0.1), D = random_vector(rng, dim), bias = random_vector(rng, dim);
  std::vector<double> dt_low(batch * R), B(batch * N), C(batch * N), delta(batch * dim);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t k = 0; k < width; ++k) {
      const double v = xproj[b * width + k];
      if (k < R) dt_low[b * R + k] = v;
      else if (k < R + N) B[b * N + k - R] = v;
      else C[b * N + k - R - N] = v;
    }
  ml::cpu::linear_forward<double>(dt_low.data(), dt_w.data(), nullptr, delta.data(), batch, R, dim);
  const auto h0 = random_vector(rng, batch * dim * N);
  auto h_want = h0, h = h0;
  std::vector<double> want(batch * dim), out(batch * dim);
  ml::cpu::selective_scan_step<double>({batch, dim, N}, {u.data(), delta.data(), B.data(), C.data(), z.data(), A.data(),
                                                         D.data(), bias.data()},
                                       h_want.data(), want.data());
  ml::cpu::selective_scan_step<double>({batch, dim, N}, {u.data(), nullptr, nullptr, nullptr, z.data(), A.data(),
                                                         D.data(), bias.data()},
                                       {xproj.data(), dt_w.data(), R}, h.data(), out.data());
  Worst err("relative error", 1e-13);
  for (size_t i = 0; i < out.size(); ++i) err.add(str("out ", i), std::abs(out[i] - want[i]) / std::max(1.0, std::abs(want[i])));
  for (size_t i = 0; i < h.size(); ++i) err.add(str("h ", i), std::abs(h[i] - h_want[i]) / std::max(1.0, std::abs(h_want[i])));
  return err.report();
}
