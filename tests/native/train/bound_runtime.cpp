// BoundRuntime (train/bound_runtime.h): every call that reaches the model first runs `enter` on
// the calling thread, and the answers are the wrapped runtime's. On the CPU here; on CUDA,
// `enter` selects the model's GPU.
#include "train/bound_runtime.h"

#include "../harness.h"

using namespace mltest;

NATIVE_TEST(bound_runtime_enters_before_every_call_and_answers_as_the_model) {
  ml::ModelConfig c;
  c.vocab_size = 50, c.d_model = 16, c.layers = {{'M'}, {'F'}}, c.seed = 3;
  c.mamba.d_model = 16, c.mlp = {ml::FfnKind::Gelu, 24};
  const auto plain = ml::make_runtime(c, ml::DType::F64);
  int entered = 0;
  auto bound = std::make_unique<ml::BoundRuntime>(ml::make_runtime(c, ml::DType::F64), [&] { ++entered; });
  ml::Rng rng(5);
  std::vector<int32_t> tokens(2 * 9);
  for (auto& t : tokens) t = int32_t(rng.next_u64() % 50);
  int expected = 0;
  const auto called = [&](const char* what) {
    EXPECT(entered == ++expected, what, ": entered ", entered, " times, expected ", expected);
  };

  EXPECT(bound->dtype() == ml::DType::F64 && bound->vocab_size() == 50, "dtype or vocabulary");
  EXPECT(entered == 0, "dtype and vocab_size are host values, yet entered ", entered);
  const auto params = bound->params();
  called("params");
  EXPECT(params.size() == plain->params().size(), params.size(), " parameters");
  const ml::ParamInfo& p = params[0];
  std::vector<double> w(size_t(ml::shape_numel(p.shape)));
  bound->read(p.name, ml::Slot::Value, w.data(), w.size() * sizeof(double));
  called("read");
  w[0] += 0.25;
  bound->write(p.name, ml::Slot::Value, w.data(), w.size() * sizeof(double));
  called("write");
  plain->write(p.name, ml::Slot::Value, w.data(), w.size() * sizeof(double));

  const auto a = bound->evaluate(tokens.data(), 2, 9);
  called("evaluate");
  EXPECT(a.loss == plain->evaluate(tokens.data(), 2, 9).loss, "evaluate: loss ", a.loss);
  const auto g = bound->loss_and_gradients(tokens.data(), 2, 9);
  called("loss_and_gradients");
  EXPECT(g.loss == plain->loss_and_gradients(tokens.data(), 2, 9).loss, "loss_and_gradients: loss ", g.loss);
  const ml::OptimizerConfig opt;
  const auto s = bound->train_step(tokens.data(), 2, 9, 1e-2, opt, 2);
  called("train_step");
  const auto t = plain->train_step(tokens.data(), 2, 9, 1e-2, opt, 2);
  EXPECT(s.loss == t.loss && s.grad_norm == t.grad_norm, "train_step: loss ", s.loss, " vs ", t.loss);
  EXPECT(bound->steps_done() == 1 && entered == expected, "steps_done ", bound->steps_done());
  bound->set_steps_done(7);
  EXPECT(bound->steps_done() == 7 && entered == expected, "set_steps_done");
  EXPECT(bound->optimizer_state_bytes() == plain->optimizer_state_bytes() && entered == expected,
         "optimizer_state_bytes: ", bound->optimizer_state_bytes());
  double decision = 3;
  bound->from_rank_zero(&decision, 1);
  EXPECT(decision == 3 && entered == expected, "from_rank_zero before joining: ", decision);

  std::vector<double> logits(size_t(2 * 8 * bound->vocab_size())), want(logits.size());
  bound->parallel_logits(tokens.data(), 2, 8, logits.data());
  called("parallel_logits");
  plain->parallel_logits(tokens.data(), 2, 8, want.data());
  EXPECT(logits == want, "parallel_logits differ");
  ml::GenerateRequest request;
  request.tokens = {1, 2, 3}, request.lengths = {3}, request.max_new_tokens = 2;
  std::vector<double> last(size_t(bound->vocab_size()));
  bound->generate_start(request, last.data());
  called("generate_start");
  const int32_t next = 4;
  bound->generate_feed(&next, 1, last.data());
  called("generate_feed");
  bound->generate_next(1, 1e3);
  called("generate_next");
  bound->join_ranks(nullptr, false, false);
  called("join_ranks");
  bound.reset();
  called("the destructor");
  return str(expected, " calls entered first, each answered as by the model itself");
}
