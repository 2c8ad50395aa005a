// NCCL data parallel (dist/nccl.h): sums of GPU memory in place, one rank per GPU. A world of one
// runs on any GPU host; NCCL must be found there (these tests fail naming every place searched
// when it is not). The cases of two ranks (threads here, each on its own GPU, as the processes of
// `train --gpus 2` are) need two GPUs: with one they say "not run" and why.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <thread>

#include "dist/nccl.h"
#include "dist/nccl_api.h"
#include "gpu/gpu_test.h"

using namespace gputest;

namespace {

std::string rendezvous(const char* name) {
  return "/dev/shm/mambalab-gpu-test-" + std::string(name) + "-" + std::to_string(getpid());
}

int visible_gpus() {
  int count = 0;
  check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  return count;
}

// The library the tests use, loaded once (a missing one fails each test with the search).
std::string nccl_library() {
  const ml::nccl::Api& api = ml::nccl::api();
  return mltest::str(api.library, " (NCCL ", ml::nccl::version_name(api.version), ")");
}

// Runs body(rank, collective, stream) for ranks 0..world-1 at once, rank r a thread on GPU r
// with its own stream; returns each rank's error ("" when it ended well).
std::vector<std::string> on_gpus(const char* name, int world, double timeout_s,
                                 const std::function<void(int, ml::Collective&, cudaStream_t)>& body) {
  std::vector<std::string> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  const std::string path = rendezvous(name);
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      cudaStream_t stream = nullptr;
      try {
        check(cudaSetDevice(r), "cudaSetDevice");
        check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
        const auto collective = ml::make_nccl_collective(path, 41, r, world, r, timeout_s);
        body(r, *collective, stream);
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
      if (stream) cudaStreamDestroy(stream);
    });
  for (auto& t : threads) t.join();
  return errors;
}

void expect_none(const std::vector<std::string>& errors) {
  for (size_t r = 0; r < errors.size(); ++r) EXPECT(errors[r].empty(), "rank ", r, ": ", errors[r]);
}

std::vector<double> values(int rank, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = std::sin(0.001 * double(i) + rank) * (1 + rank);
  return v;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string not_run(int gpus) {
  return mltest::str("NOT RUN: 2 ranks need 2 GPUs, ", gpus, " visible (run on a host with 2 or more)");
}

}  // namespace

// One rank: a sum on the device is the rank's own values, times its scale, floats and doubles,
// to the last element (an odd count: NCCL's own pre-multiplied sum once missed the tail here);
// host sums pass as they are.
NATIVE_TEST(nccl_world_of_one_sums_on_the_device) {
  const std::string library = nccl_library();
  const int64_t n = 100003;
  const auto errors = on_gpus("one", 1, 60, [&](int, ml::Collective& c, cudaStream_t stream) {
    EXPECT(c.device_sums() && c.world() == 1 && c.rank() == 0, "a world of one on GPU 0");
    const auto v = rounded<float>(values(0, n));
    Dev<float> f(v);
    Dev<double> d(v);
    c.all_reduce_sum_device(f.get(), n, stream, 0.5);
    c.all_reduce_sum_device(d.get(), n, stream, 1.0);
    const auto got_f = f.download(), got_d = d.download();
    for (int64_t i = 0; i < n; ++i) {
      EXPECT(got_f[size_t(i)] == v[size_t(i)] * 0.5, "float ", i, ": ", got_f[size_t(i)], " vs ", v[size_t(i)] * 0.5);
      EXPECT(got_d[size_t(i)] == v[size_t(i)], "double ", i, ": ", got_d[size_t(i)], " vs ", v[size_t(i)]);
    }
    double host = 2.5;
    c.all_reduce_sum(&host, 1);
    EXPECT(host == 2.5, "host sum ", host);
  });
  const char* nvls = std::getenv("NCCL_NVLS_ENABLE");
  EXPECT(nvls && std::string(nvls) == "0", "NCCL_NVLS_ENABLE is ", nvls ? nvls : "unset", " once NCCL is loaded");
  expect_none(errors);
  return mltest::str(library, ": ", n, " floats × 0.5 and doubles summed in place, exact");
}

