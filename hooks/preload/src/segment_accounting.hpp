// The segment-level bookkeeping every interposed allocation goes through:
// admission against the budget, the Ledger record, and the per-device figures
// of the summary.
//
// Note [Segment budget admission]
// The budget check must be exact with many threads allocating at once, so it
// is a reservation, not a read-then-act: admit() adds the request to the
// device's admitted bytes with one fetch_add and takes it back if that crossed
// the budget (the limiting-adaptor pattern). The real allocation runs after
// admission and outside any lock; a failure gives the bytes back.
#pragma once

#include <cstdint>
#include <optional>

#include "oomguard/ledger.hpp"

namespace oomguard::preload {

// Reserve `size` bytes of `device`'s budget. False: over budget; the refusal
// is noted (Ledger OOM event, counters, timeline row, post-mortem summary).
bool admit(int device, std::uint64_t size);
// The real call failed after admit(): give the bytes back. `out_of_memory`
// says whether the device itself refused, which is noted like a refusal.
void cancel_admission(int device, std::uint64_t size, bool out_of_memory);
// The real call succeeded: `address` (or a VMM handle) holds `size` bytes.
void on_allocated(std::uintptr_t address, std::uint64_t size, int device, std::uintptr_t stream);
// `address` is about to be freed: forget it and give its bytes back. nullopt
// when it is not one of ours (freed twice, or allocated before we saw it).
std::optional<Released> on_freeing(std::uintptr_t address);
// The real free failed: the memory is still held, account it again.
void on_free_failed(std::uintptr_t address, const Released& record);

struct DeviceFigures {
  int device = 0;
  std::int64_t live_bytes = 0;
  std::int64_t peak_bytes = 0;
  std::int64_t live_segments = 0;
  std::uint64_t budget_bytes = 0;  // 0: none
  std::uint64_t budget_refusals = 0;
  std::uint64_t device_ooms = 0;
};
// Devices that have seen an interposed allocation.
std::vector<DeviceFigures> device_figures();
// Bit d set: device d has seen an interposed allocation.
std::uint64_t seen_devices() noexcept;
std::uint64_t budget_bytes(int device) noexcept;
// A forked child holds none of its parent's device memory.
void reset_accounting() noexcept;

struct LastOom {
  int device = 0;
  std::uint64_t requested = 0;
  bool by_budget = false;
};
std::optional<LastOom> last_oom();

}  // namespace oomguard::preload
