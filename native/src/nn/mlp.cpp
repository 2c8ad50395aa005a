#include "mlp.h"

#include <cmath>

#include "../core/error.h"
#include "init.h"

namespace ml {

template <typename T>
MlpLayer<T>::MlpLayer(int64_t d, const FfnConfig& c, ParamList<T>& params, const std::string& prefix, uint64_t seed,
                      int64_t n_residual_layers)
    : d_(d),
      cfg_(c),
      fc1_(params.add(prefix + "fc1.weight", {c.fc1_rows(), d}, true)),
      fc2_(params.add(prefix + "fc2.weight", {d, c.hidden}, true)) {
  ML_CHECK(c.hidden > 0, "mlp: hidden size must be positive, got ", c.hidden);
  init_uniform(fc1_, seed, 1.0 / std::sqrt(double(d)));
  init_uniform(fc2_, seed, 1.0 / std::sqrt(double(c.hidden)) / std::sqrt(double(n_residual_layers)));
}

template <typename T>
FfnWeights<T> MlpLayer<T>::weights() {
  return {fc1_.value.data(), fc2_.value.data(), fc1_.grad.data(), fc2_.grad.data()};
}

template <typename T>
void MlpLayer<T>::forward(const T* x, T* y, int64_t batch, int64_t len) {
  ffn_forward(cfg_, d_, weights(), x, batch * len, y, cache_);
}

template <typename T>
void MlpLayer<T>::backward(const T* dy, T* dx) {
  ML_CHECK(!cache_.x.empty(), "mlp: backward called before forward");
  ffn_backward(cfg_, d_, weights(), cache_, dy, dx);
}

template class MlpLayer<float>;
template class MlpLayer<double>;

}  // namespace ml
