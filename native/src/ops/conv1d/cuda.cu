// A thread owns a few consecutive channels (a 16-byte access a step forward, 8 bytes backward,
// whose state per channel is twice the forward's) over a run of kSteps time steps and slides a
// window of the last width−1 inputs along it, so each input is read once per run. Steps are loaded kAhead at a time before any is used: with one 2-byte load
// a step and each step waiting on its own load, the kernels were latency-bound at a third of
// the memory bandwidth. The backward recomputes the pre-activation, pushes each step's
// gradient into a ring of the width outputs it touches, and writes an input gradient once no
// later step can touch it.
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/device_allocator.h"
#include "../../core/partials.h"
#include "../../core/vector_io.cuh"
#include "conv1d.h"

namespace ml::cuda {
namespace {

constexpr int kThreads = 128;  // threads per block
constexpr int kSteps = 64;     // time steps per thread
constexpr int kAhead = 8;      // steps whose loads are in flight together

// Channels per thread: one access of kBytes a step.
template <typename T, int kBytes>
constexpr int kVec = kBytes / int(sizeof(T));
constexpr int kForwardBytes = 16, kBackwardBytes = 8;

template <int V>
struct Span {
  int64_t b, c, t0, t1;  // batch, first channel, time steps [t0, t1)
  int valid;             // of the thread's V channels, how many exist (0: none)

  __device__ explicit Span(const Conv1dDims& d) {
    b = blockIdx.z;
    c = (int64_t(blockIdx.x) * kThreads + threadIdx.x) * V;
    t0 = int64_t(blockIdx.y) * kSteps;
    t1 = min(d.len, t0 + kSteps);
    const int64_t left = d.dim - c;
    valid = left <= 0 ? 0 : left >= V ? V : int(left);
  }
  __device__ int64_t at(const Conv1dDims& d, int64_t t) const { return (b * d.len + t) * d.dim + c; }
};

// Per channel of the thread: the weights w[k][v] and the window hist[k][v] (x at the step
// being computed − (W−1) + k; before t = 0, 0).
template <int W, typename T, int V>
struct Window {
  float w[W][V], hist[W][V], bias[V];

