#include "segment_accounting.hpp"

#include <array>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <vector>

#include "device_query.hpp"
#include "lifecycle.hpp"
#include "preload_config.hpp"

namespace oomguard::preload {
namespace {

struct alignas(64) DeviceSlot {
  std::atomic<std::int64_t> live_bytes{0};
  std::atomic<std::int64_t> peak_bytes{0};
  std::atomic<std::int64_t> live_segments{0};
  std::atomic<std::uint64_t> budget_bytes{~std::uint64_t{0}};  // kUnresolved until first use
  std::atomic<std::uint64_t> budget_refusals{0};
  std::atomic<std::uint64_t> device_ooms{0};
  std::atomic<bool> seen{false};
};

constexpr std::uint64_t kUnresolved = ~std::uint64_t{0};

std::array<DeviceSlot, kMaxDevices>& slots() {
  static std::array<DeviceSlot, kMaxDevices> s;
  return s;
}

DeviceSlot* slot_for(int device) noexcept {
  if (device < 0 || device >= kMaxDevices) return nullptr;  // host memory: no budget
  return &slots()[static_cast<std::size_t>(device)];
}

std::atomic<std::uint64_t> g_seen_mask{0};

// Last OOM, packed so a signal-time reader never sees a torn value.
std::atomic<std::uint64_t> g_last_oom_requested{0};
std::atomic<std::int32_t> g_last_oom_device{-2};  // -2: none yet
std::atomic<bool> g_last_oom_by_budget{false};

std::uint64_t resolve_budget(DeviceSlot& slot) noexcept {
  std::uint64_t bytes = slot.budget_bytes.load(std::memory_order_relaxed);
  if (bytes != kUnresolved) return bytes;
  const auto& budget = config().budget;
  if (!budget) {
    bytes = 0;
  } else if (budget->fraction == 0.0) {
    bytes = budget->bytes;
  } else {
    // A fraction needs the device size; admit() runs on the allocating
    // thread, whose current device is the one being resolved.
    const std::uint64_t total = current_device_total_bytes();
    if (total == 0) {
      std::fprintf(stderr, "oomguard preload: budget '%s' is a fraction but the device size is unknown; "
                   "no budget on this device (give the budget in bytes, e.g. budget:20GiB)\n",
                   config().budget_text.c_str());
    }
    bytes = total == 0 ? 0 : budget->resolve(total);
  }
  slot.budget_bytes.store(bytes, std::memory_order_relaxed);
  return bytes;
}

void note_oom(int device, std::uint64_t size, bool by_budget) {
  g_last_oom_requested.store(size, std::memory_order_relaxed);
  g_last_oom_by_budget.store(by_budget, std::memory_order_relaxed);
  g_last_oom_device.store(device, std::memory_order_release);
  Ledger::segments().note_oom(device, size);
  report_out_of_memory(device);
}

void update_peak(std::atomic<std::int64_t>& peak, std::int64_t value) noexcept {
  std::int64_t seen = peak.load(std::memory_order_relaxed);
  while (value > seen && !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

}  // namespace

std::uint64_t budget_bytes(int device) noexcept {
  DeviceSlot* slot = slot_for(device);
  return slot == nullptr ? 0 : resolve_budget(*slot);
}

bool admit(int device, std::uint64_t size) {
  ensure_started();
  DeviceSlot* slot = slot_for(device);
  if (slot == nullptr) return true;
  if (!slot->seen.load(std::memory_order_relaxed)) {
    slot->seen.store(true, std::memory_order_relaxed);
    g_seen_mask.fetch_or(std::uint64_t{1} << device, std::memory_order_relaxed);
  }
  const std::uint64_t budget = resolve_budget(*slot);
  // A request above the budget is refused before it is counted: near 2^64
  // the signed sum below would wrap and admit it.
  const bool above_budget = budget != 0 && size > budget;
  const auto delta = above_budget ? std::int64_t{0} : static_cast<std::int64_t>(size);
  const std::int64_t after = slot->live_bytes.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (above_budget || (budget != 0 && static_cast<std::uint64_t>(after) > budget)) {
    slot->live_bytes.fetch_sub(delta, std::memory_order_relaxed);
    slot->budget_refusals.fetch_add(1, std::memory_order_relaxed);
    note_oom(device, size, /*by_budget=*/true);
    return false;
  }
  update_peak(slot->peak_bytes, after);
  return true;
}

void cancel_admission(int device, std::uint64_t size, bool out_of_memory) {
  if (DeviceSlot* slot = slot_for(device)) {
    slot->live_bytes.fetch_sub(static_cast<std::int64_t>(size), std::memory_order_relaxed);
    if (out_of_memory) slot->device_ooms.fetch_add(1, std::memory_order_relaxed);
  }
  if (out_of_memory) note_oom(device, size, /*by_budget=*/false);
}

void on_allocated(std::uintptr_t address, std::uint64_t size, int device, std::uintptr_t stream) {
  if (DeviceSlot* slot = slot_for(device)) slot->live_segments.fetch_add(1, std::memory_order_relaxed);
  Ledger& ledger = Ledger::segments();
  // Segments are non_torch until the Python layer claims the ones PyTorch owns.
  ledger.record(address, size, device, stream, Tag{Category::non_torch, process_phase(), process_step()});
  ledger.segment_alloc(device, size, address);
  report_segment_change(device);
}

std::optional<Released> on_freeing(std::uintptr_t address) {
  Ledger& ledger = Ledger::segments();
  std::optional<Released> record = ledger.release(address);
  if (!record) return std::nullopt;
  ledger.segment_free(record->device, record->size, address);
  if (DeviceSlot* slot = slot_for(record->device)) {
    slot->live_bytes.fetch_sub(static_cast<std::int64_t>(record->size), std::memory_order_relaxed);
    slot->live_segments.fetch_sub(1, std::memory_order_relaxed);
  }
  report_segment_change(record->device);
  return record;
}

void on_free_failed(std::uintptr_t address, const Released& record) {
  if (DeviceSlot* slot = slot_for(record.device)) {
    slot->live_bytes.fetch_add(static_cast<std::int64_t>(record.size), std::memory_order_relaxed);
  }
  on_allocated(address, record.size, record.device, record.stream);
}

std::vector<DeviceFigures> device_figures() {
  std::vector<DeviceFigures> out;
  for (int d = 0; d < kMaxDevices; ++d) {
    DeviceSlot& slot = slots()[static_cast<std::size_t>(d)];
    if (!slot.seen.load(std::memory_order_relaxed)) continue;
    const std::uint64_t budget = slot.budget_bytes.load(std::memory_order_relaxed);
    out.push_back(DeviceFigures{d, slot.live_bytes.load(std::memory_order_relaxed),
                                slot.peak_bytes.load(std::memory_order_relaxed),
                                slot.live_segments.load(std::memory_order_relaxed),
                                budget == kUnresolved ? 0 : budget,
                                slot.budget_refusals.load(std::memory_order_relaxed),
                                slot.device_ooms.load(std::memory_order_relaxed)});
  }
  return out;
}

void reset_accounting() noexcept {
  for (DeviceSlot& slot : slots()) {
    slot.live_bytes.store(0, std::memory_order_relaxed);
    slot.peak_bytes.store(0, std::memory_order_relaxed);
    slot.live_segments.store(0, std::memory_order_relaxed);
    slot.budget_bytes.store(kUnresolved, std::memory_order_relaxed);
    slot.budget_refusals.store(0, std::memory_order_relaxed);
    slot.device_ooms.store(0, std::memory_order_relaxed);
    slot.seen.store(false, std::memory_order_relaxed);
  }
  g_seen_mask.store(0, std::memory_order_relaxed);
  g_last_oom_device.store(-2, std::memory_order_relaxed);
}

std::uint64_t seen_devices() noexcept { return g_seen_mask.load(std::memory_order_relaxed); }

std::optional<LastOom> last_oom() {
  const int device = g_last_oom_device.load(std::memory_order_acquire);
  if (device == -2) return std::nullopt;
  return LastOom{device, g_last_oom_requested.load(std::memory_order_relaxed),
                 g_last_oom_by_budget.load(std::memory_order_relaxed)};
}

}  // namespace oomguard::preload
