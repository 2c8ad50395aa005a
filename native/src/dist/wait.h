// Waiting for another rank with a deadline: the ranks' collectives poll rather than block, so a
// rank that has died or hangs makes the others fail after a timeout instead of waiting forever.
#pragma once
#include <chrono>
#include <thread>

namespace ml::dist {

using Clock = std::chrono::steady_clock;

inline Clock::time_point after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// Polls ready() until it holds (true) or the deadline passes (false): yields first, then sleeps
// briefly, so a long wait does not hold a core.
template <typename Ready>
bool wait_until(Ready ready, Clock::time_point deadline) {
  for (int polls = 0; !ready(); ++polls) {
    if (Clock::now() > deadline) return false;
    if (polls < 2000)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return true;
}

}  // namespace ml::dist
