#include "oomguard/guard/report/snapshot.hpp"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "oomguard/ledger.hpp"

namespace oomguard::guard::report {
namespace {

using nlohmann::json;

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

}  // namespace

json build_snapshot() {
  const Ledger& ledger = Ledger::global();
  const auto live = ledger.live_allocations();
  const auto events = ledger.recent_events();
  bool any_accelerator = false;
  int max_device = 0;
  for (const auto& r : live) any_accelerator |= r.device != kCpuDevice;
  for (const auto& e : events) any_accelerator |= e.device != kCpuDevice;
  for (const auto& r : live) max_device = std::max(max_device, viewer_device(r.device, any_accelerator));
  for (const auto& e : events) max_device = std::max(max_device, viewer_device(e.device, any_accelerator));

  json segments = json::array();
  for (const auto& r : live) {
    const int device = viewer_device(r.device, any_accelerator);
    if (device < 0) continue;
    json block = {{"address", r.address}, {"size", r.size}, {"requested_size", r.size},
                  {"state", "active_allocated"}, {"frames", json::array()}, {"category", name(r.category)}};
    segments.push_back({{"device", device},
                        {"address", r.address},
                        {"total_size", r.size},
                        {"allocated_size", r.size},
                        {"active_size", r.size},
                        {"requested_size", r.size},
                        {"stream", r.stream},
                        {"segment_type", r.size < (1u << 20) ? "small" : "large"},
                        {"segment_pool_id", json::array({0, 0})},
                        {"is_expandable", false},
                        {"frames", json::array()},
                        {"blocks", json::array({block})}});
  }

  json traces = json::array();
  for (int d = 0; d <= max_device; ++d) traces.push_back(json::array());
  // A retag (the census naming weights, gradients, optimizer state) moves
  // the allocation's entry to its category: the viewer has no retag action.
  std::unordered_map<std::uintptr_t, std::pair<std::size_t, std::size_t>> last_alloc;  // addr -> (device, index)
  std::int64_t first_ns = events.empty() ? 0 : events.front().time_ns;
  for (const auto& e : events) {
    const int device = viewer_device(e.device, any_accelerator);
    if (device < 0) continue;
    if (e.kind == EventKind::retag) {
      if (const auto it = last_alloc.find(e.address); it != last_alloc.end())
        traces[it->second.first][it->second.second]["category"] = name(e.category);
      continue;
    }
    const char* action = action_name(e.kind);
    if (action == nullptr) continue;
    json entry = {{"action", action},
                  {"addr", e.address},
                  {"size", e.size},
                  {"stream", e.stream},
                  {"time_us", (e.time_ns - first_ns) / 1000},
                  {"frames", json::array()},
                  {"category", name(e.category)}};
    if (e.kind == EventKind::oom) entry["device_free"] = 0;
    auto& trace = traces[static_cast<std::size_t>(device)];
    if (e.kind == EventKind::alloc) last_alloc[e.address] = {static_cast<std::size_t>(device), trace.size()};
    if (e.kind == EventKind::free) last_alloc.erase(e.address);
    trace.push_back(std::move(entry));
  }
  bool has_unknown = false;
  for (const auto& trace : traces)
    for (const auto& entry : trace) has_unknown |= entry["category"] == "unknown";
  if (!has_unknown) {
    traces[0].push_back({{"action", "snapshot"}, {"addr", 0}, {"size", 0}, {"stream", 0}, {"time_us", 0},
                         {"frames", json::array()}, {"category", "unknown"}});
  }
  return {{"segments", segments},
          {"device_traces", traces},
          {"allocator_settings", {{"source", "oomguard"}}},
          {"external_annotations", json::array()}};
}

}  // namespace oomguard::guard::report
