// router: which experts each token goes to, with what gate, and the load-balancing loss.
//   logits (tokens, experts) from the router's linear layer.
//   switch:   p = softmax(logits); the top_k experts by p; gate = p[t, e] (MoE-Mamba, Switch).
//             aux = α · E · Σ_e f_e · P_e, f_e the fraction of tokens whose first choice is e,
//             P_e the mean of p[:, e] (gradient flows through P only).
//   sinkhorn: training picks the top_k of the Sinkhorn-balanced scores K[t,e]·c[e],
//             K = exp(2·logits) (temperature ½), with column scales c initialised to
//             1/(E · column sum) and row/column normalisation repeated until c, normalised
//             to sum 1, changes by less than tol (L1) (BlackMamba's test is on c itself, whose
//             scale is arbitrary); inference picks the top_k logits.
//             gate = sigmoid(logits[t, e]); no auxiliary loss.
//   capacity: each expert keeps at most ceil(capacity_factor · top_k · tokens / experts)
//             assignments, first choices first, then in token order; the rest are dropped
//             (their tokens pass through the residual). capacity_factor ≤ 0: dropless.
#pragma once
#include <cmath>
#include <cstdint>

namespace ml {

enum class RouterKind { Switch, Sinkhorn };

struct RouterOptions {
  RouterKind kind = RouterKind::Switch;
  int64_t top_k = 1;
  double capacity_factor = 1.0;  // ≤ 0: dropless
  double aux_weight = 0.01;
  bool training = true;
  double sinkhorn_tol = 1e-4;
  int64_t sinkhorn_max_iter = 100;

  bool dropless() const { return capacity_factor <= 0; }
  // Assignments each expert keeps at most.
  int64_t capacity(int64_t tokens, int64_t experts) const {
    const int64_t assignments = top_k * tokens;
    return dropless() ? assignments : int64_t(std::ceil(capacity_factor * double(assignments) / double(experts)));
  }
};

// One routing decision, in arrays the caller owns (host memory for cpu::, device memory for
// cuda::); route_forward fills the sizes and `capacity`. Assignment a = choice · tokens + token.
struct Routing {
  int64_t tokens = 0, experts = 0, top_k = 1, capacity = 0;
  int32_t* expert = nullptr;        // (top_k · tokens) chosen expert
  uint8_t* kept = nullptr;          // (top_k · tokens) 1 if within the expert's capacity
  int32_t* rank = nullptr;          // (top_k · tokens) position among its expert's assignments, in order a
  int64_t* counts = nullptr;        // (experts) kept assignments per expert
  int64_t* first_counts = nullptr;  // (experts) tokens whose first choice is e: f_e = first_counts / tokens
  int64_t* dropped = nullptr;       // (1) assignments over capacity
  double* aux_loss = nullptr;       // (1) the auxiliary loss (0 when aux_weight ≤ 0, and for Sinkhorn)
};

namespace cpu {

// probs: (tokens, experts) softmax (switch) or sigmoid (sinkhorn) of the logits;
// gates: (top_k · tokens) gate of each assignment (0 where dropped). Returns the Sinkhorn
// iterations used (0 when none ran).
template <typename T>
int64_t route_forward(const RouterOptions& options, const T* logits, int64_t tokens, int64_t experts, T* probs,
                      T* gates, Routing& routing);

// dgates: (top_k · tokens) d(loss)/d(gate); adds the auxiliary loss's gradient (weight 1).
// dlogits (tokens, experts) is overwritten.
template <typename T>
void route_backward(const RouterOptions& options, const T* probs, const Routing& routing, const T* dgates,
                    T* dlogits);

// A decode step's routing: each token's top_k experts and their gates, nothing dropped and
// nothing balanced. probs, gates and expert (top_k · tokens, a = choice · tokens + token) hold
// what route_forward writes with training off and room for every assignment (capacity ≥
// tokens): the same values bit for bit, every assignment kept. Only options.kind and top_k are
// read: a Sinkhorn router routes as at inference whatever options.training says.
template <typename T>
void route_choices(const RouterOptions& options, const T* logits, int64_t tokens, int64_t experts, T* probs,
                   T* gates, int32_t* expert);

}  // namespace cpu
}  // namespace ml

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// Both routers on device pointers, enqueued on `stream`; T is float or __nv_bfloat16 (fp32
// math; Sinkhorn's balancing in fp64, as cpu's). No host synchronisation.
//   Switch, and Sinkhorn in inference: the top_k experts are chosen on the logits (softmax and
//   sigmoid are monotonic), largest first, ties to the lower index.
//   Sinkhorn in training: cpu's balancing of K = exp(2·logits): the initialisation and up to
//   sinkhorn_max_iter row/column steps run in one cooperative launch; every block reduces all
//   tiles' column sums in the same order and applies cpu's convergence test (L1 change of
//   the normalised column scales below sinkhorn_tol), so all blocks stop together. The
//   top_k of K[t,e]·c[e] are chosen as above.
//   Capacity and the rest are cpu's: a per-expert prefix sum over the assignments in order
//   a = choice · tokens + token, so first choices first, then token order. Deterministic: no
//   atomics in any sum, fixed sum orders independent of the grid size.
// The routing's arrays are device memory; rank may be null.

template <typename T>
void route_forward(const RouterOptions& options, const T* logits, int64_t tokens, int64_t experts, T* probs,
                   T* gates, Routing& routing, cudaStream_t stream);

template <typename T>
void route_backward(const RouterOptions& options, const T* probs, const Routing& routing, const T* dgates,
                    T* dlogits, cudaStream_t stream);

// cpu's route_choices in one launch (route_forward's first pass, writing the gates too), so
// the values are route_forward's bit for bit. No host synchronisation, no allocation: a decode
// step's graph can capture it.
template <typename T>
void route_choices(const RouterOptions& options, const T* logits, int64_t tokens, int64_t experts, T* probs,
                   T* gates, int32_t* expert, cudaStream_t stream);

}  // namespace ml::cuda
