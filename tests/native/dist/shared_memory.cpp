#include "dist/shared_memory.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "../harness.h"
#include "core/error.h"

using namespace mltest;

namespace {

// A fresh rendezvous path per test (the tests may run at once in other processes).
std::string rendezvous(const char* name) {
  return "/tmp/mambalab-test-" + std::string(name) + "-" + std::to_string(getpid());
}

// Runs body(rank) on `world` threads at once, each with its own collective (its own mapping
// of the file, as a process would have); rethrows the first failure.
template <typename Body>
void on_ranks(const std::string& path, int world, int64_t slot_bytes, Body body) {
  std::vector<std::thread> threads;
  std::vector<std::string> failures(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        ml::SharedMemoryCollective c(path, 77, r, world, 20, slot_bytes);
        body(c);
      } catch (const std::exception& e) {
        failures[size_t(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& f : failures) EXPECT(f.empty(), f);
}

}  // namespace

// Four ranks sum vectors longer than a slot (so in chunks), floats and doubles: every rank gets
// the same bits, those of adding the ranks' values in rank order.
NATIVE_TEST(shared_memory_collective_sums_in_rank_order) {
  const int world = 4;
  const int64_t n = 1000;  // 64-byte slots: 8 doubles or 16 floats a chunk
  // Each rank's values, computed once (the expected sums must add exactly these bits).
  std::vector<std::vector<double>> values(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r)
    for (int64_t i = 0; i < n; ++i) values[size_t(r)].push_back(1.0 / double(3 + r) + 1e-3 * double(i) * (r % 2 ? -1 : 1));
  std::vector<std::vector<double>> doubles = values;
  std::vector<std::vector<float>> floats(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r) floats[size_t(r)].assign(values[size_t(r)].begin(), values[size_t(r)].end());
  const std::vector<std::vector<float>> float_values = floats;
  on_ranks(rendezvous("sum"), world, 64, [&](ml::Collective& c) {
    c.all_reduce_sum(doubles[size_t(c.rank())].data(), n);
    c.all_reduce_sum(floats[size_t(c.rank())].data(), n);
  });
  for (int64_t i = 0; i < n; ++i) {
    double want = values[0][size_t(i)];
    float want_f = float_values[0][size_t(i)];
    for (int r = 1; r < world; ++r) want += values[size_t(r)][size_t(i)], want_f += float_values[size_t(r)][size_t(i)];
    for (int r = 0; r < world; ++r) {
      EXPECT(std::memcmp(&doubles[size_t(r)][size_t(i)], &want, sizeof want) == 0, "rank ", r, " double ", i, ": ",
             doubles[size_t(r)][size_t(i)], " vs ", want);
      EXPECT(std::memcmp(&floats[size_t(r)][size_t(i)], &want_f, sizeof want_f) == 0, "rank ", r, " float ", i);
    }
  }
  return str(world, " ranks, ", n, " doubles and floats in 64-byte chunks: the same bits on every rank");
}

// A gather gives every rank each rank's range of the data, through the slots in chunks where a
// range is longer than one; ranges may differ in length or be empty, and a rank's own range is
// left as it is.
NATIVE_TEST(shared_memory_collective_gathers_each_ranks_range) {
  const int world = 3;
  const std::vector<int64_t> bounds{0, 37, 37, 100};  // rank 1 holds nothing; 64-byte slots: 8 doubles, 16 floats
  const auto value = [](int64_t i) { return 1.0 / 3.0 + 0.25 * double(i); };
  std::vector<std::vector<double>> doubles(static_cast<size_t>(world), std::vector<double>(100, -1.0));
  std::vector<std::vector<float>> floats(static_cast<size_t>(world), std::vector<float>(100, -1.0f));
  for (int r = 0; r < world; ++r)
    for (int64_t i = bounds[size_t(r)]; i < bounds[size_t(r) + 1]; ++i)
      doubles[size_t(r)][size_t(i)] = value(i), floats[size_t(r)][size_t(i)] = float(value(i));
  on_ranks(rendezvous("gather"), world, 64, [&](ml::Collective& c) {
    c.all_gather(doubles[size_t(c.rank())].data(), bounds);
    c.all_gather(floats[size_t(c.rank())].data(), bounds);
  });
  for (int r = 0; r < world; ++r)
    for (int64_t i = 0; i < 100; ++i) {
      EXPECT(doubles[size_t(r)][size_t(i)] == value(i), "rank ", r, " double ", i, ": ", doubles[size_t(r)][size_t(i)]);
      EXPECT(floats[size_t(r)][size_t(i)] == float(value(i)), "rank ", r, " float ", i, ": ",
             floats[size_t(r)][size_t(i)]);
    }
  return str(world, " ranks, ranges of 37, 0 and 63 values in 64-byte chunks: every rank holds all 100");
}

// An all-to-all: counts first, then blocks of any size (none, one byte, several slots) from every
// rank to every rank, itself included; each lands in the receiver's buffer in sender order.
NATIVE_TEST(shared_memory_collective_exchanges_blocks_all_to_all) {
  const int world = 3;
  // Bytes rank r sends rank q: 0, odd, and longer than a 64-byte slot.
  const auto size = [](int r, int q) { return int64_t((r * 7 + q * 61) % 150); };
  const auto byte = [](int r, int q, int64_t i) { return static_cast<unsigned char>(r * 100 + q * 10 + i * 3); };
  std::vector<std::vector<unsigned char>> received(static_cast<size_t>(world));
  std::vector<std::vector<int64_t>> counts(static_cast<size_t>(world));
  on_ranks(rendezvous("all-to-all"), world, 64, [&](ml::Collective& c) {
    const int r = c.rank();
    std::vector<int64_t> to_each;
    std::vector<unsigned char> send;
    for (int q = 0; q < world; ++q) {
      to_each.push_back(size(r, q));
      for (int64_t i = 0; i < size(r, q); ++i) send.push_back(byte(r, q, i));
    }
    const std::vector<int64_t> from_each = c.all_to_all_counts(to_each);
    int64_t total = 0;
    for (const int64_t n : from_each) total += n;
    std::vector<unsigned char> recv(size_t(total), 0xff);
    c.all_to_all(send.data(), to_each, recv.data(), from_each);
    received[size_t(r)] = recv, counts[size_t(r)] = from_each;
  });
  for (int q = 0; q < world; ++q) {
    size_t at = 0;
    for (int r = 0; r < world; ++r) {
      EXPECT(counts[size_t(q)][size_t(r)] == size(r, q), "rank ", q, " was told ", counts[size_t(q)][size_t(r)],
             " bytes from rank ", r, ", not ", size(r, q));
      for (int64_t i = 0; i < size(r, q); ++i, ++at)
        EXPECT(at < received[size_t(q)].size() && received[size_t(q)][at] == byte(r, q, i), "rank ", q,
               " byte ", i, " from rank ", r);
    }
    EXPECT(at == received[size_t(q)].size(), "rank ", q, " received ", received[size_t(q)].size(), " bytes, not ", at);
  }
  return str(world, " ranks, blocks of 0 to 149 bytes through 64-byte slots: every block where it belongs");
}

// A receiver that expects other than its sender sends is refused on every rank, before any byte
// moves, naming both.
NATIVE_TEST(shared_memory_collective_refuses_an_all_to_all_of_other_sizes) {
  std::vector<std::string> errors(2);
  on_ranks(rendezvous("all-to-all-sizes"), 2, 64, [&](ml::Collective& c) {
    std::vector<unsigned char> send(8), recv(8);
    const std::vector<int64_t> sends{4, 4}, recvs = c.rank() == 0 ? std::vector<int64_t>{4, 4} : std::vector<int64_t>{3, 4};
    try {
      c.all_to_all(send.data(), sends, recv.data(), recvs);
    } catch (const ml::Error& e) {
      errors[size_t(c.rank())] = e.what();
    }
  });
  for (const auto& e : errors)
    EXPECT(e.find("rank 0 sends 4 bytes to rank 1, which expects 3") != std::string::npos, "got: ", e);
  return errors[1];
}

// A rank at a gather and one at a sum of as many values stop, each naming what the other does.
NATIVE_TEST(shared_memory_collective_refuses_a_gather_against_a_sum) {
  std::vector<std::string> errors(2);
  on_ranks(rendezvous("gather-sum"), 2, 64, [&](ml::Collective& c) {
    std::vector<double> v(4, 1.0);
    try {
      if (c.rank() == 0) c.all_gather(v.data(), {0, 2, 4});
      else c.all_reduce_sum(v.data(), 4);
    } catch (const ml::Error& e) {
      errors[size_t(c.rank())] = e.what();
    }
  });
  EXPECT(errors[0].find("rank 0 gathers 4 values of 8 bytes while rank 1 sums 4 of 8") != std::string::npos, errors[0]);
  EXPECT(errors[1].find("rank 1 sums 4 values of 8 bytes while rank 0 gathers 4 of 8") != std::string::npos, errors[1]);
  return errors[0];
}

// A rank that never comes makes the others stop with an error naming the wait, within the
// timeout: rank 0 alone at the start barrier, and a rank 1 with no rank 0 at all.
NATIVE_TEST(shared_memory_collective_reports_a_missing_rank) {
  std::string alone, orphan;
  try {
    ml::SharedMemoryCollective c(rendezvous("alone"), 5, 0, 2, 0.3);
  } catch (const ml::Error& e) {
    alone = e.what();
  }
  try {
    ml::SharedMemoryCollective c(rendezvous("orphan"), 5, 1, 2, 0.3);
  } catch (const ml::Error& e) {
    orphan = e.what();
  }
  EXPECT(alone.find("rank 0 of 2 waited 0.3 s at the start") != std::string::npos, "got: ", alone);
  EXPECT(orphan.find("rank 1 of 2 found no rendezvous from rank 0") != std::string::npos, "got: ", orphan);
  EXPECT(access(rendezvous("orphan").c_str(), F_OK) != 0, "a rank other than 0 created the rendezvous file");
  return "rank 0 alone: " + alone + " | rank 1 alone: " + orphan;
}

// A rendezvous file left by another session (same path) is not joined: rank 1 waits for rank
// 0's new one.
NATIVE_TEST(shared_memory_collective_ignores_a_stale_session) {
  const std::string path = rendezvous("stale");
  std::string error;
  // Session 1's file stays on disk, as a killed run leaves it (never destroyed, so never removed).
  (void)new ml::SharedMemoryCollective(path, 1, 0, 1, 1.0);
  EXPECT(access(path.c_str(), F_OK) == 0, "the stale file is missing");
  on_ranks(path, 2, 64, [&](ml::Collective& c) {
    double x = c.rank() + 1.0;
    c.all_reduce_sum(&x, 1);
    if (x != 3.0) error = "sum " + std::to_string(x);
  });
  EXPECT(error.empty(), error);
  return "session 77 joined past a stale session 1";
}

// Ranks at different sums (a step that differs between them) stop with an error naming both,
// rather than adding unrelated values.
NATIVE_TEST(shared_memory_collective_refuses_mismatched_sums) {
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      try {
        ml::SharedMemoryCollective c(rendezvous("mismatch"), 4, r, 2, 20, 64);
        std::vector<double> v(size_t(3 + r), 1.0);
        c.all_reduce_sum(v.data(), int64_t(v.size()));
      } catch (const ml::Error& e) {
        errors[size_t(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT(errors[0].find("rank 0 sums 3 values of 8 bytes while rank 1 sums 4 of 8") != std::string::npos, "rank 0: ",
         errors[0]);
  EXPECT(errors[1].find("rank 1 sums 4 values of 8 bytes while rank 0 sums 3 of 8") != std::string::npos, "rank 1: ",
         errors[1]);
  return errors[0];
}

// A broadcast hands rank 0's bytes (NCCL's unique id, in dist/nccl.cu) to every rank, and more
// than a slot holds is refused.
NATIVE_TEST(shared_memory_collective_broadcasts_from_rank_0) {
  std::vector<std::string> got(3);
  std::string too_large;
  on_ranks(rendezvous("broadcast"), 3, 128, [&](ml::SharedMemoryCollective& c) {
    char id[128];
    std::snprintf(id, sizeof id, "rank %d's id", c.rank());
    c.broadcast(id, sizeof id, 0);
    got[size_t(c.rank())] = id;
    if (c.rank() != 0) return;
    try {
      c.broadcast(id, 129, 0);
    } catch (const ml::Error& e) {
      too_large = e.what();
    }
  });
  for (const auto& g : got) EXPECT(g == "rank 0's id", "got '", g, "'");
  EXPECT(too_large.find("a broadcast of 129 bytes from rank 0 does not fit 3 ranks' slots of 128 bytes") !=
             std::string::npos,
         too_large);
  return "3 ranks got rank 0's 128 bytes; 129 refused";
}
