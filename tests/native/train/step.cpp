#include "train/step.h"

#include "../harness.h"
#include "nn/cpu_backend.h"

using namespace mltest;

// Repeating one batch, the model must memorise it: a loose end-to-end check that
// forward, backward, clipping and AdamW move the loss the right way.
NATIVE_TEST(train_step_overfits_one_batch) {
  ml::ModelConfig c;
  c.vocab_size = 50, c.d_model = 16, c.layers = {{'M'}, {'M'}}, c.seed = 1;
  c.mamba.d_model = 16;
  ml::CpuBackend<float> cpu;
  ml::LanguageModel<ml::CpuBackend<float>> model(c, cpu);
  ml::TrainStep<ml::CpuBackend<float>> step(model, false);
  ml::Rng rng(91);
  std::vector<int32_t> tokens(4 * 17);
  for (auto& t : tokens) t = int32_t(rng.next_u64() % 50);
  const ml::OptimizerConfig opt;
  double first = 0, last = 0;
  for (int i = 0; i < 60; ++i) {
    const auto m = step.run(tokens.data(), 4, 17, 1e-2, opt);
    EXPECT(std::isfinite(m.loss) && std::isfinite(m.grad_norm), "step ", i, " loss ", m.loss);
    EXPECT(!m.cuda_graph, "a CPU step replayed a graph");
    if (i == 0) first = m.loss;
    last = m.loss;
  }
  EXPECT(last < first - 2.0, "loss ", first, " -> ", last);
  EXPECT(step.steps_done() == 60, "steps ", step.steps_done());
  return str("loss ", first, " -> ", last, " in 60 steps");
}
