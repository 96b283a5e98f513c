#include "clock.hpp"

namespace oomguard::detail {
namespace {
struct Anchor {
  std::int64_t ticks = detail::ticks();
  std::int64_t ns = steady_ns();
};
const Anchor& anchor() {
  static const Anchor a;
  return a;
}
// Taken at load time, so the calibration interval is the process's age.
[[maybe_unused]] const Anchor& g_anchor_at_load = anchor();
}  // namespace

TickConverter::TickConverter() noexcept {
  const Anchor& a = anchor();
  anchor_ticks_ = a.ticks;
  anchor_ns_ = a.ns;
#if defined(__x86_64__)
  const std::int64_t span_ticks = ticks() - a.ticks;
  const std::int64_t span_ns = steady_ns() - a.ns;
  // Too short a span calibrates badly; ~1 GHz is a safe guess until then.
  ns_per_tick_ = span_ticks > 1'000'000 ? static_cast<double>(span_ns) / static_cast<double>(span_ticks) : 1.0;
#endif
}

}  // namespace oomguard::detail
