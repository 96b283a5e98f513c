// The Ledger: every live allocation, per-category and per-device bytes with
// peaks, per-step peaks, and a bounded ring of recent events.
//
// Note [Ledger concurrency]
// The Ledger is on every allocation's path, so it takes no process-wide lock.
//  * Live allocations live in kShards independent hash maps, each behind its
//    own small spin lock and picked by the address: two threads contend only
//    when their addresses hash to the same shard. Each shard keeps its own
//    slice of the event ring and its own counts under that same lock, so
//    recording an event costs nothing extra; reads merge the slices.
//  * Events and records are stamped with a hybrid logical clock read under
//    the shard lock (Note [Event clock] in detail/clock.hpp): steady-clock
//    time at a few milliseconds' resolution, ordered consistently with each
//    thread's program order and each address's history.
//  * Byte counters are per device and per category atomics, each device on its
//    own cache lines. Peaks must be exact, which thread-local counters merged
//    on read cannot give (the peak of a sum is not the sum of per-thread
//    peaks); fetch_add returns each value the counter takes in its total
//    modification order, and a CAS-max over those values is the exact peak.
//    Threads touching the same device and category share a cache line; the
//    benchmark BM_LedgerEvent/threads:2 measures that cost.
//  * Reads (stats(), snapshot()) never block writers for longer than one
//    shard's copy.
//
// Note [The breakdown at the peak]
// A device's peak is reported with its composition: the bytes of each
// category at the moment the total reached its maximum, and the step and
// phase of the allocation that set it (a category's own peak, `peak`, is a
// different figure: the categories peak at different moments). The
// allocation whose fetch_add on the total returns a value above the peak, and
// whose CAS-max then succeeds, copies the nine `current` counters (nine
// relaxed loads and stores on a line of their own) and its tag; an
// allocation that sets no new maximum, and every free and retag, pays
// nothing beyond the comparison the peak already makes. No lock is taken.
//  * Exact with one writer per device at a time (one thread, or threads that
//    hold a lock of their own around their calls, as c10's allocator lock
//    in observe mode; our allocator calls the Ledger after dropping its
//    device lock, so its threads are concurrent writers): nothing moves the
//    counters between that writer's fetch_adds and its copy, so the
//    breakdown sums to peak_allocated exactly.
//  * Approximate with concurrent writers on the device: the copy reads each
//    counter at a slightly different moment, so it can be off by the bytes
//    that other threads allocated, freed or retagged meanwhile (a retag adds
//    before it subtracts, so it can only add). Two threads that set new
//    peaks one after the other may also publish their copies in the other
//    order; a writer publishes only while its peak is still the peak, which
//    narrows that window to its few stores, and the tag it publishes last
//    may belong to either. The peak itself stays exact.
//  * Categories follow retags: the census names parameters, gradients and
//    optimizer state at the step boundary, after the peak they made. A
//    retag of a block recorded no later than the peak's allocation (by
//    stamp, Note [Event clock]; still live, so live at the peak) moves its
//    bytes in the breakdown too, so the breakdown is the bytes live at the
//    peak under the names they have now. Bytes freed after the peak stay
//    under the name they had; a block recorded after the peak changes
//    nothing. Two atomic adds on a retag, which is off the allocation path.
//  * It is the run's peak, like peak_allocated: begin_step() leaves it as it
//    is (step peaks are StepPeak's) and reset() clears it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "oomguard/category.hpp"
#include "oomguard/tags.hpp"

