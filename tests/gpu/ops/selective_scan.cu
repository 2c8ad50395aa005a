#include "gpu/gpu_test.h"
#include "core/error.h"
#include "ops/selective_scan/selective_scan.h"

using namespace gputest;
using ml::ScanDims;

namespace {

// Inputs of one scan problem on the host (already rounded to what the GPU holds) and on the
// device; the accumulating gradients start from random values on both sides.
template <typename T>
struct Problem {
  ScanDims d;
  std::vector<double> u, delta, A, B, C, D, z, bias, dout, dA0, dD0, dbias0;
  Dev<T> gu, gdelta, gB, gC, gz, gdout;
  Dev<float> gA, gD, gbias;

  static Problem make(ScanDims d, uint64_t seed, double delta_hi) {
    ml::Rng rng(seed);
    const int64_t act = d.batch * d.len * d.dim, bc = d.batch * d.len * d.dstate;
    std::vector<double> u = rounded<T>(uniform(rng, act)), delta = rounded<T>(uniform(rng, act, -3, delta_hi));
    std::vector<double> A(d.dim * d.dstate);
    for (int64_t c = 0; c < d.dim; ++c)  // S4D-real-like spread, jittered
      for (int64_t n = 0; n < d.dstate; ++n) A[c * d.dstate + n] = -(n + 1) * rng.uniform(0.5, 1.5);
    A = rounded<float>(A);
    auto B = rounded<T>(uniform(rng, bc)), C = rounded<T>(uniform(rng, bc)), D = rounded<float>(uniform(rng, d.dim));
    auto z = rounded<T>(uniform(rng, act, -2, 2)), bias = rounded<float>(uniform(rng, d.dim, -4, -1));
    auto dout = rounded<T>(uniform(rng, act));
    auto dA0 = rounded<float>(uniform(rng, d.dim * d.dstate)), dD0 = rounded<float>(uniform(rng, d.dim));
    auto dbias0 = rounded<float>(uniform(rng, d.dim));
    return Problem{d, u, delta, A, B, C, D, z, bias, dout, dA0, dD0, dbias0};
  }
  Problem(ScanDims d_, std::vector<double> u_, std::vector<double> delta_, std::vector<double> A_,
          std::vector<double> B_, std::vector<double> C_, std::vector<double> D_, std::vector<double> z_,
          std::vector<double> bias_, std::vector<double> dout_, std::vector<double> dA0_, std::vector<double> dD0_,
          std::vector<double> dbias0_)
      : d(d_), u(u_), delta(delta_), A(A_), B(B_), C(C_), D(D_), z(z_), bias(bias_), dout(dout_), dA0(dA0_),
        dD0(dD0_), dbias0(dbias0_), gu(u), gdelta(delta), gB(B), gC(C), gz(z), gdout(dout), gA(A), gD(D),
        gbias(bias) {}

