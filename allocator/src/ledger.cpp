#include "oomguard/ledger.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

#include "detail/address_map.hpp"
#include "detail/clock.hpp"
#include "detail/spin_lock.hpp"
#include "oomguard/error.hpp"

namespace oomguard {
namespace {

// The last stamp this thread gave, for Note [Event clock]. initial-exec, as
// in tags.cpp: one %fs-relative load per event.
__attribute__((tls_model("initial-exec"))) thread_local std::int64_t t_last_stamp = 0;

// True if `value` became the new maximum.
bool update_max(std::atomic<std::int64_t>& peak, std::int64_t value) noexcept {
  std::int64_t seen = peak.load(std::memory_order_relaxed);
  while (value > seen) {
    if (peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) return true;
  }
  return false;
}

constexpr std::size_t kDeviceSlots = kMaxDevices + 1;  // the last slot is the CPU

[[noreturn]] [[gnu::cold]] void bad_device(int device) {
  throw config_error(
      fmt::format("device {} is out of range: accepted are -1 (CPU) and 0..{}", device, kMaxDevices - 1));
}

inline std::size_t slot_of(int device) {
  if (static_cast<unsigned>(device) < static_cast<unsigned>(kMaxDevices)) [[likely]] {
    return static_cast<std::size_t>(device);
  }
  if (device == kCpuDevice) return kMaxDevices;
  bad_device(device);
}
int device_of(std::size_t slot) { return slot == kMaxDevices ? kCpuDevice : static_cast<int>(slot); }

}  // namespace

std::string_view name(EventKind kind) {
  static constexpr std::string_view kNames[] = {"alloc", "free", "retag", "segment_alloc", "segment_free", "oom"};
  return kNames[static_cast<std::size_t>(kind)];
}

struct alignas(64) Ledger::Shard {
  mutable detail::SpinLock mutex;
  detail::AddressMap<AllocationRecord> live;
  std::vector<Event> ring;  // fixed capacity, overwritten in order
  std::uint64_t ring_next = 0;
  std::int64_t last_stamp = 0;
  LedgerCounters counters;
  // Written under the lock (a plain load and store, no read-modify-write),
  // read without it: device_stats() must not block, since a report written
  // at a signal may run while the interrupted thread holds this shard.
  std::array<std::atomic<std::int64_t>, kDeviceSlots> live_per_device{};

  void count_live(std::size_t slot, std::int64_t delta) {
    live_per_device[slot].store(live_per_device[slot].load(std::memory_order_relaxed) + delta,
                                std::memory_order_relaxed);
  }

  // Under the lock; `coarse` is read before taking it, `latest` is the
  // device's latest stamp. Note [Event clock].
  std::int64_t stamp(std::int64_t coarse, std::atomic<std::int64_t>& latest) noexcept {
    const std::int64_t t =
        std::max({coarse, t_last_stamp + 1, last_stamp + 1, latest.load(std::memory_order_relaxed) + 1});
    t_last_stamp = t;
    last_stamp = t;
    latest.store(t, std::memory_order_relaxed);
    return t;
  }

  void push(const Event& e) {
    const std::size_t mask = ring.size() - 1;  // the size is a power of two
    ring[ring_next & mask] = e;
    ++ring_next;
    // Note [Ring prefetch]: the next slot of this shard was written a whole
    // ring ago and is long out of cache. Storing to it would stall the next
    // event here: its lock and counters are locked instructions, which wait
    // for every earlier store to reach the cache. A prefetch for writing now
    // has it in cache by then, and does not hold up the locked instructions.
    const Event* next = &ring[ring_next & mask];
    __builtin_prefetch(next, 1, 3);
    __builtin_prefetch(reinterpret_cast<const char*>(next + 1) - 1, 1, 3);
  }
};

struct alignas(64) Ledger::DeviceCounters {
  // Each array on its own lines: current is written on every event, peaks
  // only when a new maximum is reached.
  alignas(64) std::array<std::atomic<std::int64_t>, kNumCategories> current{};
  std::atomic<std::int64_t> total{0};
  // Beside `total`, which every event on the device writes anyway, so it
  // adds no cache line for threads to pass around. Note [Event clock].
  std::atomic<std::int64_t> latest_stamp{0};
  alignas(64) std::array<std::atomic<std::int64_t>, kNumCategories> peak{};
  std::atomic<std::int64_t> total_peak{0};
  alignas(64) std::array<std::atomic<std::int64_t>, kNumCategories> step_peak{};
  std::atomic<std::int64_t> step_total_peak{0};
  alignas(64) std::atomic<std::int64_t> reserved{0};
  std::atomic<std::int64_t> reserved_peak{0};
  std::atomic<bool> seen{false};
  // Note [The breakdown at the peak]: written only by the allocation that
  // sets a new total_peak.
  alignas(64) std::array<std::atomic<std::int64_t>, kNumCategories> at_peak{};
  std::atomic<std::int64_t> at_peak_step{0};
  std::atomic<std::int64_t> at_peak_time_ns{0};
  std::atomic<std::uint8_t> at_peak_phase{0};