namespace {

// Spins for about `cycles` clock ticks, then writes base + i into data: work a started sum must
// wait for (were it to run first, it would sum the old values and these would land after it).
__global__ void fill_late(double* data, int64_t n, double base, long long cycles) {
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    data[i] = base + double(i);
}

// What the trainer's buckets do (train/step.h): each range of `data` written by a late kernel on
// `stream`, then its sum started with the rank's scale; the last range without a sum of its own
// in between; then the wait. Ranges back to front, as a backward finishes them.
void late_buckets(ml::Collective& c, double* data, const std::vector<int64_t>& bounds, int rank, double scale,
                  cudaStream_t stream) {
  for (size_t b = bounds.size() - 1; b > 0; --b) {
    const int64_t begin = bounds[b - 1], n = bounds[b] - begin;
    fill_late<<<4, 256, 0, stream>>>(data + begin, n, 1000.0 * (rank + 1) + double(begin), 20000000);
    check(cudaGetLastError(), "fill_late");
    c.start_sum_device(data + begin, n, stream, scale);
  }
  c.wait_sums_device(stream);
}

}  // namespace

// One rank: sums started behind late work on the rank's stream (the trainer's buckets) sum what
// that work wrote, each scaled, to the last element; a plain sum after the wait runs as before.
NATIVE_TEST(nccl_world_of_one_sums_buckets_after_the_work_before_them) {
  const std::string library = nccl_library();
  const std::vector<int64_t> bounds{0, 1001, 50000, 100003};
  const int64_t n = bounds.back();
  std::vector<double> got, again;
  const auto errors = on_gpus("buckets-one", 1, 60, [&](int, ml::Collective& c, cudaStream_t stream) {
    Dev<double> d(std::vector<double>(size_t(n), -1.0));
    late_buckets(c, d.get(), bounds, 0, 0.5, stream);
    got = d.download();
    c.all_reduce_sum_device(d.get(), n, stream, 2.0);
    again = d.download();
  });
  expect_none(errors);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT(got[size_t(i)] == (1000.0 + double(i)) * 0.5, "element ", i, ": ", got[size_t(i)], " vs ",
           (1000.0 + double(i)) * 0.5, " (summed before the work that wrote it?)");
    EXPECT(again[size_t(i)] == 1000.0 + double(i), "element ", i, " after a plain sum: ", again[size_t(i)]);
  }
  return mltest::str(library, ": 3 buckets of ", n, " doubles behind late kernels, × 0.5, exact");
}

// Two ranks: buckets started behind late work on each rank's stream give every rank the same bits,
// those of adding rank 0's values to rank 1's halved.
NATIVE_TEST(nccl_two_ranks_sum_buckets_after_the_work_before_them) {
  const int gpus = visible_gpus();
  if (gpus < 2) return not_run(gpus);
  const std::string library = nccl_library();
  const std::vector<int64_t> bounds{0, 1001, (int64_t{1} << 20) + 3, (int64_t{1} << 21) + 5};
  const int64_t n = bounds.back();
  std::vector<std::vector<double>> got(2);
  const auto errors = on_gpus("buckets-two", 2, 60, [&](int r, ml::Collective& c, cudaStream_t stream) {
    Dev<double> d(std::vector<double>(size_t(n), -1.0));
    late_buckets(c, d.get(), bounds, r, r == 1 ? 0.5 : 1.0, stream);
    got[size_t(r)] = d.download();
  });
  expect_none(errors);
  for (int64_t i = 0; i < n; ++i) {
    const double want = (1000.0 + double(i)) + (2000.0 + double(i)) * 0.5;
    for (int r = 0; r < 2; ++r)
      EXPECT(got[size_t(r)][size_t(i)] == want, "rank ", r, " element ", i, ": ", got[size_t(r)][size_t(i)], " vs ",
             want);
  }
  return mltest::str(library, ": 2 GPUs, 3 buckets of ", n, " doubles behind late kernels: exact on both ranks");
}

// One rank: a gather on the device leaves the rank's values as they are; so do a host gather and
// a broadcast (what a sharded optimizer's step and rank 0's decisions use).
NATIVE_TEST(nccl_world_of_one_gathers_on_the_device) {
  const std::string library = nccl_library();
  const int64_t n = 100003;
  const auto errors = on_gpus("gather-one", 1, 60, [&](int, ml::Collective& c, cudaStream_t stream) {
    const auto v = rounded<float>(values(0, n));
    Dev<float> f(v);
    c.all_gather_device(f.get(), {0, n}, stream);
    const auto got = f.download();
    for (int64_t i = 0; i < n; ++i) EXPECT(got[size_t(i)] == v[size_t(i)], "float ", i, ": ", got[size_t(i)]);
    double host[2] = {1.5, 2.5};
    c.all_gather(host, {0, 2});
    c.broadcast(host, sizeof host, 0);
    EXPECT(host[0] == 1.5 && host[1] == 2.5, "host values ", host[0], ", ", host[1]);
  });
  expect_none(errors);
  return mltest::str(library, ": ", n, " floats gathered in place, unchanged");
}