namespace oomguard {

// Devices 0..kMaxDevices-1 are accelerators; kCpuDevice is host memory.
inline constexpr int kMaxDevices = 64;
inline constexpr int kCpuDevice = -1;

struct AllocationRecord {
  std::uintptr_t address = 0;
  std::uint64_t size = 0;
  std::uintptr_t stream = 0;
  std::int64_t step = 0;
  std::int64_t time_ns = 0;  // steady clock
  std::uintptr_t owner = 0;  // opaque to the Ledger: the allocator's handle (its block)
  std::int16_t device = 0;
  Category category = Category::unknown;
  Phase phase = Phase::idle;
};

// What release() returns of the allocation it forgot.
struct Released {
  std::uint64_t size = 0;
  std::uintptr_t stream = 0;
  std::uintptr_t owner = 0;
  std::int16_t device = 0;
  Category category = Category::unknown;
  Phase phase = Phase::idle;
  std::int64_t step = 0;
};

enum class EventKind : std::uint8_t { alloc, free, retag, segment_alloc, segment_free, oom };
std::string_view name(EventKind kind);

struct Event {
  std::int64_t time_ns = 0;
  std::uintptr_t address = 0;
  std::uint64_t size = 0;
  std::int64_t step = 0;
  std::uintptr_t stream = 0;
  std::int16_t device = 0;
  EventKind kind = EventKind::alloc;
  Category category = Category::unknown;
  Category previous_category = Category::unknown;  // retag only
  Phase phase = Phase::idle;
};

using CategoryBytes = std::array<std::int64_t, kNumCategories>;

struct DeviceStats {
  int device = 0;
  CategoryBytes current{};
  CategoryBytes peak{};
  std::int64_t allocated = 0;  // sum of current
  std::int64_t peak_allocated = 0;
  std::int64_t reserved = 0;  // segments reported through segment_alloc
  std::int64_t peak_reserved = 0;
  std::int64_t live_allocations = 0;
  // Note [The breakdown at the peak]: `current` when peak_allocated was
  // reached, and the tag and time (steady-clock ns) of the allocation that
  // reached it. Zero and idle before the first allocation.
  CategoryBytes peak_breakdown{};
  std::int64_t peak_step = 0;
  Phase peak_phase = Phase::idle;
  std::int64_t peak_time_ns = 0;
};

struct StepPeak {
  std::int64_t step = 0;
  int device = 0;
  std::int64_t peak_allocated = 0;
  CategoryBytes peak_by_category{};
  // What was live when the step closed (begin_step of the next one): after
  // the boundary's census, so gradients and optimizer state are exact. The
  // open step's entry holds the bytes live now.
  CategoryBytes at_end{};
};

struct LedgerCounters {
  std::uint64_t allocations = 0;
  std::uint64_t frees = 0;
  std::uint64_t retags = 0;
  std::uint64_t unknown_frees = 0;     // release() of an address not live
  std::uint64_t replaced_records = 0;  // record() of an address still live
};

class Ledger {
 public:
  static constexpr std::size_t kShards = 64;
  static constexpr std::size_t kDefaultEventCapacity = 1 << 16;
  static constexpr std::size_t kStepHistory = 1 << 14;

  // The ring keeps at least event_capacity / 2 and at most event_capacity
  // recent events (each shard's slice is rounded down to a power of two).
  explicit Ledger(std::size_t event_capacity = kDefaultEventCapacity);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // The process's tensor-level ledger: allocations as PyTorch's allocator (or
  // ours, or the CPU wrapper) hands them out. The C ABI, the torch hooks and
  // Python share it.
  static Ledger& global();
  // The process's segment-level ledger: device memory as the driver hands it
  // out, fed by the LD_PRELOAD and CUPTI hooks. Kept apart from global()
  // because a segment and the first block carved from it share an address;
  // what PyTorch does not own is segments() minus PyTorch's reserved bytes.
  static Ledger& segments();
  // Device memory outside PyTorch now: what the driver handed out on
  // `device` (segments(), fed by LD_PRELOAD or CUPTI) beyond the segments
  // PyTorch's allocator reported to global(); 0 when neither hook runs or
  // when PyTorch's view is the larger (a segment seen by one side only).
  static std::int64_t non_torch_bytes(int device);

