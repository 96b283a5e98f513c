#include "oomguard/json.hpp"

namespace oomguard {

nlohmann::json category_bytes_json(const CategoryBytes& bytes) {
  nlohmann::json out = nlohmann::json::object();
  for (std::size_t i = 0; i < kNumCategories; ++i) out[std::string(kCategoryNames[i])] = bytes[i];
  return out;
}

nlohmann::json to_json(const DeviceStats& s) {
  return {{"device", s.device},
          {"allocated_bytes", s.allocated},
          {"peak_allocated_bytes", s.peak_allocated},
          {"reserved_bytes", s.reserved},
          {"peak_reserved_bytes", s.peak_reserved},
          {"live_allocations", s.live_allocations},
          {"current_by_category", category_bytes_json(s.current)},
          {"peak_by_category", category_bytes_json(s.peak)},
          {"peak_breakdown", category_bytes_json(s.peak_breakdown)},
          {"peak_step", s.peak_step},
          {"peak_phase", name(s.peak_phase)}};
}

nlohmann::json to_json(const AllocatorStats& s) {
  return {{"device", s.device},
          {"allocated_bytes", s.allocated_bytes},
          {"requested_bytes", s.requested_bytes},
          {"reserved_bytes", s.reserved_bytes},
          {"peak_allocated_bytes", s.peak_allocated_bytes},
          {"peak_reserved_bytes", s.peak_reserved_bytes},
          {"largest_free_block", s.largest_free_block},
          {"fragmentation", s.fragmentation},
          {"live_allocations", s.live_allocations},
          {"segments", s.segments},
          {"cache_hits", s.cache_hits},
          {"cache_misses", s.cache_misses},
          {"upstream_allocs", s.upstream_allocs},
          {"upstream_frees", s.upstream_frees},
          {"upstream_failures", s.upstream_failures},
          {"retries", s.retries},
          {"ooms", s.ooms},
          {"invalid_frees", s.invalid_frees},
          {"budget_bytes", s.budget_bytes}};
}

nlohmann::json to_json(const StepPeak& p) {
  return {{"step", p.step},
          {"device", p.device},
          {"peak_allocated_bytes", p.peak_allocated},
          {"peak_by_category", category_bytes_json(p.peak_by_category)}};
}

nlohmann::json to_json(const AllocationRecord& r) {
  return {{"address", r.address}, {"size", r.size},   {"device", r.device},
          {"stream", r.stream},   {"step", r.step},   {"time_ns", r.time_ns},
          {"category", name(r.category)}, {"phase", name(r.phase)}};
}

nlohmann::json to_json(const Event& e) {
  nlohmann::json out = {{"time_ns", e.time_ns}, {"kind", name(e.kind)},   {"address", e.address},
                        {"size", e.size},       {"device", e.device},     {"stream", e.stream},
                        {"step", e.step},       {"category", name(e.category)}, {"phase", name(e.phase)}};
  if (e.kind == EventKind::retag) out["previous_category"] = name(e.previous_category);
  return out;
}

nlohmann::json to_json(const LedgerCounters& c) {
  return {{"allocations", c.allocations},
          {"frees", c.frees},
          {"retags", c.retags},
          {"unknown_frees", c.unknown_frees},
          {"replaced_records", c.replaced_records}};
}

}  // namespace oomguard