// Two ranks on two GPUs: each gets the same bits, those of adding its values to the other's
// (for two, the order cannot matter); each rank scales its own first (rank 1 by 0.5, as a rank
// that averaged two micro-batches); a repeated sum gives the same bits again.
NATIVE_TEST(nccl_two_ranks_sum_on_their_gpus) {
  const int gpus = visible_gpus();
  if (gpus < 2) return not_run(gpus);
  const std::string library = nccl_library();
  const int64_t n = (int64_t{1} << 22) + 5;  // large enough for every channel NCCL opens
  std::vector<std::vector<double>> got(2), again(2), got_d(2);
  const auto errors = on_gpus("two", 2, 60, [&](int r, ml::Collective& c, cudaStream_t stream) {
    const auto v = rounded<float>(values(r, n));
    Dev<float> f(v), g(v);
    Dev<double> d(values(r, n));
    c.all_reduce_sum_device(f.get(), n, stream, r == 1 ? 0.5 : 1.0);
    c.all_reduce_sum_device(g.get(), n, stream, r == 1 ? 0.5 : 1.0);
    c.all_reduce_sum_device(d.get(), n, stream, 1.0);
    got[size_t(r)] = f.download(), again[size_t(r)] = g.download(), got_d[size_t(r)] = d.download();
  });
  expect_none(errors);
  const auto a = rounded<float>(values(0, n)), b = rounded<float>(values(1, n));
  const auto a_d = values(0, n), b_d = values(1, n);
  for (int64_t i = 0; i < n; ++i) {
    const float want = float(a[size_t(i)]) + float(b[size_t(i)]) * 0.5f;
    const double want_d = a_d[size_t(i)] + b_d[size_t(i)];
    for (int r = 0; r < 2; ++r) {
      EXPECT(float(got[size_t(r)][size_t(i)]) == want, "rank ", r, " float ", i, ": ", got[size_t(r)][size_t(i)],
             " vs ", want);
      EXPECT(again[size_t(r)][size_t(i)] == got[size_t(r)][size_t(i)], "rank ", r, ": a repeated sum differs at ", i);
      EXPECT(got_d[size_t(r)][size_t(i)] == want_d, "rank ", r, " double ", i);
    }
  }
  return mltest::str(library, ": 2 GPUs, ", n, " floats (rank 1 scaled by 0.5) and doubles: exact, the same bits on "
                     "both ranks and when repeated");
}

// Two ranks gather ranges of different lengths (rank 0 the shorter, odd-sized, as the last of a
// model's shares can be): every rank ends with each owner's bits, floats and doubles; a rank's
// values outside its range do not matter.
NATIVE_TEST(nccl_two_ranks_gather_their_ranges) {
  const int gpus = visible_gpus();
  if (gpus < 2) return not_run(gpus);
  const std::string library = nccl_library();
  const int64_t n = (int64_t{1} << 22) + 5;
  const std::vector<int64_t> bounds{0, n / 2 - 3, n};
  std::vector<std::vector<double>> got(2), got_d(2);
  const auto errors = on_gpus("gather-two", 2, 60, [&](int r, ml::Collective& c, cudaStream_t stream) {
    // Each rank's own values everywhere: only its range is right for the others.
    const auto v = rounded<float>(values(r, n));
    Dev<float> f(v);
    Dev<double> d(values(r, n));
    c.all_gather_device(f.get(), bounds, stream);
    c.all_gather_device(d.get(), bounds, stream);
    got[size_t(r)] = f.download(), got_d[size_t(r)] = d.download();
  });
  expect_none(errors);
  const std::vector<std::vector<double>> owner_d{values(0, n), values(1, n)};
  const std::vector<std::vector<double>> owner{rounded<float>(owner_d[0]), rounded<float>(owner_d[1])};
  for (int64_t i = 0; i < n; ++i) {
    const size_t o = i < bounds[1] ? 0 : 1;
    for (int r = 0; r < 2; ++r) {
      EXPECT(got[size_t(r)][size_t(i)] == owner[o][size_t(i)], "rank ", r, " float ", i, " is not rank ", o, "'s");
      EXPECT(got_d[size_t(r)][size_t(i)] == owner_d[o][size_t(i)], "rank ", r, " double ", i, " is not rank ", o, "'s");
    }
  }
  return mltest::str(library, ": 2 GPUs, ranges of ", bounds[1], " and ", n - bounds[1],
                     " floats and doubles: every rank holds each owner's bits");
}

