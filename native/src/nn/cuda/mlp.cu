// The dense MLP: one feed-forward block (ffn.h) over all rows, keeping the input pointer (the
// LM keeps every layer's input until the backward) and fc1's output and activation.
#include <cuda_bf16.h>

#include "../../core/error.h"
#include "ffn.h"
#include "mlp.h"

namespace ml::cuda {
namespace {

template <typename T>
class MlpLayer final : public Layer<T> {
 public:
  MlpLayer(int64_t d, const FfnConfig& cfg, DeviceParams<T>& params, const std::string& prefix, const Context& ctx)
      : d_(d),
        cfg_(cfg),
        params_(params),
        ctx_(ctx),
        fc1_(params.index(prefix + "fc1.weight")),
        fc2_(params.index(prefix + "fc2.weight")) {
    ML_CHECK(cfg.hidden > 0, "mlp (cuda): hidden size must be positive, got ", cfg.hidden);
  }

  void forward(const T* x, T* y, int64_t batch, int64_t len) override {
    x_ = x;
    batch_ = {1, batch * len};
    kept_ = buffers_.reserve(cfg_, batch_.total());
    ffn_forward<T>(cfg_, d_, weights(), batch_, x, y, kept_, ctx_.stream);
  }

  void backward(const T* dy, T* dx) override {
    ML_CHECK(x_ != nullptr, "mlp (cuda): backward called before forward");
    ffn_backward<T>(cfg_, d_, weights(), batch_, x_, kept_, dy, dx, ctx_.stream);
  }

 private:
  DeviceFfnWeights<T> weights() const {
    return {params_.compute(fc1_), params_.compute(fc2_), params_.grad(fc1_), params_.grad(fc2_)};
  }

  int64_t d_;
  FfnConfig cfg_;
  DeviceParams<T>& params_;
  const Context& ctx_;
  size_t fc1_, fc2_;

  const T* x_ = nullptr;
  FfnBatch batch_;
  FfnBuffers<T> buffers_;
  FfnActivations<T> kept_{};
};

}  // namespace

template <typename T>
std::unique_ptr<Layer<T>> make_mlp_layer(int64_t d_model, const FfnConfig& config, DeviceParams<T>& params,
                                         const std::string& prefix, const Context& context) {
  return std::make_unique<MlpLayer<T>>(d_model, config, params, prefix, context);
}

template std::unique_ptr<Layer<float>> make_mlp_layer<float>(int64_t, const FfnConfig&, DeviceParams<float>&,
                                                             const std::string&, const Context&);
template std::unique_ptr<Layer<__nv_bfloat16>> make_mlp_layer<__nv_bfloat16>(int64_t, const FfnConfig&,
                                                                             DeviceParams<__nv_bfloat16>&,
                                                                             const std::string&, const Context&);

}  // namespace ml::cuda
