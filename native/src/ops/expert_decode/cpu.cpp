#include "../gelu/gelu.h"
#include "../silu/silu.h"
#include "expert_decode.h"

namespace ml::cpu {
namespace {

template <typename T>
T dot(const T* a, const T* b, int64_t n) {
  T sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

template <typename T>
T activate(ExpertActivation activation, T up, T gate) {
  switch (activation) {
    case ExpertActivation::SwiGLU: return up * silu(gate);
    case ExpertActivation::GeGLU: return up * gelu(gate);
    case ExpertActivation::Gelu: break;
  }
  return gelu(up);
}

}  // namespace

template <typename T>
void expert_decode(const ExpertDecodeDims& d, const T* x, const int32_t* expert, const T* gate, const T* fc1,
                   const T* fc2, T* hidden, T* y) {
  const int64_t H = d.hidden, assignments = d.top_k * d.tokens;
  for (int64_t a = 0; a < assignments; ++a) {
    const T* w = fc1 + expert[a] * d.fc1_rows() * d.d;
    const T* xt = x + (a % d.tokens) * d.d;
    for (int64_t i = 0; i < H; ++i) {
      const T up = dot(w + i * d.d, xt, d.d);
      hidden[a * H + i] = activate(d.activation, up, d.gated() ? dot(w + (H + i) * d.d, xt, d.d) : T(0));
    }
  }
  for (int64_t t = 0; t < d.tokens; ++t)
    for (int64_t j = 0; j < d.d; ++j) {
      T sum = 0;
      for (int64_t c = 0; c < d.top_k; ++c) {
        const int64_t a = c * d.tokens + t;
        sum += gate[a] * dot(fc2 + (expert[a] * d.d + j) * H, hidden + a * H, H);
      }
      y[t * d.d + j] = sum;
    }
}

template void expert_decode<float>(const ExpertDecodeDims&, const float*, const int32_t*, const float*, const float*,
                                   const float*, float*, float*);
template void expert_decode<double>(const ExpertDecodeDims&, const double*, const int32_t*, const double*,
                                    const double*, const double*, double*, double*);

}  // namespace ml::cpu
