// Generation on backend B: every prompt through the parallel forward (nn/lm.h's prefill), then
// one recurrent decode step per token for the whole batch, each step's logits read back and
// sampled on the host (sampling.h). Each token costs the same whatever the length so far: the
// Mamba layers carry a fixed-size state, attention reads its KV cache. Where B has graphs
// (CUDA), a generation's first decode step runs eagerly (settling every buffer and GEMM plan),
// the second is captured, and every later step replays that graph: one launch per token.
// Greedy decoding without a repetition penalty needs only each row's largest logit: the step
// picks it on the device (ops/argmax) and reads back one id per sequence, not the logits.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "../nn/lm.h"
#include "sampling.h"

namespace ml {

struct GenerateRequest {
  std::vector<int32_t> tokens;   // the prompts, concatenated
  std::vector<int64_t> lengths;  // tokens of each prompt (≥ 1): the batch is lengths.size()
  int64_t max_new_tokens = 0;    // room the state is made for, beyond each prompt
  SamplingOptions sampling;
  std::vector<int32_t> stop_ids;  // a sequence that samples one of these has stopped
};

struct GenerateChunk {
  std::vector<int32_t> tokens;  // (steps, batch): step-major
  std::vector<double> step_ms;  // each step's wall time: its decode (none for the first) and sampling
  bool all_stopped = false;     // every sequence has sampled a stop id
  bool cuda_graph = false;      // the last decode step replayed a captured CUDA graph
};

template <class B>
class GenerateSession {
 public:
  using Real = typename B::Real;

  GenerateSession(LanguageModel<B>& model, bool use_graphs) : model_(model), use_graphs_(use_graphs && B::kGraphs) {}

  // Prefills every prompt; `last_logits` (batch × vocab, host) gets each prompt's last logits.
  void start(const GenerateRequest& request, Real* last_logits) {
    const int64_t batch = int64_t(request.lengths.size()), vocab = model_.config().vocab_size;
    int64_t total = 0, longest = 0;
    for (const int64_t len : request.lengths) {
      ML_CHECK(len >= 1, "generate: every prompt needs at least one token");
      total += len, longest = std::max(longest, len);
    }
    ML_CHECK(total == int64_t(request.tokens.size()), "generate: the prompts' lengths sum to ", total, ", but ",
             request.tokens.size(), " tokens were given");
    ML_CHECK(request.max_new_tokens >= 0, "generate: max_new_tokens must be ≥ 0");
    forget_graph();
    model_.start_generation(batch, longest + std::max<int64_t>(request.max_new_tokens, 1));
    sampler_.emplace(request.sampling, batch, vocab);
    on_device_ = request.sampling.temperature == 0 && request.sampling.repetition_penalty == 1;
    chosen_ = Ids(on_device_ ? batch : 0, "greedy ids");
    chosen_host_.assign(size_t(batch), 0);
    stop_ids_ = request.stop_ids;
    stopped_.assign(size_t(batch), false);
    pending_.clear();
    logits_.resize(size_t(batch * padded()));
    const int32_t* prompt = request.tokens.data();
    for (int64_t r = 0; r < batch; ++r) {
      const int64_t len = request.lengths[size_t(r)];
      const Real* logits = model_.prefill(r, prompt, len, false);
      model_.backend().copy_to_host(logits_.data() + r * padded(), logits, size_t(padded()) * sizeof(Real));
      for (int64_t t = 0; t < len; ++t) sampler_->see(r, prompt[t]);
      prompt += len;
    }
    model_.backend().sync();
    if (last_logits) compact(last_logits, batch);
  }

  // Samples up to max_steps tokens for every sequence, stopping early once max_ms have passed
  // (after at least one step) or every sequence has stopped.
  GenerateChunk next(int64_t max_steps, double max_ms) {
    ML_CHECK(sampler_.has_value(), "generate: start a generation first");
    using Clock = std::chrono::steady_clock;
    const auto begin = Clock::now();
    const int64_t batch = model_.generation_batch();
    GenerateChunk chunk;
    for (int64_t step = 0; step < max_steps; ++step) {
      const auto t0 = Clock::now();
      const bool chosen = !pending_.empty() && on_device_;  // the first token comes from the prefill's logits
      if (chosen) {
        decode_choosing(pending_.data());
      } else if (!pending_.empty()) {
        decode_into_logits(pending_.data());
      }
      pending_.resize(size_t(batch));
      for (int64_t r = 0; r < batch; ++r) {
        const int32_t token = chosen ? chosen_host_[size_t(r)] : sampler_->next(r, logits_.data() + r * padded());
        sampler_->see(r, token);
        pending_[size_t(r)] = token;
        if (std::find(stop_ids_.begin(), stop_ids_.end(), token) != stop_ids_.end()) stopped_[size_t(r)] = true;
      }
      chunk.tokens.insert(chunk.tokens.end(), pending_.begin(), pending_.end());
      chunk.cuda_graph = replaying_;
      const auto t1 = Clock::now();
      chunk.step_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      chunk.all_stopped = std::all_of(stopped_.begin(), stopped_.end(), [](bool s) { return s; });
      if (chunk.all_stopped || std::chrono::duration<double, std::milli>(t1 - begin).count() >= max_ms) break;
    }
    return chunk;
  }

