// Row-major strided-batched products (ops/gemm) around the elementwise activation ops; the
// weight gradients take bf16 operands into fp32 sums when T is bf16.
#include <cuda_bf16.h>

#include "../../ops/gelu/gelu.h"
#include "../../ops/gemm/gemm.h"
#include "../../ops/swiglu/swiglu.h"
#include "ffn.h"

namespace ml::cuda {

template <typename T>
FfnActivations<T> FfnBuffers<T>::reserve(const FfnConfig& cfg, int64_t rows) {
  const int64_t n = rows * cfg.hidden;
  const bool swiglu = cfg.kind == FfnKind::SwiGLU;
  if (up_.size() != n) {
    up_ = DeviceBuffer<T>(n, "ffn activations");
    act_ = DeviceBuffer<T>(n, "ffn activations");
  }
  if (swiglu && gate_.size() != n) gate_ = DeviceBuffer<T>(n, "ffn activations");
  return {up_.get(), swiglu ? gate_.get() : nullptr, act_.get()};
}

template <typename T>
void ffn_forward(const FfnConfig& cfg, int64_t d, const DeviceFfnWeights<T>& w, FfnBatch b, const T* x, T* y,
                 const FfnActivations<T>& keep, cudaStream_t s) {
  const int64_t H = cfg.hidden, R = cfg.fc1_rows(), n = b.rows, G = b.groups;
  if (b.total() <= 0) return;
  // fc1, per half: (n, H) = x (n, d) · W (H, d)ᵀ
  gemm_strided_batched<T, T>(false, true, n, H, d, 1.f, x, d, n * d, w.fc1, d, R * d, 0.f, keep.up, H, n * H, G, s);
  if (cfg.kind == FfnKind::SwiGLU) {
    gemm_strided_batched<T, T>(false, true, n, H, d, 1.f, x, d, n * d, w.fc1 + H * d, d, R * d, 0.f, keep.gate, H,
                               n * H, G, s);
    swiglu_forward<T>(keep.gate, keep.up, keep.act, G * n * H, s);
  } else {
    gelu_forward<T>(keep.up, keep.act, G * n * H, s);
  }
  // fc2: (n, d) = act (n, H) · W2 (d, H)ᵀ
  gemm_strided_batched<T, T>(false, true, n, d, H, 1.f, keep.act, H, n * H, w.fc2, H, d * H, 0.f, y, d, n * d, G, s);
}

template <typename T>
void ffn_backward(const FfnConfig& cfg, int64_t d, const DeviceFfnWeights<T>& w, FfnBatch b, const T* x,
                  const FfnActivations<T>& kept, const T* dy, T* dx, cudaStream_t s) {
  const int64_t H = cfg.hidden, R = cfg.fc1_rows(), n = b.rows, G = b.groups;
  if (b.total() <= 0) return;
  const bool swiglu = cfg.kind == FfnKind::SwiGLU;
  DeviceBuffer<T> dact(G * n * H, "ffn backward"), dup(G * n * H, "ffn backward");
  DeviceBuffer<T> dgate(swiglu ? G * n * H : 0, "ffn backward");
  // fc2: dact (n, H) = dy (n, d) · W2 (d, H);  dW2 (d, H) += dyᵀ · act
  gemm_strided_batched<T, T>(false, false, n, H, d, 1.f, dy, d, n * d, w.fc2, H, d * H, 0.f, dact.get(), H, n * H, G,
                             s);
  gemm_strided_batched<T, float>(true, false, d, H, n, 1.f, dy, d, n * d, kept.act, H, n * H, 1.f, w.dfc2, H, d * H,
                                 G, s);
  if (swiglu) {
    swiglu_backward<T>(kept.gate, kept.up, dact.get(), dgate.get(), dup.get(), G * n * H, s);
  } else {
    gelu_backward<T>(kept.up, dact.get(), dup.get(), G * n * H, s);
  }
  // fc1, per half: dx (n, d) (+)= dh (n, H) · W (H, d);  dW (H, d) += dhᵀ · x
  const struct {
    const T* dh;
    int64_t weight_row;
  } halves[2] = {{dup.get(), 0}, {dgate.get(), H}};
  for (int h = 0; h < (swiglu ? 2 : 1); ++h) {
    const int64_t off = halves[h].weight_row * d;
    gemm_strided_batched<T, T>(false, false, n, d, H, 1.f, halves[h].dh, H, n * H, w.fc1 + off, d, R * d,
                               h ? 1.f : 0.f, dx, d, n * d, G, s);
    gemm_strided_batched<T, float>(true, false, H, d, n, 1.f, halves[h].dh, H, n * H, x, d, n * d, 1.f,
                                   w.dfc1 + off, d, R * d, G, s);
  }
}

#define ML_INSTANTIATE(T)                                                                                          \
  template class FfnBuffers<T>;                                                                                   \
  template void ffn_forward<T>(const FfnConfig&, int64_t, const DeviceFfnWeights<T>&, FfnBatch, const T*, T*,     \
                               const FfnActivations<T>&, cudaStream_t);                                           \
  template void ffn_backward<T>(const FfnConfig&, int64_t, const DeviceFfnWeights<T>&, FfnBatch, const T*,        \
                                const FfnActivations<T>&, const T*, T*, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(__nv_bfloat16)

}  // namespace ml::cuda
