// One thread per (row, head, pair): the pair's two elements are read and written by it alone,
// so in-place rotation is safe.
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "rope.h"

namespace ml::cuda {
namespace {

template <typename T>
__global__ void rope_kernel(RopeDims d, double base, const T* x, T* y, double sign) {  // x may be y
  const int64_t half = d.dim / 2, n = d.batch * d.len * d.heads * half;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k % half, head_row = k / half, row = head_row / d.heads;
    const int64_t position = row % d.len + (d.offsets ? d.offsets[row / d.len] : 0);
    const double theta = sign * double(position) * exp2(-2.0 * double(i) / double(d.dim) * log2(base));
    double s, c;
    sincos(theta, &s, &c);
    const int64_t at = head_row * d.dim + i;
    const float a = to_float(x[at]), b = to_float(x[at + half]);
    const float cf = float(c), sf = float(s);
    y[at] = from_float<T>(a * cf - b * sf);
    y[at + half] = from_float<T>(a * sf + b * cf);
  }
}

template <typename T>
void launch(const RopeDims& d, double base, const T* x, T* y, double sign, cudaStream_t stream) {
  const int64_t n = d.batch * d.len * d.heads * (d.dim / 2);
  if (n <= 0) return;
  rope_kernel<T><<<blocks_for(n, 256), 256, 0, stream>>>(d, base, x, y, sign);
  ML_CUDA_CHECK_LAUNCH("rope");
}

}  // namespace

template <typename T>
void rope_forward(const RopeDims& dims, double base, const T* x, T* y, cudaStream_t stream) {
  launch(dims, base, x, y, 1.0, stream);
}

template <typename T>
void rope_backward(const RopeDims& dims, double base, const T* dy, T* dx, cudaStream_t stream) {
  launch(dims, base, dy, dx, -1.0, stream);
}

#define ML_INSTANTIATE(T)                                                                          \
  template void rope_forward<T>(const RopeDims&, double, const T*, T*, cudaStream_t);             \
  template void rope_backward<T>(const RopeDims&, double, const T*, T*, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
