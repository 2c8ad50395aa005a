// Forward: one block per token copies its row. Backward: the table is cut into vocabulary
// slices × 128-column strips, one block each; every warp reads the ids 32 at a time, keeps
// those in its slice (a ballot) and adds their rows in token order. Each dweight element
// thus has one writer and a fixed summation order.
#include "../../core/chained_launch.cuh"
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "embedding.h"

namespace ml::cuda {
namespace {

constexpr int kColumns = 128;  // columns per backward block: 4 warps of 32

template <typename T>
__global__ void embedding_forward_kernel(const int32_t* __restrict__ ids, const T* __restrict__ weight,
                                         T* __restrict__ out, int64_t dim) {
  chain_wait();
  const int64_t t = blockIdx.x;
  const T* row = weight + int64_t(ids[t]) * dim;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) out[t * dim + j] = row[j];
}

template <typename T>
__global__ void embedding_backward_kernel(const int32_t* __restrict__ ids, const T* __restrict__ dout,
                                          float* __restrict__ dweight, int64_t tokens, int64_t dim,
                                          int64_t rows_per_slice) {
  const int lane = threadIdx.x & 31;
  const int64_t col = int64_t(blockIdx.x) * kColumns + threadIdx.x;
  const int64_t v0 = int64_t(blockIdx.y) * rows_per_slice, v1 = v0 + rows_per_slice;
  const bool has_col = col < dim;
  for (int64_t t0 = 0; t0 < tokens; t0 += 32) {
    const int64_t t = t0 + lane;
    const int32_t id = t < tokens ? ids[t] : -1;
    unsigned hits = __ballot_sync(0xffffffffu, id >= v0 && id < v1);
    while (hits) {  // lowest lane first: token order
      const int src = __ffs(hits) - 1;
      hits &= hits - 1;
      const int64_t row = __shfl_sync(0xffffffffu, id, src);
      if (has_col) dweight[row * dim + col] += to_float(dout[(t0 + src) * dim + col]);
    }
  }
}

}  // namespace

template <typename T>
void embedding_forward(const int32_t* ids, const T* weight, T* out, int64_t tokens, int64_t dim, cudaStream_t stream) {
  if (tokens <= 0 || dim <= 0) return;
  ML_CHECK(tokens <= 0x7fffffff, "embedding_forward: ", tokens, " tokens exceed one launch");
  launch_chained("embedding_forward", embedding_forward_kernel<T>, dim3(unsigned(tokens)), dim3(128), 0, stream, ids,
                 weight, out, dim);
}

template <typename T>
void embedding_backward(const int32_t* ids, const T* dout, float* dweight, int64_t tokens, int64_t dim,
                        int64_t vocab, cudaStream_t stream) {
  if (tokens <= 0 || dim <= 0 || vocab <= 0) return;
  // About 512 blocks in all: enough to fill the GPU, few enough that the id scans stay cheap.
  const int64_t strips = (dim + kColumns - 1) / kColumns;
  const int64_t slices = std::min<int64_t>(vocab, std::max<int64_t>(1, std::min<int64_t>(65535, 512 / strips)));
  const int64_t rows_per_slice = (vocab + slices - 1) / slices;
  const dim3 grid(unsigned(strips), unsigned((vocab + rows_per_slice - 1) / rows_per_slice));
  embedding_backward_kernel<T><<<grid, kColumns, 0, stream>>>(ids, dout, dweight, tokens, dim, rows_per_slice);
  ML_CUDA_CHECK_LAUNCH("embedding_backward");
}

#define ML_INSTANTIATE(T)                                                                                      \
  template void embedding_forward<T>(const int32_t*, const T*, T*, int64_t, int64_t, cudaStream_t);             \
  template void embedding_backward<T>(const int32_t*, const T*, float*, int64_t, int64_t, int64_t, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
