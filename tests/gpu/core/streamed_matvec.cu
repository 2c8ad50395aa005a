#include "core/streamed_matvec.cuh"
#include "gpu/gpu_test.h"

using namespace gputest;

namespace {

constexpr int kRows = 4, kWarps = 8;

// Records what the loop hands a job: each column's dot products (out, row-major), how many times
// each column was finished, and finishes whose `ahead` was loaded for another column.
struct RecordingJob {
  const float* inputs;
  int64_t length;
  int rows;
  float* out;
  int64_t N;
  int* finished;
  int* wrong_ahead;

  struct Ahead {
    int column;
  };
  __device__ Ahead ahead(int64_t n, int) const { return {int(n)}; }
  __device__ void stage(float* staged, int64_t stride) const {
    ml::cuda::streamed::stage_rows(staged, stride, inputs, length, rows, length);
  }
  __device__ void finish(int64_t n, int lane, const float (&dots)[kRows], const Ahead& a) const {
    if (lane == 0) {
      atomicAdd(finished + n, 1);
      if (a.column != n) atomicAdd(wrong_ahead, 1);
    }
#pragma unroll
    for (int m = 0; m < kRows; ++m)
      if (m == lane && m < rows) out[m * N + n] = dots[m];
  }
};

template <int kParts>
__global__ void __launch_bounds__(32 * kWarps) record_kernel(RecordingJob job, const float* weights) {
  extern __shared__ uint4 staged[];
  ml::cuda::stream_columns<kRows, kWarps, kParts, true>(job, weights, job.N, job.length, job.length, job.rows,
                                                       reinterpret_cast<float*>(staged));
}

// N columns of `length` against `rows` inputs on an explicit grid (1 block takes every column
// group; more blocks take every grid-th one): each column finished once, with its own ahead, and
// its dots those of the fp64 product.
template <int kParts>
std::string check_grid(int64_t N, int64_t length, int rows, unsigned grid, uint64_t seed) {
  ml::Rng rng(seed);
  const auto W = rounded<float>(uniform(rng, N * length)), X = rounded<float>(uniform(rng, rows * length));
  std::vector<double> want(size_t(rows * N));
  for (int m = 0; m < rows; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double dot = 0;
      for (int64_t k = 0; k < length; ++k) dot += W[n * length + k] * X[m * length + k];
      want[m * N + n] = dot;
    }
  Dev<float> w(W), x(X), out(rows * N);
  Dev<int> finished(N), wrong(1);
  out.poison();
  check(cudaMemset(finished.get(), 0, N * sizeof(int)), "memset");
  check(cudaMemset(wrong.get(), 0, sizeof(int)), "memset");
  const size_t shared = size_t(rows * ml::cuda::streamed::row_stride(length)) * sizeof(float);
  record_kernel<kParts><<<grid, 32 * kWarps, shared>>>(
      RecordingJob{x.get(), length, rows, out.get(), N, finished.get(), wrong.get()}, w.get());
  sync("stream_columns");
  const auto counts = download_raw(finished);
  for (int64_t n = 0; n < N; ++n)
    EXPECT(counts[n] == 1, "column ", n, " finished ", counts[n], " times (parts ", kParts, ", grid ", grid, ")");
  EXPECT(download_raw(wrong)[0] == 0, download_raw(wrong)[0], " finishes got another column's ahead");
  Errors errors(1e-5);
  errors.add(mltest::str("dots ", N, "x", length, " rows ", rows, " parts ", kParts, " grid ", grid), out.download(),
             want);
  return errors.report();
}

}  // namespace

NATIVE_TEST(cuda_streamed_columns_finish_every_column_once_on_any_grid) {
  // Ragged column groups (37 columns, 8 or 2 per group); one round per slice, and slices of 3
  // rounds (3000 long on one warp, 9000 over four); a block taking every group, a few, one each.
  std::string out;
  for (unsigned grid : {1u, 3u, 5u}) out += check_grid<1>(37, 100, 3, grid, 1201 + grid) + "; ";
  out += check_grid<1>(37, 3000, 3, 1, 1211) + "; " + check_grid<1>(37, 3000, 2, 5, 1212) + "; ";
  out += check_grid<4>(37, 3000, 3, 2, 1213) + "; " + check_grid<4>(37, 9000, 1, 1, 1214) + "; ";
  return out + check_grid<4>(37, 9000, 1, 19, 1215);
}
