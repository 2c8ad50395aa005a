// Row-major GEMM through cuBLASLt (column-major): C = op(A)·op(B) in row-major is
// Cᵀ = op(B)ᵀ·op(A)ᵀ in column-major, so B goes first and M, N swap; a row-major matrix
// with leading dimension ld is its transpose in column-major with the same ld.
// Plans (descriptors + the heuristic's algorithm) are cached per shape, batch, types and
// pointer alignment; each stream gets its own workspace so that streams never share one.
// A strided batch sets cuBLASLt's batch count and batch offsets on all three layouts.
// A product of at most four rows against Bᵀ (decode steps' linear layers and head) is a
// matrix–vector kernel instead, reading B once.
#include <cuda_bf16.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>

#include "../../core/cublaslt.h"
#include "../../core/chained_launch.cuh"
#include "../../core/cuda_check.h"
#include "../../core/cuda_math.cuh"
#include "../../core/device_allocator.h"
#include "../../core/streamed_matvec.cuh"
#include "gemm.h"

namespace ml::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

#define ML_LT_CHECK(call)                                                                       \
  do {                                                                                          \
    const lt::Status s_ = (call);                                                               \
    ML_CHECK(s_ == 0, "gemm (cuBLASLt): ", #call, " returned ", lt::status_name(s_), " (", s_, ")"); \
  } while (0)

template <typename T>
constexpr int lt_type() {
  return std::is_same_v<T, float> ? lt::kF32 : lt::kBF16;
}

// Largest power of two (≤ 256) dividing the address of every batch member (the first and
// every stride_bytes after it): what cuBLASLt may assume.
uint32_t alignment_of(const void* p, uint64_t stride_bytes) {
  const uintptr_t bits = reinterpret_cast<uintptr_t>(p) | uintptr_t(stride_bytes);
  uint32_t a = 256;
  while (a > 1 && (bits % a) != 0) a >>= 1;
  return a;
}

// The shape of one product, then the batch (count and the three strides).
using GemmShape = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool>;
using Batch = std::tuple<int64_t, int64_t, int64_t, int64_t>;
using PlanKey = std::tuple<GemmShape, Batch, int, int, uint32_t, uint32_t, uint32_t>;

struct Plan {
  lt::MatmulDesc desc = nullptr;
  lt::Layout a = nullptr, b = nullptr, c = nullptr;
  lt::MatmulAlgo algo{};
};

struct Context {
  std::mutex mutex;
  lt::Handle handle = nullptr;
  std::map<PlanKey, Plan> plans;
  std::map<cudaStream_t, DeviceBuffer<uint8_t>> workspaces;
};

Context& context() {
  static Context* ctx = new Context();  // lives as long as the process: plans hold library objects
  return *ctx;
}

void set_batch(const lt::Api& api, lt::Layout layout, int64_t batch, int64_t stride) {
  const int32_t count = int32_t(batch);
  ML_LT_CHECK(api.layout_set_attribute(layout, lt::kLayoutBatchCount, &count, sizeof(count)));
  ML_LT_CHECK(api.layout_set_attribute(layout, lt::kLayoutStridedBatchOffset, &stride, sizeof(stride)));
}

Plan make_plan(const lt::Api& api, Context& ctx, const PlanKey& key) {
  const auto [shape, batching, in_type, out_type, align_in, align_b, align_c] = key;
  const auto [M, N, K, lda, ldb, ldc, ta, tb] = shape;
  const auto [batch, stride_a, stride_b, stride_c] = batching;
  Plan p;
  ML_LT_CHECK(api.matmul_desc_create(&p.desc, lt::kComputeF32, lt::kF32));
  // cuBLAS's A is our B (first operand of the column-major product), cuBLAS's B our A.
  const int32_t op_first = tb ? lt::kOpT : lt::kOpN, op_second = ta ? lt::kOpT : lt::kOpN;
  ML_LT_CHECK(api.matmul_desc_set_attribute(p.desc, lt::kDescTransA, &op_first, sizeof(op_first)));
  ML_LT_CHECK(api.matmul_desc_set_attribute(p.desc, lt::kDescTransB, &op_second, sizeof(op_second)));
  ML_LT_CHECK(api.layout_create(&p.a, in_type, tb ? K : N, tb ? N : K, ldb));
  ML_LT_CHECK(api.layout_create(&p.b, in_type, ta ? M : K, ta ? K : M, lda));
  ML_LT_CHECK(api.layout_create(&p.c, out_type, N, M, ldc));
  if (batch > 1) {
    set_batch(api, p.a, batch, stride_b);
    set_batch(api, p.b, batch, stride_a);
    set_batch(api, p.c, batch, stride_c);
  }

  lt::Preference pref = nullptr;
  ML_LT_CHECK(api.preference_create(&pref));
  const uint64_t workspace = kWorkspaceBytes;
  ML_LT_CHECK(api.preference_set_attribute(pref, lt::kPrefMaxWorkspaceBytes, &workspace, sizeof(workspace)));
  ML_LT_CHECK(api.preference_set_attribute(pref, lt::kPrefMinAlignA, &align_b, sizeof(uint32_t)));
  ML_LT_CHECK(api.preference_set_attribute(pref, lt::kPrefMinAlignB, &align_in, sizeof(uint32_t)));
  ML_LT_CHECK(api.preference_set_attribute(pref, lt::kPrefMinAlignC, &align_c, sizeof(uint32_t)));
  ML_LT_CHECK(api.preference_set_attribute(pref, lt::kPrefMinAlignD, &align_c, sizeof(uint32_t)));
  lt::HeuristicResult result{};
  int returned = 0;
  const lt::Status s = api.algo_get_heuristic(ctx.handle, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &returned);
  api.preference_destroy(pref);
  ML_CHECK(s == 0 && returned > 0, "gemm (cuBLASLt): no algorithm for M=", M, " N=", N, " K=", K, " trans_a=", ta,
           " trans_b=", tb, " lda=", lda, " ldb=", ldb, " ldc=", ldc, " batch=", batch, " (", lt::status_name(s),
           ")");
  p.algo = result.algo;
  return p;
}

template <typename TOut>
__global__ void scale_kernel(TOut* C, int64_t M, int64_t N, int64_t ldc, float beta) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < M * N; i += int64_t(gridDim.x) * blockDim.x) {
    TOut* c = C + (i / N) * ldc + i % N;
    *c = from_float<TOut>(beta == 0.f ? 0.f : beta * to_float(*c));
  }
}


