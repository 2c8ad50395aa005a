// Data parallel over GPUs: a Collective that sums and gathers GPU memory through NCCL, one rank
// per GPU (dist/nccl_api.h loads NCCL at run time). The ranks meet through the shared-memory
// collective's file (shared_memory.h): rank 0 takes NCCL's unique id and hands it to the others
// there, each rank checks there once that the others sum (or gather) the same sizes, and the
// host collectives (a step's loss and metrics, a sharded optimizer's moments read for a
// checkpoint, rank 0's decisions) stay there, the sums in rank order. A gather is a broadcast
// from each rank of its range in turn (nccl.cu), so it has no order to worry about: copies.
//
// Order of the sums: NCCL adds the ranks' values in an order of its own (rings or trees over
// the GPUs, chosen from the size of the sum and the machine's topology), not in rank order, and
// documents no promise about it. It uses no atomics, so for one world size, machine, NCCL
// version and NCCL_* environment the order should be the same at every step of every run,
// making deterministic runs bit-identical with every rank receiving the same bits: what the GPU
// tests (repeated sums, both ranks' bits) and tests/gpu/train-gpus.sh (deterministic reruns)
// check. A run on another number of GPUs, or one summing through the host (`--ranks`), adds in
// another order: it agrees to rounding, not to the bit.
//
// Failures: NCCL runs nonblocking and every wait polls with a deadline, so a rank that dies or
// hangs makes the others abort their communicator and throw "data parallel: ..." within
// timeout_s, whether at the start or at a sum (a sum's wait includes the rank's own work queued
// before it: timeouts are meant in minutes). After that the collective only throws.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "collective.h"

namespace ml {

// Rank `rank` of `world` on CUDA device `device` (an index among the devices this process sees),
// meeting the others at `rendezvous` for `session` (as SharedMemoryCollective). In a build
// without CUDA it throws, saying so.
std::shared_ptr<Collective> make_nccl_collective(const std::string& rendezvous, uint64_t session, int rank, int world,
                                                 int device, double timeout_s);

}  // namespace ml
