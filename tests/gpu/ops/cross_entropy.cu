#include "gpu/gpu_test.h"
#include "ops/cross_entropy/cross_entropy.h"

using namespace gputest;

namespace {

// Random inputs of a head: h and E as T would hold them, targets (the first one the last
// column), and the fp32 dE that the backward accumulates into.
template <typename T>
struct Problem {
  ml::cpu::HeadDims d;
  std::vector<int32_t> targets;
  std::vector<double> h, E, dE0;

  Problem(ml::cpu::HeadDims dims, uint64_t seed) : d(dims), targets(dims.rows) {
    ml::Rng rng(seed);
    for (auto& t : targets) t = int32_t(rng.next_u64() % uint64_t(d.vocab));
    targets[0] = int32_t(d.vocab - 1);
    h = rounded<T>(uniform(rng, d.rows * d.dim, -2, 2));
    E = rounded<T>(uniform(rng, d.vocab * d.dim));
    dE0 = rounded<float>(uniform(rng, d.vocab * d.dim));
  }
};

struct Output {
  const char* name;
  std::vector<double> values;
  std::vector<unsigned char> bytes;
};

// The CUDA forward and backward (dloss 1) from poisoned outputs: loss, lse, dh, dE; fused: both
// in one call (cross_entropy_forward_backward).
template <typename T>
std::vector<Output> run_cuda(const Problem<T>& p, bool fused = false) {
  const auto& d = p.d;
  int32_t* gt = nullptr;
  check(cudaMalloc(&gt, p.targets.size() * sizeof(int32_t)), "cudaMalloc");
  check(cudaMemcpy(gt, p.targets.data(), p.targets.size() * sizeof(int32_t), cudaMemcpyHostToDevice), "upload");
  Dev<T> gh(p.h), gE(p.E);
  Dev<float> glse(d.rows), gloss(1), gdh(d.rows * d.dim), gdE(p.dE0);
  glse.poison();
  gloss.poison();
  gdh.poison();
  if (fused) {
    ml::cuda::cross_entropy_forward_backward<T>(d, gh.get(), gE.get(), gt, glse.get(), gloss.get(), 1.f, gdh.get(),
                                                gdE.get(), nullptr);
  } else {
    ml::cuda::cross_entropy_forward<T>(d, gh.get(), gE.get(), gt, glse.get(), gloss.get(), nullptr);
    ml::cuda::cross_entropy_backward<T>(d, gh.get(), gE.get(), gt, glse.get(), 1.f, gdh.get(), gdE.get(), nullptr);
  }
  sync("cross_entropy");
  cudaFree(gt);
  return {{"loss", gloss.download(), gloss.bytes()},
          {"lse", glse.download(), glse.bytes()},
          {"dh", gdh.download(), gdh.bytes()},
          {"dE", gdE.download(), gdE.bytes()}};
}

template <typename T>
std::string check_ce(ml::cpu::HeadDims d, uint64_t seed, bool fused = false) {
  const Problem<T> p(d, seed);
  std::vector<double> lse(d.rows), dh(d.rows * d.dim), dE = p.dE0;
  const double loss = ml::cpu::cross_entropy_forward<double>(d, p.h.data(), p.E.data(), p.targets.data(), lse.data());
  ml::cpu::cross_entropy_backward<double>(d, p.h.data(), p.E.data(), p.targets.data(), lse.data(), 1.0, dh.data(),
                                          dE.data());
  const std::vector<std::vector<double>> want{{loss}, lse, dh, dE};
  const auto got = run_cuda<T>(p, fused);
  Errors errors(bound<T>());
  for (size_t i = 0; i < got.size(); ++i) errors.add(got[i].name, got[i].values, want[i]);
  return errors.report();
}

}  // namespace

// Chunk columns (the last chunk ragged unless noted) by the row mapping and the access path:
// short chunks take a warp per row, long ones (above 4096) a block; columns a multiple of 4
// take 16-byte loads, others scalar ones.
NATIVE_TEST(cuda_cross_entropy_fp32_matches_cpu) {
  return check_ce<float>({45, 40, 301, 64}, 701) + "; " +     // 64 ×4, then 45
         check_ce<float>({1, 8, 9, 0}, 702) + "; " +          // one row, vocab under a chunk
         check_ce<float>({512, 96, 5003, 0}, 703) + "; " +    // one block-per-row chunk of 5003
         check_ce<float>({1500, 32, 777, 250}, 704) + "; " +  // 250 ×3, then 27; rows > 1024
         check_ce<float>({5, 16, 12003, 5000}, 705);          // 5000 ×2 (block, 16-byte), then 2003
}
NATIVE_TEST(cuda_cross_entropy_bf16_matches_cpu) {
  return check_ce<bf16>({45, 40, 301, 64}, 711) + "; " + check_ce<bf16>({512, 96, 5003, 1000}, 712) + "; " +
         check_ce<bf16>({1500, 32, 777, 250}, 713) + "; " +
         check_ce<bf16>({260, 32, 4400, 2048}, 714);  // the training step's chunk of 2048
}

// Both at once in chunks of rows over the whole vocabulary, chunk · rows logits each: several
// chunks with a ragged last one, one row a chunk, a single chunk, the training step's budget.
NATIVE_TEST(cuda_cross_entropy_forward_backward_matches_cpu) {
  return check_ce<float>({45, 40, 301, 64}, 731, true) + "; " +      // five chunks of 9 rows
         check_ce<float>({7, 16, 12003, 1000}, 732, true) + "; " +   // 1000 · 7 / 12003: one row a chunk
         check_ce<float>({1, 8, 9, 0}, 733, true) + "; " +           // one row, one chunk
         check_ce<bf16>({1500, 32, 777, 250}, 734, true) + "; " +    // 482 rows a chunk, then 54
         check_ce<bf16>({260, 32, 4400, 2048}, 735, true) + "; " +   // 121, 121, 18
         // vocabularies of 16-byte runs (the softmax kernels' vector path), one of 60000
         check_ce<float>({33, 24, 5000, 0}, 736, true) + "; " + check_ce<bf16>({100, 32, 8192, 4096}, 737, true) +
         "; " + check_ce<float>({70, 16, 60000, 0}, 738, true);
}

// Two runs on the same inputs give the same bits: loss, lse, dh and dE (a block-per-row chunk,
// then a warp-per-row one; then both at once).
NATIVE_TEST(cuda_cross_entropy_is_bit_identical_across_runs) {
  const Problem<bf16> p({1100, 64, 6000, 5000}, 721);
  auto first = run_cuda<bf16>(p), second = run_cuda<bf16>(p);
  for (auto& o : run_cuda<bf16>(p, true)) first.push_back(std::move(o));
  for (auto& o : run_cuda<bf16>(p, true)) second.push_back(std::move(o));
  int64_t bytes = 0;
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT(first[i].bytes == second[i].bytes, first[i].name, " differs between two runs");
    bytes += int64_t(first[i].bytes.size());
  }
  return mltest::str(bytes, " bytes of loss, lse, dh and dE identical");
}