  // The parallel forward's logits at every position of `batch` prompts of `len` tokens
  // (host), into `out` (batch, len, vocab): what decode steps must reproduce. Ends any generation.
  void parallel_logits(const int32_t* tokens, int64_t batch, int64_t len, Real* out) {
    sampler_.reset();
    forget_graph();
    model_.start_generation(batch, len);
    const int64_t vocab = model_.config().vocab_size;
    std::vector<Real> rows(size_t(len * padded()));
    for (int64_t r = 0; r < batch; ++r) {
      const Real* logits = model_.prefill(r, tokens + r * len, len, true);
      model_.backend().copy_to_host(rows.data(), logits, rows.size() * sizeof(Real));
      model_.backend().sync();
      for (int64_t t = 0; t < len; ++t)
        std::copy(rows.begin() + t * padded(), rows.begin() + t * padded() + vocab, out + (r * len + t) * vocab);
    }
  }

  // Teacher forcing: these tokens (`count`, one per sequence) go in as if sampled; `logits`
  // (batch × vocab, host) gets what follows them. Only before any sampling.
  void feed(const int32_t* tokens, int64_t count, Real* logits) {
    ML_CHECK(sampler_.has_value() && pending_.empty(), "generate: feed needs a started generation that has not sampled");
    ML_CHECK(count == model_.generation_batch(), "generate: feed takes one token per sequence (",
             model_.generation_batch(), "), got ", count);
    decode_into_logits(tokens);
    compact(logits, model_.generation_batch());
  }

  // Whether the last decode step replayed a captured CUDA graph.
  bool replaying() const { return replaying_; }

 private:
  int64_t padded() const { return model_.config().padded_vocab(); }

  void decode_into_logits(const int32_t* tokens) {
    model_.upload_decode(tokens);
    const Real* logits = run_decode_step();
    model_.backend().copy_to_host(logits_.data(), logits, logits_.size() * sizeof(Real));
    model_.backend().sync();
  }
  // The same step, reading back only the greedy ids (chosen_host_).
  void decode_choosing(const int32_t* tokens) {
    model_.upload_decode(tokens);
    run_decode_step();
    model_.backend().copy_to_host(chosen_host_.data(), chosen_.get(), chosen_host_.size() * sizeof(int32_t));
    model_.backend().sync();
  }

  // The uploaded step (with the greedy choice when on_device_): eagerly, or as the graph
  // (captured at the generation's second step). Returns where the logits are.
  const Real* run_decode_step() {
    ++decode_steps_;
    if constexpr (B::kGraphs) {
      if (use_graphs_ && !graph_ && !capture_refused_ && decode_steps_ == 2) {
        graph_ = model_.backend().capture([&] { graph_logits_ = enqueue_step(); });
        capture_refused_ = !graph_;  // the same work would be refused again: stay eager
      }
      replaying_ = bool(graph_);
      if (replaying_) {
        model_.backend().launch(graph_);
        return graph_logits_;
      }
    }
    return enqueue_step();
  }
  const Real* enqueue_step() {
    const Real* logits = model_.decode_uploaded();
    if (on_device_)
      model_.backend().argmax(logits, model_.generation_batch(), model_.config().vocab_size, padded(), chosen_.get());
    return logits;
  }
  // A new generation reallocates the states and buffers a graph would replay on.
  void forget_graph() {
    graph_ = {};
    capture_refused_ = replaying_ = false;
    decode_steps_ = 0;
  }

  // The host logits without the padding rows of the vocabulary.
  void compact(Real* out, int64_t batch) const {
    const int64_t vocab = model_.config().vocab_size;
    for (int64_t r = 0; r < batch; ++r)
      std::copy(logits_.begin() + r * padded(), logits_.begin() + r * padded() + vocab, out + r * vocab);
  }

  LanguageModel<B>& model_;
  const bool use_graphs_;
  typename B::Graph graph_;
  const Real* graph_logits_ = nullptr;  // where the graph's step leaves its logits
  bool capture_refused_ = false, replaying_ = false;
  int64_t decode_steps_ = 0;  // in this generation
  std::optional<Sampler> sampler_;
  using Ids = typename B::template Buffer<int32_t>;
  bool on_device_ = false;  // greedy without penalty: the decode step picks the ids
  Ids chosen_;              // (batch) the ids it picked, in the backend's memory
  std::vector<int32_t> chosen_host_;
  std::vector<int32_t> stop_ids_, pending_;  // pending_: the last sampled tokens, not yet decoded
  std::vector<bool> stopped_;
  std::vector<Real> logits_;  // (batch, padded vocab), host
};

}  // namespace ml