  // Record a new live allocation tagged with `tag`. An address still live is
  // released first (its free was missed) and counted in replaced_records.
  void record(std::uintptr_t address, std::uint64_t size, int device, std::uintptr_t stream, Tag tag,
              std::uintptr_t owner = 0);
  void record(std::uintptr_t address, std::uint64_t size, int device, std::uintptr_t stream = 0) {
    record(address, size, device, stream, current_tag());
  }
  // Forget a live allocation; nullopt (and unknown_frees+1) if it is not live.
  std::optional<Released> release(std::uintptr_t address);

  // release() for an allocator that keeps its handles in the Ledger (the
  // `owner` of its records): it forgets the allocation only if `owns` accepts
  // the record's owner and it is live on `device` with `size`, so a bad free
  // changes nothing. `owns` runs under a shard lock: it must be quick.
  enum class ReleaseStatus { released, not_live, foreign, wrong_device, wrong_size };
  struct CheckedRelease {
    ReleaseStatus status = ReleaseStatus::not_live;
    Released released;  // what was released, or what is live there (wrong_*)
  };
  using OwnerCheck = bool (*)(std::uintptr_t owner, const void* context) noexcept;
  CheckedRelease release_checked(std::uintptr_t address, int device, std::uint64_t size, OwnerCheck owns,
                                 const void* context);
  // Move a live allocation's bytes to `category`. False if not live.
  bool retag(std::uintptr_t address, Category category);
  std::optional<AllocationRecord> find(std::uintptr_t address) const;

  // Reserved (segment) memory, for sources that report segments.
  void segment_alloc(int device, std::uint64_t size, std::uintptr_t address = 0);
  void segment_free(int device, std::uint64_t size, std::uintptr_t address = 0);
  void note_oom(int device, std::uint64_t requested);

  // Close the current step's peaks into the history and start `step`
  // (also sets the process step that untagged allocations read).
  void begin_step(std::int64_t step);

  // Lock-free: safe from a thread that reports while another is stopped
  // inside the Ledger (a signal handler's watcher, an OOM observer).
  DeviceStats device_stats(int device) const;
  std::vector<DeviceStats> stats() const;  // devices that have seen traffic
  std::vector<StepPeak> step_peaks() const;  // closed steps, oldest first, then the open one
  // One step's entry on one device (the open step's too), without copying
  // the history: what the guard asks at every step boundary. A copy of the
  // whole history per step grew the per-step cost with the run's length
  // until the history was full (1.8 ms to 2.9 ms over 30,000 tiny steps).
  std::optional<StepPeak> step_peak(std::int64_t step, int device) const;
  std::optional<StepPeak> open_step_peak(int device) const;
  std::vector<AllocationRecord> live_allocations() const;
  std::vector<Event> recent_events() const;  // oldest first
  LedgerCounters counters() const;
  // Forget everything (tests and re-install); not safe against concurrent writers.
  void reset();

 private:
  struct Shard;
  struct DeviceCounters;
  Shard& shard_for(std::uintptr_t address) const;
  DeviceCounters& counters_for(int device) const;
  // An allocation's bytes, with its tag and stamp for Note [The breakdown at
  // the peak]; a release's bytes (negative: no peak can move).
  void add_bytes(DeviceCounters& d, const Tag& tag, std::int64_t size, std::int64_t stamp);
  void remove_bytes(DeviceCounters& d, Category category, std::int64_t size);
  template <typename Check>
  CheckedRelease release_if(std::uintptr_t address, Check&& check);

  std::unique_ptr<Shard[]> shards_;
  std::unique_ptr<DeviceCounters[]> devices_;
  std::size_t ring_per_shard_;
  StepPeak open_entry(std::size_t slot) const;  // under step_mutex_
  mutable std::mutex step_mutex_;  // step boundaries only, never on the allocation path
  std::deque<StepPeak> step_history_;  // at most kStepHistory; the oldest dropped in O(1)
  std::atomic<std::int64_t> open_step_{0};
};

}  // namespace oomguard
