#include "gpu/gpu_test.h"
#include "ops/layernorm/layernorm.h"

using namespace gputest;

namespace {

template <typename T>
std::string check_layernorm(int64_t rows, int64_t dim, bool with_residual, uint64_t seed) {
  ml::Rng rng(seed);
  const int64_t n = rows * dim;
  const auto x = rounded<T>(uniform(rng, n, -2, 2)), res = rounded<float>(uniform(rng, n, -2, 2));
  const auto w = rounded<float>(uniform(rng, dim, 0.5, 1.5)), b = rounded<float>(uniform(rng, dim));
  const auto dy = rounded<T>(uniform(rng, n)), dres = rounded<float>(uniform(rng, n));
  const auto dw0 = rounded<float>(uniform(rng, dim)), db0 = rounded<float>(uniform(rng, dim));
  std::vector<double> r(n), y(n), mean(rows), rstd(rows), dx(n), dw = dw0, db = db0;
  const double* res_p = with_residual ? res.data() : nullptr;
  ml::cpu::layernorm_forward<double>(x.data(), res_p, w.data(), b.data(), r.data(), y.data(), mean.data(), rstd.data(),
                                     rows, dim, 1e-5);
  ml::cpu::layernorm_backward<double>(r.data(), mean.data(), rstd.data(), w.data(), dy.data(),
                                      with_residual ? dres.data() : nullptr, dx.data(), dw.data(), db.data(), rows,
                                      dim);

  Dev<T> gx(x), gy(n), gdy(dy);
  Dev<float> gres(res), gw(w), gb(b), gr(n), gmean(rows), grstd(rows), gdres(dres), gdx(n), gdw(dw0), gdb(db0);
  gy.poison();
  gr.poison();
  gmean.poison();
  grstd.poison();
  gdx.poison();
  ml::cuda::layernorm_forward<T>(gx.get(), with_residual ? gres.get() : nullptr, gw.get(), gb.get(), gr.get(), gy.get(),
                                 gmean.get(), grstd.get(), rows, dim, 1e-5f, nullptr);
  ml::cuda::layernorm_backward<T>(gr.get(), gmean.get(), grstd.get(), gw.get(), gdy.get(),
                                  with_residual ? gdres.get() : nullptr, gdx.get(), gdw.get(), gdb.get(), rows, dim,
                                  nullptr);
  sync("layernorm");
  Errors errors(bound<T>());
  errors.add("residual_out", gr.download(), r);
  errors.add("y", gy.download(), y);
  errors.add("mean", gmean.download(), mean);
  errors.add("rstd", grstd.download(), rstd);
  errors.add("dx", gdx.download(), dx);
  errors.add("dweight", gdw.download(), dw);
  errors.add("dbias", gdb.download(), db);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_layernorm_fp32_matches_cpu) {
  return check_layernorm<float>(67, 100, true, 441) + "; " + check_layernorm<float>(1, 33, false, 442) + "; " +
         check_layernorm<float>(2049, 1472, true, 443) + "; " + check_layernorm<float>(5003, 64, true, 444) +
         // rows too wide for 8 warps' shared-memory sums: 7 warps for 4096 columns, 1 for 16384
         "; " + check_layernorm<float>(97, 4096, true, 445) + "; " + check_layernorm<float>(9, 16384, false, 446);
}
NATIVE_TEST(cuda_layernorm_bf16_matches_cpu) {
  return check_layernorm<bf16>(67, 100, true, 451) + "; " + check_layernorm<bf16>(300, 1152, false, 452);
}