// Two ranks exchange blocks all-to-all on their GPUs (expert parallel's token exchange): counts
// through the host first, then the payload by ncclSend/ncclRecv; blocks of unequal sizes, one
// empty, each rank's own block included, land in sender order with the senders' bits.
NATIVE_TEST(nccl_two_ranks_exchange_all_to_all) {
  const int gpus = visible_gpus();
  if (gpus < 2) return not_run(gpus);
  const std::string library = nccl_library();
  // Doubles rank r sends rank q.
  const auto size = [](int r, int q) { return int64_t(r == 1 && q == 0 ? 0 : 1000 + 333 * r + 77 * q); };
  const auto value = [](int r, int q, int64_t i) { return double(r * 1000000 + q * 100000) + double(i); };
  std::vector<std::vector<double>> got(2);
  const auto errors = on_gpus("all-to-all-two", 2, 60, [&](int r, ml::Collective& c, cudaStream_t stream) {
    std::vector<double> send;
    std::vector<int64_t> to_each;
    for (int q = 0; q < 2; ++q) {
      to_each.push_back(size(r, q) * int64_t(sizeof(double)));
      for (int64_t i = 0; i < size(r, q); ++i) send.push_back(value(r, q, i));
    }
    const std::vector<int64_t> from_each = c.all_to_all_counts(to_each);
    Dev<double> out(send);
    Dev<double> in(std::vector<double>(size_t((from_each[0] + from_each[1]) / int64_t(sizeof(double))), -1.0));
    c.all_to_all_device(out.get(), to_each, in.get(), from_each, stream);
    got[size_t(r)] = in.download();
  });
  expect_none(errors);
  for (int q = 0; q < 2; ++q) {
    size_t at = 0;
    for (int r = 0; r < 2; ++r)
      for (int64_t i = 0; i < size(r, q); ++i, ++at)
        EXPECT(at < got[size_t(q)].size() && got[size_t(q)][at] == value(r, q, i), "rank ", q, " value ", i,
               " from rank ", r);
    EXPECT(at == got[size_t(q)].size(), "rank ", q, " received ", got[size_t(q)].size(), " values, not ", at);
  }
  return mltest::str(library, ": 2 GPUs, blocks of 0 to 1410 doubles: each in place with the sender's bits");
}

// Ranks that sum different sizes stop, naming both sizes, before NCCL could add unrelated values.
NATIVE_TEST(nccl_two_ranks_refuse_different_sizes) {
  const int gpus = visible_gpus();
  if (gpus < 2) return not_run(gpus);
  const auto errors = on_gpus("sizes", 2, 20, [&](int r, ml::Collective& c, cudaStream_t stream) {
    Dev<float> f(12);
    c.all_reduce_sum_device(f.get(), r == 0 ? 10 : 12, stream, 1.0);
  });
  EXPECT(contains(errors[0], "data parallel: rank 0 sums 10 values of 4 bytes while rank 1 sums 12 of 4"), errors[0]);
  EXPECT(contains(errors[1], "data parallel: rank 1 sums 12 values of 4 bytes while rank 0 sums 10 of 4"), errors[1]);
  return "both ranks stopped, naming 10 and 12 floats";
}

// A rank that stops summing (hangs) makes the other fail within its timeout, NCCL aborted there
// (its stream drains: the sum's kernel no longer waits), and every later call fails too.
NATIVE_TEST(nccl_rank_fails_when_the_other_hangs) {
  const int gpus = visible_gpus();
  if (gpus < 2) return not_run(gpus);
  const int64_t n = 1000;
  std::atomic<bool> rank0_done{false};
  std::string later;
  bool drained = false;
  const auto errors = on_gpus("hang", 2, 10, [&](int r, ml::Collective& c, cudaStream_t stream) {
    Dev<float> f(n);
    c.all_reduce_sum_device(f.get(), n, stream, 1.0);  // both: the sizes are agreed
    if (r == 1) {
      while (!rank0_done) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      return;  // never comes to the second sum
    }
    try {
      c.all_reduce_sum_device(f.get(), n, stream, 1.0);
    } catch (...) {
      rank0_done = true;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (cudaStreamQuery(stream) == cudaErrorNotReady && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      drained = cudaStreamQuery(stream) == cudaSuccess;
      try {
        double x = 1;
        c.all_reduce_sum(&x, 1);
      } catch (const std::exception& e) {
        later = e.what();
      }
      throw;
    }
    rank0_done = true;
  });
  EXPECT(contains(errors[0], "data parallel: rank 0 of 2 (GPU 0): waited 10 s for the other ranks at an all-reduce of "
                             "1000 floats: one of them has stopped or hangs"),
         errors[0]);
  EXPECT(errors[1].empty(), "rank 1: ", errors[1]);
  EXPECT(drained, "rank 0's stream still busy 10 s after NCCL was aborted");
  EXPECT(contains(later, errors[0]) && contains(later, " earlier"), "a later call: ", later);
  return "rank 0 stopped after its 10 s timeout naming the wait, its stream drained, later calls refused";
}
