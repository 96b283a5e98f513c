#include "oomguard/guard/report/snapshot.hpp"

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "oomguard/guard/report/pickle_writer.hpp"
#include "oomguard/ledger.hpp"

namespace oomguard::guard::report {
namespace {

// The viewer's device index: the accelerator ordinal; the host as 0 when
// there is no accelerator, else left out (-1).
int viewer_device(int device, bool any_accelerator) {
  if (device != kCpuDevice) return device;
  return any_accelerator ? -1 : 0;
}

const char* action_name(EventKind kind) {
  switch (kind) {
    case EventKind::alloc: return "alloc";
    case EventKind::free: return "free_completed";
    case EventKind::segment_alloc: return "segment_alloc";
    case EventKind::segment_free: return "segment_free";
    case EventKind::oom: return "oom";
    case EventKind::retag: break;
  }
  return nullptr;  // retags have no viewer action
}

void write_segment(PickleWriter& w, const AllocationRecord& r, int device) {
  w.begin_dict();
  w.key("device"), w.integer(device);
  w.key("address"), w.unsigned_integer(r.address);
  w.key("total_size"), w.unsigned_integer(r.size);
  w.key("allocated_size"), w.unsigned_integer(r.size);
  w.key("active_size"), w.unsigned_integer(r.size);
  w.key("requested_size"), w.unsigned_integer(r.size);
  w.key("stream"), w.unsigned_integer(r.stream);
  w.key("segment_type"), w.str(r.size < (1u << 20) ? "small" : "large");
  w.key("segment_pool_id"), w.begin_list(), w.integer(0), w.integer(0), w.end_list();
  w.key("is_expandable"), w.boolean(false);
  w.key("frames"), w.begin_list(), w.end_list();
  w.key("blocks"), w.begin_list();
  w.begin_dict();
  w.key("address"), w.unsigned_integer(r.address);
  w.key("size"), w.unsigned_integer(r.size);
  w.key("requested_size"), w.unsigned_integer(r.size);
  w.key("state"), w.str("active_allocated");
  w.key("frames"), w.begin_list(), w.end_list();
  w.key("category"), w.str(name(r.category));
  w.end_dict();
  w.end_list();
  w.end_dict();
}

void write_entry(PickleWriter& w, const char* action, std::uint64_t address, std::uint64_t size, std::uint64_t stream,
                 std::int64_t time_us, std::string_view category, bool oom) {
  w.begin_dict();
  w.key("action"), w.str(action);
  w.key("addr"), w.unsigned_integer(address);
  w.key("size"), w.unsigned_integer(size);
  w.key("stream"), w.unsigned_integer(stream);
  w.key("time_us"), w.integer(time_us);
  w.key("frames"), w.begin_list(), w.end_list();
  w.key("category"), w.str(category);
  if (oom) w.key("device_free"), w.integer(0);
  w.end_dict();
}

}  // namespace

std::string build_snapshot_pickle() {
  const Ledger& ledger = Ledger::global();
  const auto live = ledger.live_allocations();
  const auto events = ledger.recent_events();
  bool any_accelerator = false;
  for (const auto& r : live) any_accelerator |= r.device != kCpuDevice;
  for (const auto& e : events) any_accelerator |= e.device != kCpuDevice;
  int max_device = 0;
  for (const auto& r : live) max_device = std::max(max_device, viewer_device(r.device, any_accelerator));
  for (const auto& e : events) max_device = std::max(max_device, viewer_device(e.device, any_accelerator));

  // A retag (the census naming weights, gradients, optimizer state) gives
  // the allocation's alloc entry its category: the viewer has no retag.
  std::vector<Category> category(events.size());
  std::unordered_map<std::uintptr_t, std::size_t> last_alloc;
  bool has_unknown = false;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    category[i] = e.category;
    if (e.kind == EventKind::alloc) last_alloc[e.address] = i;
    else if (e.kind == EventKind::free) last_alloc.erase(e.address);
    else if (e.kind == EventKind::retag)
      if (const auto it = last_alloc.find(e.address); it != last_alloc.end()) category[it->second] = e.category;
  }
  for (std::size_t i = 0; i < events.size(); ++i)
    has_unknown |= action_name(events[i].kind) != nullptr && category[i] == Category::unknown &&
                   viewer_device(events[i].device, any_accelerator) >= 0;

  PickleWriter w;
  w.buffer().reserve(200 * live.size() + 120 * events.size() + 256);
  w.begin_dict();
  w.key("segments"), w.begin_list();
  for (const auto& r : live) {
    const int device = viewer_device(r.device, any_accelerator);
    if (device >= 0) write_segment(w, r, device);
  }
  w.end_list();
  w.key("device_traces"), w.begin_list();
  const std::int64_t first_ns = events.empty() ? 0 : events.front().time_ns;
  for (int d = 0; d <= max_device; ++d) {
    w.begin_list();
    for (std::size_t i = 0; i < events.size(); ++i) {
      const Event& e = events[i];
      const char* action = action_name(e.kind);
      if (action == nullptr || viewer_device(e.device, any_accelerator) != d) continue;
      write_entry(w, action, e.address, e.size, e.stream, (e.time_ns - first_ns) / 1000, name(category[i]),
                  e.kind == EventKind::oom);
    }
    if (d == 0 && !has_unknown) write_entry(w, "snapshot", 0, 0, 0, 0, "unknown", false);
    w.end_list();
  }
  w.end_list();
  w.key("allocator_settings"), w.begin_dict(), w.key("source"), w.str("oomguard"), w.end_dict();
  w.key("external_annotations"), w.begin_list(), w.end_list();
  w.end_dict();
  return w.finish();
}

}  // namespace oomguard::guard::report