  ml::ScanInputs<T, float> inputs() const {
    return {gu.get(), gdelta.get(), gB.get(), gC.get(), gz.get(), gA.get(), gD.get(), gbias.get()};
  }
};

// Device gradients of one backward run, poisoned (overwritten ones) or reset (accumulating).
template <typename T>
struct Grads {
  Dev<T> du, ddelta, dB, dC, dz;
  Dev<float> dA, dD, dbias;
  explicit Grads(const Problem<T>& p)
      : du(p.u.size()), ddelta(p.u.size()), dB(p.B.size()), dC(p.C.size()), dz(p.u.size()), dA(p.dA0), dD(p.dD0),
        dbias(p.dbias0) {
    for (Dev<T>* g : {&du, &ddelta, &dB, &dC, &dz}) g->poison();
  }
  ml::ScanGrads<T, float> view() {
    return {du.get(), ddelta.get(), dB.get(), dC.get(), dz.get(), dA.get(), dD.get(), dbias.get()};
  }
};

// segments as ScanOptions::segments: 0 lets the scan choose, n > 1 splits each sequence into
// (up to) n parts scanned side by side.
template <typename T>
std::string check_scan(ScanDims d, int64_t ckpt_every, bool deterministic, uint64_t seed, double delta_hi = 1.0,
                       int64_t segments = 0) {
  auto p = Problem<T>::make(d, seed, delta_hi);
  const int64_t act = d.batch * d.len * d.dim, bc = d.batch * d.len * d.dstate;
  std::vector<double> out(act), du(act), ddelta(act), dz(act), dB(bc), dC(bc), dA = p.dA0, dD = p.dD0,
                                                                              dbias = p.dbias0;
  const ml::ScanInputs<double> in{p.u.data(), p.delta.data(), p.B.data(), p.C.data(),
                                  p.z.data(), p.A.data(),     p.D.data(), p.bias.data()};
  std::vector<double> final_state(d.batch * d.dim * d.dstate);
  ml::cpu::selective_scan_forward<double>(d, in, out.data(), final_state.data());
  ml::cpu::selective_scan_backward<double>(
      d, in, p.dout.data(),
      {du.data(), ddelta.data(), dB.data(), dC.data(), dz.data(), dA.data(), dD.data(), dbias.data()});

  const ml::cuda::ScanOptions opt{ckpt_every, deterministic, segments};
  Dev<T> gout(act);
  Dev<float> ckpt(ml::cuda::scan_checkpoint_elements(d, opt));
  gout.poison();
  ckpt.poison();
  Grads<T> g(p);
  ml::cuda::selective_scan_forward<T>(d, p.inputs(), gout.get(), ckpt.get(), opt, nullptr);
  ml::cuda::selective_scan_backward<T>(d, p.inputs(), p.gdout.get(), ckpt.get(), g.view(), opt, nullptr);
  // The inference forward (no checkpoints; generation's prefill, with the final state) must
  // give the same output.
  Dev<T> gout_inference(act);
  Dev<float> gfinal(final_state.size());
  gout_inference.poison();
  gfinal.poison();
  ml::cuda::selective_scan_forward<T>(d, p.inputs(), gout_inference.get(), nullptr, opt, nullptr, gfinal.get());
  sync("selective_scan");
  EXPECT(gout_inference.bytes() == gout.bytes(), "the forward without checkpoints differs from the one with them");
  Errors errors(bound<T>());
  errors.add("out", gout.download(), out);
  errors.add("final_state", gfinal.download(), final_state);
  errors.add("du", g.du.download(), du);
  errors.add("ddelta", g.ddelta.download(), ddelta);
  errors.add("dz", g.dz.download(), dz);
  errors.add("dB", g.dB.download(), dB);
  errors.add("dC", g.dC.download(), dC);
  errors.add("dA", g.dA.download(), dA);
  errors.add("dD", g.dD.download(), dD);
  errors.add("ddelta_bias", g.dbias.download(), dbias);
  return mltest::str("b", d.batch, " l", d.len, " d", d.dim, " n", d.dstate, " ckpt", ckpt_every,
                     deterministic ? " det" : " atomic", " parts ", ml::cuda::scan_sequence_parts(d, opt), ": ",
                     errors.report());
}

template <typename T>
std::string check_sizes(uint64_t seed) {
  return check_scan<T>({2, 300, 96, 16}, 64, true, seed) + "\n  " +      // L not a multiple of the chunk or tile
         check_scan<T>({1, 1, 3, 16}, 64, true, seed + 1) + "\n  " +      // L = 1, batch 1, 3 channels
         check_scan<T>({3, 37, 33, 4}, 16, true, seed + 2) + "\n  " +     // ragged channel block
         check_scan<T>({1, 200, 40, 2}, 32, true, seed + 3, 3.0) + "\n  " +  // large dt: fast decay
         check_scan<T>({2, 130, 64, 8}, 128, false, seed + 4) + "\n  " +  // the atomic backward
         check_scan<T>({2, 300, 96, 16}, 64, false, seed + 6) + "\n  " +  // atomic, dstate 16 (training's)
         check_scan<T>({1, 2048, 64, 16}, 64, true, seed + 5, 1.0, 1);   // the benchmark's length, whole
}

// Sequences split into parts scanned side by side: the chain of part states forward, of
// adjoints backward, ragged last parts, parts of one chunk, and the automatic choice.
template <typename T>
std::string check_parts(uint64_t seed) {
  return check_scan<T>({2, 300, 96, 16}, 64, true, seed, 1.0, 3) + "\n  " +        // parts 128, 128, 44
         check_scan<T>({3, 37, 33, 4}, 16, true, seed + 1, 1.0, 2) + "\n  " +      // ragged channels, parts 32, 5
         check_scan<T>({1, 1000, 40, 2}, 32, false, seed + 2, 1.0, 7) + "\n  " +   // atomic backward
         check_scan<T>({2, 640, 64, 8}, 64, true, seed + 3, -2.0, 10) + "\n  " +   // one chunk per part, slow decay
         check_scan<T>({1, 2048, 64, 16}, 64, true, seed + 4) + "\n  " +           // automatic: 2 blocks split
         check_scan<T>({1, 4100, 96, 16}, 64, true, seed + 5, 0.0);                 // automatic, slow decay, ragged
}

}  // namespace

