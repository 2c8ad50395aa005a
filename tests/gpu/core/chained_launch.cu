#include "core/chained_launch.cuh"
#include "gpu/gpu_test.h"

using namespace gputest;

namespace {

// Each element of dst ← its element of src + 1, after a delay that grows with the block index,
// so that the later blocks of a kernel are still writing when the next kernel could start.
__global__ void add_one_late(const int* __restrict__ src, int* __restrict__ dst, int64_t n, int delay_cycles) {
  ml::cuda::chain_wait();
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const long long until = clock64() + (long long)delay_cycles * (blockIdx.x % 8);
  while (clock64() < until) {
  }
  if (i < n) dst[i] = src[i] + 1;
}

// `hops` chained kernels ping-ponging between a and b, each reading what the one before wrote.
void chain(int* a, int* b, int64_t n, int hops, cudaStream_t stream) {
  for (int k = 0; k < hops; ++k) {
    const int* src = k % 2 == 0 ? a : b;
    int* dst = k % 2 == 0 ? b : a;
    ml::cuda::launch_chained("chained launch test", add_one_late, dim3(unsigned((n + 255) / 256)), dim3(256), 0,
                             stream, src, dst, n, 2000);
  }
}

std::string expect_all(const Dev<int>& buffer, int want, const std::string& what) {
  const auto got = buffer.download();
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT(got[i] == double(want), what, ": element ", i, " is ", got[i], ", not ", want, " (a kernel read before the one "
           "before it had written)");
  return mltest::str(what, ": ", got.size(), " elements all ", want);
}

}  // namespace

// 64 kernels each reading the previous one's output, launched in a stream and replayed from a
// graph: every value must have passed through all of them (a chained kernel that ran ahead of
// the one before would leave stale values).
NATIVE_TEST(cuda_chained_launches_wait_for_the_kernel_before) {
  const int64_t n = int64_t(1) << 20;
  const int hops = 64;
  cudaStream_t stream;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  Dev<int> a(std::vector<double>(size_t(n), 0.0)), b(n);
  chain(a.get(), b.get(), n, hops, stream);
  check(cudaStreamSynchronize(stream), "chain in a stream");
  const std::string streamed = expect_all(a, hops, "in a stream");

  cudaGraph_t graph;
  cudaGraphExec_t exec;
  check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "capture");
  chain(a.get(), b.get(), n, hops, stream);
  check(cudaStreamEndCapture(stream, &graph), "end capture");
  check(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
  for (int replay = 0; replay < 3; ++replay) check(cudaGraphLaunch(exec, stream), "replay");
  check(cudaStreamSynchronize(stream), "graph replays");
  const std::string replayed = expect_all(a, 4 * hops, "then 3 graph replays");
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  return mltest::str(ml::cuda::chained_launches() ? "chained" : "plain (this GPU or MAMBALAB_CHAINED_LAUNCH=0)",
                     ": ", streamed, "; ", replayed);
}