  __device__ Window(const Conv1dDims& d, const Span<V>& s, const T* x, const float* weight, const float* b) {
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const bool ok = v < s.valid;
      bias[v] = ok && b ? b[s.c + v] : 0.f;
#pragma unroll
      for (int k = 0; k < W; ++k) w[k][v] = ok ? weight[(s.c + v) * W + k] : 0.f;
    }
#pragma unroll
    for (int k = 0; k < W - 1; ++k) {
      const int64_t src = s.t0 - (W - 1) + k;
      Run<T, V> r;
      load_run(r, x + (src >= 0 ? s.at(d, src) : 0), src >= 0 ? s.valid : 0);
#pragma unroll
      for (int v = 0; v < V; ++v) hist[k][v] = r.at(v);
    }
  }
  // The pre-activation of the step whose inputs are xt; the window then slides by one.
  __device__ void step(const Run<T, V>& xt, float (&pre)[V]) {
#pragma unroll
    for (int v = 0; v < V; ++v) {
      hist[W - 1][v] = xt.at(v);
      float acc = bias[v];
#pragma unroll
      for (int k = 0; k < W; ++k) acc = fmaf(w[k][v], hist[k][v], acc);
      pre[v] = acc;
    }
  }
  __device__ void slide() {
#pragma unroll
    for (int k = 0; k < W - 1; ++k)
#pragma unroll
      for (int v = 0; v < V; ++v) hist[k][v] = hist[k + 1][v];
  }
};

template <int W, typename T>
__global__ void __launch_bounds__(kThreads)
    conv1d_forward_kernel(Conv1dDims d, const T* __restrict__ x, const float* __restrict__ weight,
                          const float* __restrict__ bias, T* __restrict__ y, bool apply_silu) {
  constexpr int V = kVec<T, kForwardBytes>;
  const Span<V> s(d);
  if (s.valid == 0) return;
  Window<W, T, V> win(d, s, x, weight, bias);
  for (int64_t t = s.t0; t < s.t1; t += kAhead) {
    Run<T, V> xs[kAhead];
#pragma unroll
    for (int u = 0; u < kAhead; ++u)
      if (t + u < s.t1) load_run(xs[u], x + s.at(d, t + u), s.valid);
#pragma unroll
    for (int u = 0; u < kAhead; ++u) {
      if (t + u >= s.t1) break;
      float out[V];
      win.step(xs[u], out);
#pragma unroll
      for (int v = 0; v < V; ++v) out[v] = apply_silu ? silu_fast(out[v]) : out[v];
      store_run(y + s.at(d, t + u), out, s.valid);
      win.slide();
    }
  }
}

template <int W, typename T>
__global__ void __launch_bounds__(kThreads)
    conv1d_backward_kernel(Conv1dDims d, const T* __restrict__ x, const float* __restrict__ weight,
                           const float* __restrict__ bias, const T* __restrict__ dy, T* __restrict__ dx,
                           float* __restrict__ dweight_partial, float* __restrict__ dbias_partial, bool apply_silu) {
  constexpr int V = kVec<T, kBackwardBytes>;
  const Span<V> s(d);
  if (s.valid == 0) return;
  Window<W, T, V> win(d, s, x, weight, bias);
  float ring[W][V], dw[W][V], db[V];  // ring[j]: gradient of the input at step s − (W−1) + j
#pragma unroll
  for (int v = 0; v < V; ++v) {
    db[v] = 0.f;
#pragma unroll
    for (int k = 0; k < W; ++k) ring[k][v] = dw[k][v] = 0.f;
  }
  // Steps up to W−1 past the run still send gradient into its inputs.
  const int64_t end = min(d.len, s.t1 + W - 1);
  for (int64_t t = s.t0; t < end; t += kAhead) {
    Run<T, V> xs[kAhead], gs[kAhead];
#pragma unroll
    for (int u = 0; u < kAhead; ++u) {
      if (t + u >= end) break;
      load_run(xs[u], x + s.at(d, t + u), s.valid);
      load_run(gs[u], dy + s.at(d, t + u), s.valid);
    }
#pragma unroll
    for (int u = 0; u < kAhead; ++u) {
      const int64_t step = t + u;
      if (step >= end) break;
      float pre[V];
      win.step(xs[u], pre);
      const bool own = step < s.t1;  // this run's own steps own the weight gradient of their products
#pragma unroll
      for (int v = 0; v < V; ++v) {
        const float g = gs[u].at(v) * (apply_silu ? silu_grad_fast(pre[v]) : 1.f);
#pragma unroll
        for (int k = 0; k < W; ++k) ring[k][v] = fmaf(win.w[k][v], g, ring[k][v]);
        if (own) {
#pragma unroll
          for (int k = 0; k < W; ++k) dw[k][v] = fmaf(g, win.hist[k][v], dw[k][v]);
          db[v] += g;
        }
      }
      const int64_t done = step - (W - 1);  // no later step reaches this input
      if (done >= s.t0) store_run(dx + s.at(d, done), ring[0], s.valid);
      win.slide();
#pragma unroll
      for (int v = 0; v < V; ++v) {
#pragma unroll
        for (int k = 0; k < W - 1; ++k) ring[k][v] = ring[k + 1][v];
        ring[W - 1][v] = 0.f;
      }
    }
  }
#pragma unroll
  for (int j = 0; j < W - 1; ++j) {  // the last inputs of the sequence: nothing after them
    const int64_t p = end - (W - 1) + j;
    if (p >= s.t0 && p < s.t1) store_run(dx + s.at(d, p), ring[j], s.valid);
  }
  const int64_t part = s.b * gridDim.y + blockIdx.y;
#pragma unroll
  for (int v = 0; v < V; ++v) {
    if (v >= s.valid) break;
#pragma unroll
    for (int k = 0; k < W; ++k) dweight_partial[(part * d.dim + s.c + v) * W + k] = dw[k][v];
    dbias_partial[part * d.dim + s.c + v] = db[v];
  }
}

template <int V>
dim3 grid_for(const Conv1dDims& d, const char* op) {
  ML_CHECK(d.width >= 1 && d.width <= 4, op, ": width ", d.width, " is not supported on CUDA (1 to 4)");
  ML_CHECK(d.batch <= 65535 && (d.len + kSteps - 1) / kSteps <= 65535, op, ": batch ", d.batch, " × len ", d.len,
           " exceed one launch");
  constexpr int64_t per_block = int64_t(kThreads) * V;
  return dim3(unsigned((d.dim + per_block - 1) / per_block), unsigned((d.len + kSteps - 1) / kSteps),
              unsigned(d.batch));
}

}  // namespace