  // Out of line: record() inlines only the comparison that calls it.
  [[gnu::noinline]] void capture_peak(std::int64_t peak_now, const Tag& tag, std::int64_t stamp) noexcept {
    CategoryBytes now;
    for (std::size_t c = 0; c < kNumCategories; ++c) now[c] = current[c].load(std::memory_order_relaxed);
    // A later peak of another thread has its own copy to publish.
    if (total_peak.load(std::memory_order_relaxed) != peak_now) return;
    for (std::size_t c = 0; c < kNumCategories; ++c) at_peak[c].store(now[c], std::memory_order_relaxed);
    at_peak_step.store(tag.step, std::memory_order_relaxed);
    at_peak_time_ns.store(stamp, std::memory_order_relaxed);
    at_peak_phase.store(static_cast<std::uint8_t>(tag.phase), std::memory_order_relaxed);
  }
};

Ledger::Ledger(std::size_t event_capacity)
    : shards_(new Shard[kShards]),
      devices_(new DeviceCounters[kDeviceSlots]),
      ring_per_shard_(std::bit_floor(std::max<std::size_t>(1, event_capacity / kShards))) {
  for (std::size_t i = 0; i < kShards; ++i) shards_[i].ring.resize(ring_per_shard_);
}

Ledger::~Ledger() = default;

Ledger& Ledger::global() {
  // Leaked on purpose: allocations are freed during static destruction.
  static Ledger* ledger = new Ledger();
  return *ledger;
}

Ledger& Ledger::segments() {
  static Ledger* ledger = new Ledger();
  return *ledger;
}

std::int64_t Ledger::non_torch_bytes(int device) {
  const std::int64_t driver = segments().device_stats(device).reserved;
  const std::int64_t torch = global().device_stats(device).reserved;
  return std::max<std::int64_t>(0, driver - torch);
}

Ledger::Shard& Ledger::shard_for(std::uintptr_t address) const {
  // Allocations are at least 16-byte aligned; mix the bits above that.
  const std::uint64_t h = (static_cast<std::uint64_t>(address) >> 4) * 0x9E3779B97F4A7C15ull;
  return shards_[h >> 58];  // top 6 bits: kShards == 64
}

Ledger::DeviceCounters& Ledger::counters_for(int device) const { return devices_[slot_of(device)]; }

void Ledger::add_bytes(DeviceCounters& d, const Tag& tag, std::int64_t size, std::int64_t stamp) {
  const std::size_t c = index(tag.category);
  const std::int64_t cat_now = d.current[c].fetch_add(size, std::memory_order_relaxed) + size;
  const std::int64_t total_now = d.total.fetch_add(size, std::memory_order_relaxed) + size;
  update_max(d.peak[c], cat_now);
  update_max(d.step_peak[c], cat_now);
  if (update_max(d.total_peak, total_now)) [[unlikely]] d.capture_peak(total_now, tag, stamp);
  update_max(d.step_total_peak, total_now);
}

void Ledger::remove_bytes(DeviceCounters& d, Category category, std::int64_t size) {
  d.current[index(category)].fetch_sub(size, std::memory_order_relaxed);
  d.total.fetch_sub(size, std::memory_order_relaxed);
}

void Ledger::record(std::uintptr_t address, std::uint64_t size, int device, std::uintptr_t stream, Tag tag,
                    std::uintptr_t owner) {
  DeviceCounters& d = counters_for(device);
  if (!d.seen.load(std::memory_order_relaxed)) d.seen.store(true, std::memory_order_relaxed);
  const std::int64_t coarse = detail::coarse_ns();
  std::optional<AllocationRecord> replaced;
  std::int64_t stamp = 0;
  {
    Shard& s = shard_for(address);
    std::lock_guard lock(s.mutex);
    stamp = s.stamp(coarse, d.latest_stamp);
    const AllocationRecord rec{address, size, stream, tag.step, stamp, owner, static_cast<std::int16_t>(device),
                               tag.category, tag.phase};
    auto [live, inserted] = s.live.try_emplace(address, rec);
    if (!inserted) {
      replaced = *live;
      *live = rec;
      ++s.counters.replaced_records;
      s.count_live(slot_of(replaced->device), -1);
    }
    s.count_live(slot_of(device), 1);
    ++s.counters.allocations;
    s.push(Event{rec.time_ns, address, size, tag.step, stream, rec.device, EventKind::alloc, tag.category,
                 tag.category, tag.phase});
  }
  if (replaced) {
    DeviceCounters& old = counters_for(replaced->device);
    remove_bytes(old, replaced->category, static_cast<std::int64_t>(replaced->size));
  }
  add_bytes(d, tag, static_cast<std::int64_t>(size), stamp);
}

template <typename Check>
Ledger::CheckedRelease Ledger::release_if(std::uintptr_t address, Check&& check) {
  CheckedRelease out;
  Released& rel = out.released;
  DeviceCounters* d = nullptr;
  const std::int64_t coarse = detail::coarse_ns();
  {
    Shard& s = shard_for(address);
    std::lock_guard lock(s.mutex);
    AllocationRecord* live = s.live.find(address);
    if (live == nullptr) {
      ++s.counters.unknown_frees;
      return out;
    }
    rel = Released{live->size, live->stream, live->owner, live->device, live->category, live->phase, live->step};
    out.status = check(*live);
    if (out.status != ReleaseStatus::released) return out;
    s.live.erase(live);
    ++s.counters.frees;
    s.count_live(slot_of(rel.device), -1);
    d = &counters_for(rel.device);
    s.push(Event{s.stamp(coarse, d->latest_stamp), address, rel.size, process_step(), rel.stream, rel.device,
                 EventKind::free, rel.category, rel.category, process_phase()});
  }
  remove_bytes(*d, rel.category, static_cast<std::int64_t>(rel.size));
  return out;
}

std::optional<Released> Ledger::release(std::uintptr_t address) {
  const CheckedRelease result = release_if(address, [](const AllocationRecord&) { return ReleaseStatus::released; });
  if (result.status != ReleaseStatus::released) return std::nullopt;
  return result.released;
}

Ledger::CheckedRelease Ledger::release_checked(std::uintptr_t address, int device, std::uint64_t size,
                                               OwnerCheck owns, const void* context) {
  return release_if(address, [&](const AllocationRecord& rec) {
    if (!owns(rec.owner, context)) return ReleaseStatus::foreign;
    if (rec.device != device) return ReleaseStatus::wrong_device;
    if (rec.size != size) return ReleaseStatus::wrong_size;
    return ReleaseStatus::released;
  });
}

bool Ledger::retag(std::uintptr_t address, Category category) {
  AllocationRecord before;
  DeviceCounters* d = nullptr;
  const std::int64_t coarse = detail::coarse_ns();
  {
    Shard& s = shard_for(address);
    std::lock_guard lock(s.mutex);
    AllocationRecord* live = s.live.find(address);
    if (live == nullptr) return false;
    before = *live;
    if (before.category == category) return true;
    live->category = category;
    ++s.counters.retags;
    d = &counters_for(before.device);
    s.push(Event{s.stamp(coarse, d->latest_stamp), address, before.size, process_step(), before.stream, before.device,
                 EventKind::retag, category, before.category, process_phase()});
  }
  // Add before subtracting: the total never dips, and the new category's
  // peak sees the bytes.
  const auto size = static_cast<std::int64_t>(before.size);
  const std::size_t to = index(category);
  const std::int64_t now = d->current[to].fetch_add(size, std::memory_order_relaxed) + size;
  update_max(d->peak[to], now);
  update_max(d->step_peak[to], now);
  d->current[index(before.category)].fetch_sub(size, std::memory_order_relaxed);
  // Note [The breakdown at the peak]: live at the peak, so part of it.
  if (before.time_ns <= d->at_peak_time_ns.load(std::memory_order_relaxed)) {
    d->at_peak[to].fetch_add(size, std::memory_order_relaxed);
    d->at_peak[index(before.category)].fetch_sub(size, std::memory_order_relaxed);
  }
  return true;
}

std::optional<AllocationRecord> Ledger::find(std::uintptr_t address) const {
  Shard& s = shard_for(address);
  std::lock_guard lock(s.mutex);
  const AllocationRecord* live = s.live.find(address);
  if (live == nullptr) return std::nullopt;
  return *live;
}

void Ledger::segment_alloc(int device, std::uint64_t size, std::uintptr_t address) {
  DeviceCounters& d = counters_for(device);
  d.seen.store(true, std::memory_order_relaxed);
  const auto delta = static_cast<std::int64_t>(size);
  update_max(d.reserved_peak, d.reserved.fetch_add(delta, std::memory_order_relaxed) + delta);
  const std::int64_t coarse = detail::coarse_ns();
  Shard& s = shard_for(address);
  std::lock_guard lock(s.mutex);
  s.push(Event{s.stamp(coarse, d.latest_stamp), address, size, process_step(), 0, static_cast<std::int16_t>(device),
               EventKind::segment_alloc, Category::unknown, Category::unknown, process_phase()});
}

void Ledger::segment_free(int device, std::uint64_t size, std::uintptr_t address) {
  DeviceCounters& d = counters_for(device);
  d.reserved.fetch_sub(static_cast<std::int64_t>(size), std::memory_order_relaxed);
  const std::int64_t coarse = detail::coarse_ns();
  Shard& s = shard_for(address);
  std::lock_guard lock(s.mutex);
  s.push(Event{s.stamp(coarse, d.latest_stamp), address, size, process_step(), 0, static_cast<std::int16_t>(device),
               EventKind::segment_free, Category::unknown, Category::unknown, process_phase()});
}

void Ledger::note_oom(int device, std::uint64_t requested) {
  const Tag tag = current_tag();
  DeviceCounters& d = counters_for(device);
  const std::int64_t coarse = detail::coarse_ns();
  Shard& s = shard_for(0);
  std::lock_guard lock(s.mutex);
  s.push(Event{s.stamp(coarse, d.latest_stamp), 0, requested, tag.step, 0, static_cast<std::int16_t>(device),
               EventKind::oom, tag.category, tag.category, tag.phase});
}

void Ledger::begin_step(std::int64_t step) {
  {
    std::lock_guard lock(step_mutex_);
    const std::int64_t closing = open_step_.load(std::memory_order_relaxed);
    for (std::size_t slot = 0; slot < kDeviceSlots; ++slot) {
      DeviceCounters& d = devices_[slot];
      if (!d.seen.load(std::memory_order_relaxed)) continue;
      StepPeak peak{closing, device_of(slot), d.step_total_peak.exchange(d.total.load(std::memory_order_relaxed)),
                    {}};
      for (std::size_t c = 0; c < kNumCategories; ++c) {
        peak.at_end[c] = d.current[c].load(std::memory_order_relaxed);
        peak.peak_by_category[c] = d.step_peak[c].exchange(peak.at_end[c]);
      }
      if (step_history_.size() == kStepHistory) step_history_.pop_front();
      step_history_.push_back(peak);
    }
    open_step_.store(step, std::memory_order_relaxed);
  }
  set_process_step(step);
}

DeviceStats Ledger::device_stats(int device) const {
  const DeviceCounters& d = counters_for(device);
  DeviceStats out;
  out.device = device;
  for (std::size_t c = 0; c < kNumCategories; ++c) {
    out.current[c] = d.current[c].load(std::memory_order_relaxed);
    out.peak[c] = d.peak[c].load(std::memory_order_relaxed);
    out.allocated += out.current[c];
  }
  out.peak_allocated = d.total_peak.load(std::memory_order_relaxed);
  out.reserved = d.reserved.load(std::memory_order_relaxed);
  out.peak_reserved = d.reserved_peak.load(std::memory_order_relaxed);
  for (std::size_t c = 0; c < kNumCategories; ++c) out.peak_breakdown[c] = d.at_peak[c].load(std::memory_order_relaxed);
  out.peak_step = d.at_peak_step.load(std::memory_order_relaxed);
  out.peak_phase = static_cast<Phase>(d.at_peak_phase.load(std::memory_order_relaxed));
  out.peak_time_ns = d.at_peak_time_ns.load(std::memory_order_relaxed);
  const std::size_t slot = slot_of(device);
  for (std::size_t i = 0; i < kShards; ++i) {
    out.live_allocations += shards_[i].live_per_device[slot].load(std::memory_order_relaxed);
  }
  return out;
}

std::vector<DeviceStats> Ledger::stats() const {
  std::vector<DeviceStats> out;
  for (std::size_t slot = 0; slot < kDeviceSlots; ++slot) {
    if (devices_[slot].seen.load(std::memory_order_relaxed)) out.push_back(device_stats(device_of(slot)));
  }
  return out;
}

StepPeak Ledger::open_entry(std::size_t slot) const {
  const DeviceCounters& d = devices_[slot];
  StepPeak peak{open_step_.load(std::memory_order_relaxed), device_of(slot),
                d.step_total_peak.load(std::memory_order_relaxed), {}, {}};
  for (std::size_t c = 0; c < kNumCategories; ++c) {
    peak.peak_by_category[c] = d.step_peak[c].load();
    peak.at_end[c] = d.current[c].load(std::memory_order_relaxed);
  }
  return peak;
}

std::vector<StepPeak> Ledger::step_peaks() const {
  std::lock_guard lock(step_mutex_);
  std::vector<StepPeak> out(step_history_.begin(), step_history_.end());
  for (std::size_t slot = 0; slot < kDeviceSlots; ++slot)
    if (devices_[slot].seen.load(std::memory_order_relaxed)) out.push_back(open_entry(slot));
  return out;
}

std::optional<StepPeak> Ledger::open_step_peak(int device) const {
  const std::size_t slot = slot_of(device);
  if (!devices_[slot].seen.load(std::memory_order_relaxed)) return std::nullopt;
  std::lock_guard lock(step_mutex_);
  return open_entry(slot);
}

std::optional<StepPeak> Ledger::step_peak(std::int64_t step, int device) const {
  std::lock_guard lock(step_mutex_);
  // Newest first: the guard asks for the step that just closed.
  for (auto it = step_history_.rbegin(); it != step_history_.rend(); ++it)
    if (it->step == step && it->device == device) return *it;
  const std::size_t slot = slot_of(device);
  if (step == open_step_.load(std::memory_order_relaxed) && devices_[slot].seen.load(std::memory_order_relaxed))
    return open_entry(slot);
  return std::nullopt;
}

std::vector<AllocationRecord> Ledger::live_allocations() const {
  std::vector<AllocationRecord> out;
  for (std::size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    shards_[i].live.for_each([&](std::uintptr_t, const AllocationRecord& rec) { out.push_back(rec); });
  }
  return out;
}

std::vector<Event> Ledger::recent_events() const {
  // A full shard holds only its last ring_per_shard_ events; events older
  // than the newest "oldest kept" event of any full shard may be missing from
  // other shards, so the merged window starts there.
  std::vector<Event> out;
  std::int64_t window_start = INT64_MIN;
  for (std::size_t i = 0; i < kShards; ++i) {
    const Shard& s = shards_[i];
    std::lock_guard lock(s.mutex);
    const std::uint64_t kept = std::min<std::uint64_t>(s.ring_next, s.ring.size());
    const std::uint64_t first = s.ring_next - kept;
    if (s.ring_next > s.ring.size()) window_start = std::max(window_start, s.ring[first % s.ring.size()].time_ns);
    for (std::uint64_t k = first; k < s.ring_next; ++k) out.push_back(s.ring[k % s.ring.size()]);
  }
  std::erase_if(out, [&](const Event& e) { return e.time_ns < window_start; });
  std::stable_sort(out.begin(), out.end(), [](const Event& a, const Event& b) { return a.time_ns < b.time_ns; });
  return out;
}

LedgerCounters Ledger::counters() const {
  LedgerCounters out;
  for (std::size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    const LedgerCounters& c = shards_[i].counters;
    out.allocations += c.allocations;
    out.frees += c.frees;
    out.retags += c.retags;
    out.unknown_frees += c.unknown_frees;
    out.replaced_records += c.replaced_records;
  }
  return out;
}

void Ledger::reset() {
  for (std::size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    shards_[i].live.clear();
    shards_[i].ring_next = 0;
    shards_[i].last_stamp = 0;
    shards_[i].counters = {};
    for (auto& live : shards_[i].live_per_device) live.store(0, std::memory_order_relaxed);
  }
  for (std::size_t slot = 0; slot < kDeviceSlots; ++slot) {
    DeviceCounters& d = devices_[slot];
    for (std::size_t c = 0; c < kNumCategories; ++c) {
      d.current[c] = 0;
      d.peak[c] = 0;
      d.step_peak[c] = 0;
      d.at_peak[c] = 0;
    }
    d.at_peak_step = 0;
    d.at_peak_time_ns = 0;
    d.at_peak_phase = 0;
    d.total = 0;
    d.total_peak = 0;
    d.step_total_peak = 0;
    d.reserved = 0;
    d.reserved_peak = 0;
    d.latest_stamp = 0;
    d.seen = false;
  }
  std::lock_guard lock(step_mutex_);
  step_history_.clear();
  open_step_ = 0;
}

}  // namespace oomguard