NATIVE_TEST(cuda_selective_scan_fp32_matches_cpu) { return check_sizes<float>(1001); }
NATIVE_TEST(cuda_selective_scan_bf16_matches_cpu) { return check_sizes<bf16>(1101); }
NATIVE_TEST(cuda_selective_scan_parts_fp32_match_cpu) { return check_parts<float>(1301); }
NATIVE_TEST(cuda_selective_scan_parts_bf16_match_cpu) { return check_parts<bf16>(1401); }

// Where the scan splits sequences: never when batch × channels fill the GPU, always for one
// long sequence, and as asked (within the whole chunks there are) when told.
NATIVE_TEST(cuda_selective_scan_chooses_parts_by_shape) {
  using ml::cuda::scan_sequence_parts;
  const ml::cuda::ScanOptions automatic{64, true, 0};
  const int64_t bench = scan_sequence_parts({8, 2048, 1536, 16}, automatic);
  const int64_t long_one = scan_sequence_parts({1, 65536, 1024, 16}, automatic);
  const int64_t short_one = scan_sequence_parts({1, 300, 1024, 16}, automatic);
  const int64_t asked = scan_sequence_parts({2, 300, 96, 16}, {64, true, 3});
  const int64_t capped = scan_sequence_parts({2, 300, 96, 16}, {64, true, 100});
  const int64_t whole = scan_sequence_parts({1, 65536, 1024, 16}, {64, true, 1});
  EXPECT(bench == 1, "b8 d1536 l2048 fills the GPU but was split into ", bench, " parts");
  EXPECT(long_one > 1, "one 65,536-step sequence was not split");
  EXPECT(short_one == 1, "a 300-step sequence was split into ", short_one, " parts");
  EXPECT(asked == 3 && capped == 5 && whole == 1, "parts asked 3 / 100 / 1 gave ", asked, " / ", capped, " / ", whole);
  return mltest::str("b8 d1536 l2048: ", bench, " part; b1 d1024 l65536: ", long_one, " parts");
}

// Two deterministic backward runs on the same inputs give the same bits in every gradient,
// with sequences whole and in parts.
NATIVE_TEST(cuda_selective_scan_deterministic_backward_is_bit_identical) {
  const ScanDims d{4, 1000, 256, 16};
  auto p = Problem<bf16>::make(d, 1201, 1.0);
  int64_t bytes = 0;
  for (const int64_t segments : {1, 4}) {
    const ml::cuda::ScanOptions opt{64, true, segments};
    Dev<bf16> gout(d.batch * d.len * d.dim);
    Dev<float> ckpt(ml::cuda::scan_checkpoint_elements(d, opt));
    ml::cuda::selective_scan_forward<bf16>(d, p.inputs(), gout.get(), ckpt.get(), opt, nullptr);
    Grads<bf16> first(p), second(p);
    ml::cuda::selective_scan_backward<bf16>(d, p.inputs(), p.gdout.get(), ckpt.get(), first.view(), opt, nullptr);
    ml::cuda::selective_scan_backward<bf16>(d, p.inputs(), p.gdout.get(), ckpt.get(), second.view(), opt, nullptr);
    sync("selective_scan");
    auto same = [&](const char* name, auto& a, auto& b) {
      const auto x = a.bytes(), y = b.bytes();
      EXPECT(x == y, name, " differs between two deterministic runs (", segments, " parts)");
      bytes += int64_t(x.size());
    };
    same("du", first.du, second.du);
    same("ddelta", first.ddelta, second.ddelta);
    same("dz", first.dz, second.dz);
    same("dB", first.dB, second.dB);
    same("dC", first.dC, second.dC);
    same("dA", first.dA, second.dA);
    same("dD", first.dD, second.dD);
    same("ddelta_bias", first.dbias, second.dbias);
  }
  return mltest::str(bytes, " gradient bytes identical across two runs (b4 l1000 d256 n16 bf16, whole and in 4 parts)");
}

// checkpoint_every must be a multiple of 16 (the forward looks for checkpoints every 16 steps).
NATIVE_TEST(cuda_selective_scan_rejects_a_checkpoint_spacing_off_the_grid) {
  const ScanDims d{1, 64, 32, 16};
  auto p = Problem<float>::make(d, 1301, 1.0);
  Dev<float> out(d.batch * d.len * d.dim), ckpt(d.batch * 4 * d.dim * d.dstate);
  try {
    ml::cuda::selective_scan_forward<float>(d, p.inputs(), out.get(), ckpt.get(), {24, true}, nullptr);
  } catch (const ml::Error& e) {
    return std::string("rejected: ") + e.what();
  }
  throw mltest::Failure("checkpoint_every 24 was accepted");
}