template <typename T>
void conv1d_forward(const Conv1dDims& d, const T* x, const float* weight, const float* bias, T* y, bool apply_silu,
                    cudaStream_t stream) {
  if (d.batch <= 0 || d.len <= 0 || d.dim <= 0) return;
  const dim3 grid = grid_for<kVec<T, kForwardBytes>>(d, "conv1d_forward");
  switch (d.width) {
    case 1: conv1d_forward_kernel<1, T><<<grid, kThreads, 0, stream>>>(d, x, weight, bias, y, apply_silu); break;
    case 2: conv1d_forward_kernel<2, T><<<grid, kThreads, 0, stream>>>(d, x, weight, bias, y, apply_silu); break;
    case 3: conv1d_forward_kernel<3, T><<<grid, kThreads, 0, stream>>>(d, x, weight, bias, y, apply_silu); break;
    default: conv1d_forward_kernel<4, T><<<grid, kThreads, 0, stream>>>(d, x, weight, bias, y, apply_silu); break;
  }
  ML_CUDA_CHECK_LAUNCH("conv1d_forward");
}

template <typename T>
void conv1d_backward(const Conv1dDims& d, const T* x, const float* weight, const float* bias, const T* dy, T* dx,
                     float* dweight, float* dbias, bool apply_silu, cudaStream_t stream) {
  if (d.batch <= 0 || d.len <= 0 || d.dim <= 0) return;
  const dim3 grid = grid_for<kVec<T, kBackwardBytes>>(d, "conv1d_backward");
  const int64_t parts = d.batch * int64_t(grid.y);
  DeviceBuffer<float> pw(parts * d.dim * d.width, "conv1d_backward"), pb(parts * d.dim, "conv1d_backward");
#define ML_CONV_BWD(W)                                                                                           \
  conv1d_backward_kernel<W, T><<<grid, kThreads, 0, stream>>>(d, x, weight, bias, dy, dx, pw.get(), pb.get(), \
                                                               apply_silu)
  switch (d.width) {
    case 1: ML_CONV_BWD(1); break;
    case 2: ML_CONV_BWD(2); break;
    case 3: ML_CONV_BWD(3); break;
    default: ML_CONV_BWD(4); break;
  }
#undef ML_CONV_BWD
  ML_CUDA_CHECK_LAUNCH("conv1d_backward");
  sum_partials(pw.get(), parts, d.dim * d.width, dweight, true, stream, "conv1d_backward");
  if (dbias) sum_partials(pb.get(), parts, d.dim, dbias, true, stream, "conv1d_backward");
}

#define ML_INSTANTIATE(T)                                                                                         \
  template void conv1d_forward<T>(const Conv1dDims&, const T*, const float*, const float*, T*, bool, cudaStream_t); \
  template void conv1d_backward<T>(const Conv1dDims&, const T*, const float*, const float*, const T*, T*, float*,  \
                                   float*, bool, cudaStream_t);
ML_INSTANTIATE(float)
ML_INSTANTIATE(bf16)

}  // namespace ml::cuda
