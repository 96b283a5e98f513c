// The Ledger's clock. Stamping an event must cost a few nanoseconds, so the
// hot path reads the CPU's time-stamp counter (invariant and synchronised
// across cores on the x86-64 machines oomguard runs on) and readers convert
// ticks to steady-clock nanoseconds, calibrating against the steady clock
// over the whole time since the process started. Elsewhere ticks are
// steady-clock nanoseconds.
#pragma once

#include <chrono>
#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace oomguard::detail {

inline std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline std::int64_t ticks() noexcept {
#if defined(__x86_64__)
  return static_cast<std::int64_t>(__rdtsc());
#else
  return steady_ns();
#endif
}

// Converts tick counts taken by ticks() to steady-clock nanoseconds, with
// the rate calibrated when the converter is made (once per read).
class TickConverter {
 public:
  TickConverter() noexcept;
  std::int64_t to_ns(std::int64_t t) const noexcept {
    return anchor_ns_ + static_cast<std::int64_t>(static_cast<double>(t - anchor_ticks_) * ns_per_tick_);
  }

 private:
  std::int64_t anchor_ticks_ = 0;
  std::int64_t anchor_ns_ = 0;
  double ns_per_tick_ = 1.0;
};

}  // namespace oomguard::detail
