// The Ledger's clock.
//
// Note [Event clock]
// Stamping an event must cost a few nanoseconds: the Ledger's budget is 50 ns
// per event, and on the virtual machines oomguard runs on a time-stamp
// counter read (rdtsc) costs 17 to 30 ns and a steady_clock::now() 30 ns.
// Events are stamped instead with a hybrid logical clock:
//   stamp = max(coarse clock, this thread's last stamp + 1,
//               the shard's last stamp + 1, the device's latest stamp + 1)
// * The coarse clock is CLOCK_MONOTONIC_COARSE: the steady clock's own epoch
//   at the kernel tick's resolution (1 to 4 ms), read from the vDSO in ~6 ns
//   without a system call. Stamps stay within a tick of wall time, plus 1 ns
//   per event when a thread records more events than ticks pass.
// * The two "+1" terms make the order of stamps respect what a post-mortem
//   replays: every thread's events in program order (a thread's free of A
//   then allocation of B, in different shards, within one tick), and every
//   address's events in the order its shard saw them (thread 1 frees X,
//   thread 2 is handed X). Both are exact.
// * The device's latest stamp (a relaxed load and store, no read-modify-write,
//   on the cache line of the device's total, which each event writes anyway)
//   carries order across threads that synchronise outside the Ledger:
//   autograd's thread frees the last activations of backward, the main
//   thread, woken, allocates the optimizer's state. Without it the two could
//   swap within a tick and a replay would show a peak that never was. A racy
//   store can move it back only when a third thread stamps concurrently, so
//   this order is exact for two threads handing over and close otherwise.
//   Events of different devices are ordered by the clock alone: their
//   memory is independent, so a swap within a tick changes no curve.
// Stamps are steady-clock nanoseconds, so no conversion on read.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>

namespace oomguard::detail {

inline std::int64_t coarse_ns() noexcept {
#if defined(CLOCK_MONOTONIC_COARSE)
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
#else
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
#endif
}

}  // namespace oomguard::detail
