// mambalab_bench_sampler: the host sampler's time per token (generate/sampling.h) on one row of
// GPT-2-sized logits, for logits spread as a trained model's are and as random weights give
// (nearly uniform, so top-p keeps most of the vocabulary). One JSON object per line on stdout.
//
//   mambalab_bench_sampler [--vocab 50280] [--temperature 0.8] [--top-k 0] [--top-p 0.95] [--iters 200]
// Each line: the logits' standard deviation, and ms_per_token, the mean over --iters draws after
// 5 warm-ups (token_sum, the drawn ids' sum, shows whether two builds draw the same tokens).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "generate/sampling.h"

namespace {

double flag(int argc, char** argv, const char* name, double fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::strtod(argv[i + 1], nullptr);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const auto vocab = int64_t(flag(argc, argv, "--vocab", 50280));
  const auto iters = int(flag(argc, argv, "--iters", 200));
  ml::SamplingOptions options;
  options.temperature = flag(argc, argv, "--temperature", 0.8);
  options.top_k = int64_t(flag(argc, argv, "--top-k", 0));
  options.top_p = flag(argc, argv, "--top-p", 0.95);
  for (const double spread : {0.05, 0.5, 2.0, 5.0}) {
    std::mt19937 gen(1);
    std::normal_distribution<float> normal(0.f, float(spread));
    std::vector<float> logits(static_cast<size_t>(vocab));
    for (auto& l : logits) l = normal(gen);
    ml::Sampler sampler(options, 1, vocab);
    for (int i = 0; i < 5; ++i) sampler.next(0, logits.data());
    int64_t checksum = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) checksum += sampler.next(0, logits.data());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::printf(
        "{\"name\":\"sampler\",\"vocab\":%lld,\"logit_std\":%g,\"temperature\":%g,\"top_k\":%lld,\"top_p\":%g,"
        "\"iters\":%d,\"ms_per_token\":%.4f,\"token_sum\":%lld}\n",
        (long long)vocab, spread, options.temperature, (long long)options.top_k, options.top_p, iters, ms / iters,
        (long long)checksum);
  }
  return 0;
}
