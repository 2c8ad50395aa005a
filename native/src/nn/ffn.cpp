#include "ffn.h"

#include <algorithm>

#include "../ops/gelu/gelu.h"
#include "../ops/linear/linear.h"
#include "../ops/swiglu/swiglu.h"

namespace ml {
namespace {

// Copies columns [first, first + count) of a (rows, width) matrix.
template <typename T>
void columns(const T* src, int64_t rows, int64_t width, int64_t first, int64_t count, T* dst) {
  for (int64_t r = 0; r < rows; ++r) std::copy_n(src + r * width + first, count, dst + r * count);
}

}  // namespace

template <typename T>
void ffn_forward(const FfnConfig& cfg, int64_t d, const FfnWeights<T>& w, const T* x, int64_t rows, T* y,
                 FfnCache<T>& c) {
  const int64_t H = cfg.hidden, R = cfg.fc1_rows();
  c.x = Tensor<T>({rows, d});
  std::copy_n(x, rows * d, c.x.data());
  c.h = Tensor<T>({rows, R});
  c.a = Tensor<T>({rows, H});
  cpu::linear_forward<T>(x, w.fc1, nullptr, c.h.data(), rows, d, R);
  if (cfg.kind == FfnKind::Gelu) {
    cpu::gelu_forward<T>(c.h.data(), c.a.data(), rows * H);
  } else {
    Tensor<T> up({rows, H}), gate({rows, H});
    columns(c.h.data(), rows, R, 0, H, up.data());
    columns(c.h.data(), rows, R, H, H, gate.data());
    cpu::swiglu_forward<T>(gate.data(), up.data(), c.a.data(), rows * H);
  }
  cpu::linear_forward<T>(c.a.data(), w.fc2, nullptr, y, rows, H, d);
}

template <typename T>
void ffn_backward(const FfnConfig& cfg, int64_t d, const FfnWeights<T>& w, const FfnCache<T>& c, const T* dy, T* dx) {
  const int64_t rows = c.x.dim(0), H = cfg.hidden, R = cfg.fc1_rows();
  Tensor<T> da({rows, H}), dh({rows, R});
  cpu::linear_backward<T>(c.a.data(), w.fc2, dy, da.data(), w.dfc2, nullptr, rows, H, d);
  if (cfg.kind == FfnKind::Gelu) {
    cpu::gelu_backward<T>(c.h.data(), da.data(), dh.data(), rows * H);
  } else {
    Tensor<T> up({rows, H}), gate({rows, H}), dup({rows, H}), dgate({rows, H});
    columns(c.h.data(), rows, R, 0, H, up.data());
    columns(c.h.data(), rows, R, H, H, gate.data());
    cpu::swiglu_backward<T>(gate.data(), up.data(), da.data(), dgate.data(), dup.data(), rows * H);
    for (int64_t r = 0; r < rows; ++r) {
      std::copy_n(dup.data() + r * H, H, dh.data() + r * R);
      std::copy_n(dgate.data() + r * H, H, dh.data() + r * R + H);
    }
  }
  cpu::linear_backward<T>(c.x.data(), w.fc1, dh.data(), dx, w.dfc1, nullptr, rows, d, R);
}

template void ffn_forward<float>(const FfnConfig&, int64_t, const FfnWeights<float>&, const float*, int64_t, float*,
                                 FfnCache<float>&);
template void ffn_forward<double>(const FfnConfig&, int64_t, const FfnWeights<double>&, const double*, int64_t,
                                  double*, FfnCache<double>&);
template void ffn_backward<float>(const FfnConfig&, int64_t, const FfnWeights<float>&, const FfnCache<float>&,
                                  const float*, float*);
template void ffn_backward<double>(const FfnConfig&, int64_t, const FfnWeights<double>&, const FfnCache<double>&,
                                   const double*, double*);

}  // namespace ml
