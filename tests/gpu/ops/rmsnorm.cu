#include "gpu/gpu_test.h"
#include "ops/rmsnorm/rmsnorm.h"

using namespace gputest;

namespace {

template <typename T>
std::string check_rmsnorm(int64_t rows, int64_t dim, bool with_residual, uint64_t seed) {
  ml::Rng rng(seed);
  const int64_t n = rows * dim;
  const auto x = rounded<T>(uniform(rng, n, -2, 2)), res = rounded<float>(uniform(rng, n, -2, 2));
  const auto w = rounded<float>(uniform(rng, dim, 0.5, 1.5)), dy = rounded<T>(uniform(rng, n));
  const auto dres = rounded<float>(uniform(rng, n)), dw0 = rounded<float>(uniform(rng, dim));
  std::vector<double> r(n), y(n), rstd(rows), dx(n), dw = dw0;
  const double* res_p = with_residual ? res.data() : nullptr;
  ml::cpu::rmsnorm_forward<double>(x.data(), res_p, w.data(), r.data(), y.data(), rstd.data(), rows, dim, 1e-5);
  ml::cpu::rmsnorm_backward<double>(r.data(), rstd.data(), w.data(), dy.data(), with_residual ? dres.data() : nullptr,
                                    dx.data(), dw.data(), rows, dim);

  Dev<T> gx(x), gy(n), gdy(dy);
  Dev<float> gres(res), gw(w), gr(n), grstd(rows), gdres(dres), gdx(n), gdw(dw0);
  gy.poison();
  gr.poison();
  grstd.poison();
  gdx.poison();
  ml::cuda::rmsnorm_forward<T>(gx.get(), with_residual ? gres.get() : nullptr, gw.get(), gr.get(), gy.get(),
                               grstd.get(), rows, dim, 1e-5f, nullptr);
  ml::cuda::rmsnorm_backward<T>(gr.get(), grstd.get(), gw.get(), gdy.get(), with_residual ? gdres.get() : nullptr,
                                gdx.get(), gdw.get(), rows, dim, nullptr);
  sync("rmsnorm");
  Errors errors(bound<T>());
  errors.add("residual_out", gr.download(), r);
  errors.add("y", gy.download(), y);
  errors.add("rstd", grstd.download(), rstd);
  errors.add("dx", gdx.download(), dx);
  errors.add("dweight", gdw.download(), dw);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_rmsnorm_fp32_matches_cpu) {
  return check_rmsnorm<float>(67, 100, true, 401) + "; " + check_rmsnorm<float>(1, 33, false, 402) + "; " +
         check_rmsnorm<float>(2049, 768, true, 403) + "; " + check_rmsnorm<float>(40, 2304, true, 404) + "; " +
         check_rmsnorm<float>(5003, 64, true, 405) +  // more rows than the backward grid's warps: each strides
         // a decode step's few rows: registers up to 8192 columns, the strided kernel past that
         "; " + check_rmsnorm<float>(3, 8192, true, 406) + "; " + check_rmsnorm<float>(2, 8200, true, 407) +
         // backward rows too wide for 8 warps' shared-memory sums: 7 warps, then 2
         "; " + check_rmsnorm<float>(131, 8200, true, 408) + "; " + check_rmsnorm<float>(5, 20000, false, 409);
}
NATIVE_TEST(cuda_rmsnorm_bf16_matches_cpu) {
  return check_rmsnorm<bf16>(67, 100, true, 411) + "; " + check_rmsnorm<bf16>(300, 1536, false, 412) + "; " +
         check_rmsnorm<bf16>(1, 2048, true, 413) +
         // many rows: 4 columns a thread in registers up to 4096 wide, the strided kernel past that
         "; " + check_rmsnorm<bf16>(200, 4096, true, 414) + "; " + check_rmsnorm<bf16>(70, 4100, true, 415) + "; " +
         check_rmsnorm<bf16>(90, 1, true, 416);
}

// The backward's dweight goes through per-warp and per-block partials added in a fixed order.
NATIVE_TEST(cuda_rmsnorm_backward_is_bit_identical_across_runs) {
  ml::Rng rng(421);
  const int64_t rows = 9000, dim = 512, n = rows * dim;
  Dev<float> r(uniform(rng, n, -2, 2)), rstd(uniform(rng, rows, 0.5, 1.5)), w(uniform(rng, dim, 0.5, 1.5));
  Dev<bf16> dy(rounded<bf16>(uniform(rng, n)));
  std::vector<std::vector<unsigned char>> runs;
  for (int run = 0; run < 2; ++run) {
    Dev<float> dx(n), dw(std::vector<double>(dim, 0.0));
    ml::cuda::rmsnorm_backward<bf16>(r.get(), rstd.get(), w.get(), dy.get(), nullptr, dx.get(), dw.get(), rows, dim,
                                     nullptr);
    sync("rmsnorm_backward");
    auto bytes = dw.bytes(), dx_bytes = dx.bytes();
    bytes.insert(bytes.end(), dx_bytes.begin(), dx_bytes.end());
    runs.push_back(std::move(bytes));
  }
  EXPECT(runs[0] == runs[1], "dweight or dx differ between two runs");
  return mltest::str(runs[0].size(), " bytes of dweight and dx identical");
}