// A product with at most kGemvRows rows of A against Bᵀ (a linear layer's forward at a decode
// step's batch), streamed (core/streamed_matvec.cuh): each column n is a row of B, read once for
// all rows of A, which the block stages in shared memory; kParts warps per column split K and add
// their sums in a fixed order, where a GEMM's tiles would mostly multiply padding. kWeightsFirst:
// B is weights no running kernel writes, so its loads start before the chained launch's wait and
// the matrix streams in while the kernel before ends.
constexpr int kGemvRows = 4, kGemvWarps = 8;

template <typename TIn, typename TOut>
struct GemvJob {
  const TIn* A;
  int64_t lda;
  int rows;
  int64_t K;
  float alpha, beta;
  TOut* C;
  int64_t ldc;

  struct Ahead {};
  __device__ Ahead ahead(int64_t, int) const { return {}; }
  __device__ void stage(TIn* staged, int64_t stride) const { streamed::stage_rows(staged, stride, A, lda, rows, K); }
  __device__ void finish(int64_t n, int lane, const float (&dots)[kGemvRows], Ahead) const {
#pragma unroll
    for (int m = 0; m < kGemvRows; ++m) {  // lane m writes row m
      if (m != lane || m >= rows) continue;
      TOut* c = C + m * ldc + n;
      *c = from_float<TOut>(beta == 0.f ? alpha * dots[m] : alpha * dots[m] + beta * to_float(*c));
    }
  }
};

// 4 blocks per SM (64 registers) for bf16: at batch 1 the loads in flight set the speed, and an
// H200 decoded 1.4b 12% faster with them than at the 3 blocks of unconstrained registers.
template <int kParts, bool kWeightsFirst, typename TIn, typename TOut>
__global__ void __launch_bounds__(32 * kGemvWarps, sizeof(TIn) == 2 ? 4 : 2)
    gemv_kernel(int64_t M, int64_t N, int64_t K, float alpha, const TIn* __restrict__ A, int64_t lda,
                int64_t stride_a, const TIn* __restrict__ B, int64_t ldb, int64_t stride_b, float beta,
                TOut* __restrict__ C, int64_t ldc, int64_t stride_c) {
  extern __shared__ uint4 staged_words[];
  const int64_t g = blockIdx.y;
  const GemvJob<TIn, TOut> job{A + g * stride_a, lda, int(M), K, alpha, beta, C + g * stride_c, ldc};
  stream_columns<kGemvRows, kGemvWarps, kParts, kWeightsFirst>(job, B + g * stride_b, N, K, ldb, int(M),
                                                              reinterpret_cast<TIn*>(staged_words));
}

