#include "oomguard/error.hpp"

#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>

namespace oomguard {

std::string format_bytes(std::int64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  // The magnitude as unsigned: llabs(INT64_MIN) overflows ("--9223372036854775808 B").
  const std::uint64_t magnitude =
      bytes < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(bytes) : static_cast<std::uint64_t>(bytes);
  double value = static_cast<double>(magnitude);
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(kUnits)) {
    value /= 1024.0;
    ++unit;
  }
  const char* sign = bytes < 0 ? "-" : "";
  if (unit == 0) return fmt::format("{}{} B", sign, magnitude);
  return fmt::format("{}{:.2f} {}", sign, value, kUnits[unit]);
}

namespace {
std::string describe(const OomContext& c) {
  std::string text = fmt::format(
      "oomguard: out of memory on device {}: tried to allocate {} ({}); allocated {}, reserved {}, "
      "largest free cached block {}",
      c.device, format_bytes(static_cast<std::int64_t>(c.requested_bytes)), c.reason,
      format_bytes(static_cast<std::int64_t>(c.allocated_bytes)),
      format_bytes(static_cast<std::int64_t>(c.reserved_bytes)),
      format_bytes(static_cast<std::int64_t>(c.largest_free_block)));
  if (c.budget_bytes != 0) {
    text += fmt::format(", budget {}", format_bytes(static_cast<std::int64_t>(c.budget_bytes)));
  }
  text += ". By category:";
  for (std::size_t i = 0; i < kNumCategories; ++i) {
    if (c.by_category[i] != 0) {
      text += fmt::format(" {}={}", kCategoryNames[i], format_bytes(c.by_category[i]));
    }
  }
  return text;
}
}  // namespace

namespace {
std::atomic<OutOfMemoryHandler> g_oom_handler{nullptr};
}  // namespace

void set_out_of_memory_handler(OutOfMemoryHandler handler) noexcept { g_oom_handler.store(handler); }

void notify_out_of_memory(const OomContext& context) noexcept {
  if (OutOfMemoryHandler handler = g_oom_handler.load()) handler(context);
}

out_of_memory::out_of_memory(OomContext context)
    : context_(std::move(context)), message_(describe(context_)) {}

}  // namespace oomguard
