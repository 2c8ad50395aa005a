// A fixed pool of worker threads for the CPU backend. parallel_for splits [0, n) into
// contiguous chunks, one per worker, and runs them with the calling thread taking part.
#pragma once
#include <cstdint>
#include <functional>

namespace ml {

// Number of threads the pool uses (MAMBALAB_NUM_THREADS, else the hardware's count).
int num_threads();

// Calls fn(begin, end) over disjoint chunks covering [0, n). Chunks are at least `grain`
// long. Blocks until all chunks are done; rethrows the first exception a chunk threw.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Index of the calling worker inside the pool, in [0, num_threads()); stable during a chunk.
int thread_index();

}  // namespace ml