template <int kParts, typename TIn, typename TOut>
void launch_gemv(int64_t M, int64_t N, int64_t K, float alpha, const TIn* A, int64_t lda, int64_t stride_a,
                 const TIn* B, int64_t ldb, int64_t stride_b, float beta, TOut* C, int64_t ldc, int64_t stride_c,
                 int64_t batch, bool b_is_weight, cudaStream_t stream) {
  constexpr int kColumns = kGemvWarps / kParts, kThreads = 32 * kGemvWarps;
  const auto kernel = b_is_weight ? gemv_kernel<kParts, true, TIn, TOut> : gemv_kernel<kParts, false, TIn, TOut>;
  const size_t staged = streamed::staged_bytes(M, K, sizeof(TIn));
  const dim3 grid(streamed_grid(reinterpret_cast<const void*>(kernel), kThreads, staged, (N + kColumns - 1) / kColumns,
                                batch),
                  unsigned(batch));
  launch_chained("gemm (gemv)", kernel, grid, dim3(kThreads), staged, stream, M, N, K, alpha, A, lda, stride_a, B,
                 ldb, stride_b, beta, C, ldc, stride_c);
}

}  // namespace

template <typename TIn, typename TOut>
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const TIn* A,
                          int64_t lda, int64_t stride_a, const TIn* B, int64_t ldb, int64_t stride_b, float beta,
                          TOut* C, int64_t ldc, int64_t stride_c, int64_t batch, cudaStream_t stream,
                          bool b_is_weight) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  ML_CHECK(batch <= INT32_MAX, "gemm: batch ", batch, " exceeds int32");
  if (K <= 0) {  // no products: C = beta·C, as the CPU reference
    for (int64_t i = 0; i < batch; ++i) {
      scale_kernel<TOut><<<blocks_for(M * N, 256), 256, 0, stream>>>(C + i * stride_c, M, N, ldc, beta);
      ML_CUDA_CHECK_LAUNCH("gemm");
    }
    return;
  }
  if (!trans_a && trans_b && M <= kGemvRows && batch <= 65535 &&
      streamed::staged_bytes(M, K, sizeof(TIn)) <= streamed::kMaxStagedBytes) {
    const int parts = streamed::warps_per_column(N * batch);
    const auto run = parts == 1   ? launch_gemv<1, TIn, TOut>
                     : parts == 2 ? launch_gemv<2, TIn, TOut>
                     : parts == 4 ? launch_gemv<4, TIn, TOut>
                                  : launch_gemv<8, TIn, TOut>;
    run(M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c, batch, b_is_weight, stream);
    return;
  }
  if (batch == 1) stride_a = stride_b = stride_c = 0;  // one plan per shape, whatever the caller's strides
  const lt::Api& api = lt::api();
  Context& ctx = context();
  std::lock_guard<std::mutex> lock(ctx.mutex);
  if (!ctx.handle) ML_LT_CHECK(api.create(&ctx.handle));
  const PlanKey key{GemmShape{M, N, K, lda, ldb, ldc, trans_a, trans_b},
                    Batch{batch, stride_a, stride_b, stride_c},
                    lt_type<TIn>(),
                    lt_type<TOut>(),
                    alignment_of(A, uint64_t(stride_a) * sizeof(TIn)),
                    alignment_of(B, uint64_t(stride_b) * sizeof(TIn)),
                    alignment_of(C, uint64_t(stride_c) * sizeof(TOut))};
  auto it = ctx.plans.find(key);
  if (it == ctx.plans.end()) it = ctx.plans.emplace(key, make_plan(api, ctx, key)).first;
  auto ws = ctx.workspaces.find(stream);
  if (ws == ctx.workspaces.end())
    ws = ctx.workspaces.emplace(stream, DeviceBuffer<uint8_t>(int64_t(kWorkspaceBytes), "gemm workspace")).first;
  const Plan& p = it->second;
  ML_LT_CHECK(api.matmul(ctx.handle, p.desc, &alpha, B, p.a, A, p.b, &beta, C, p.c, C, p.c, &p.algo, ws->second.get(),
                         kWorkspaceBytes, stream));
  ML_CUDA_CHECK_LAUNCH("gemm");
}

template <typename TIn, typename TOut>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const TIn* A, int64_t lda,
          const TIn* B, int64_t ldb, float beta, TOut* C, int64_t ldc, cudaStream_t stream, bool b_is_weight) {
  gemm_strided_batched<TIn, TOut>(trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1, stream,
                                  b_is_weight);
}

#define ML_INSTANTIATE(TIn, TOut)                                                                                  \
  template void gemm<TIn, TOut>(bool, bool, int64_t, int64_t, int64_t, float, const TIn*, int64_t, const TIn*,    \
                                int64_t, float, TOut*, int64_t, cudaStream_t, bool);                              \
  template void gemm_strided_batched<TIn, TOut>(bool, bool, int64_t, int64_t, int64_t, float, const TIn*, int64_t, \
                                                int64_t, const TIn*, int64_t, int64_t, float, TOut*, int64_t,     \
                                                int64_t, int64_t, cudaStream_t, bool);
ML_INSTANTIATE(float, float)
ML_INSTANTIATE(bf16, bf16)
ML_INSTANTIATE(bf16, float)

}  // namespace ml::cuda
