#include "oomguard/allocator_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "oomguard/cuda_driver_upstream.hpp"
#include "oomguard/error.hpp"

namespace oomguard {

AllocatorConfig parse_allocator_config(std::span<const ConfEntry> entries, bool strict, std::string_view source) {
  if (strict) check_conf_keys(entries, kAllocatorConfKeys, source);
  AllocatorConfig config;
  for (const ConfEntry& e : entries) {
    if (e.key == "upstream") {
      if (e.value != "cuda" && e.value != "simulated") {
        throw config_error(fmt::format("{}: upstream '{}' is not accepted; accepted: cuda, simulated", source, e.value));
      }
      config.upstream = e.value;
    } else if (e.key == "capacity") {
      config.simulated.capacity_bytes = parse_bytes(e.value, "capacity");
    } else if (e.key == "devices") {
      int devices = 0;
      const auto [end, ec] = std::from_chars(e.value.data(), e.value.data() + e.value.size(), devices);
      if (ec != std::errc{} || end != e.value.data() + e.value.size() || devices < 1 || devices > kMaxDevices) {
        throw config_error(fmt::format("{}: devices '{}' is not accepted; give an integer in 1..{}", source, e.value,
                                       kMaxDevices));
      }
      config.simulated.devices = devices;
    } else if (e.key == "budget") {
      config.budget = parse_budget(e.value);
      config.has_budget = true;
    } else if (e.key == "per_stream_pools") {
      config.per_stream_pools = parse_bool(e.value, "per_stream_pools");
    } else if (e.key.starts_with("limit_")) {
      const auto category = try_parse_category(std::string_view(e.key).substr(6));
      if (!category) {
        if (strict) check_conf_keys(std::span(&e, 1), kAllocatorConfKeys, source);
        continue;
      }
      config.category_limits[index(*category)] = parse_bytes(e.value, e.key);
    }
  }
  return config;
}

std::shared_ptr<Upstream> make_upstream(const AllocatorConfig& config) {
  if (config.upstream == "simulated") return std::make_shared<SimulatedDevice>(config.simulated);
  return std::make_shared<CudaDriverUpstream>();
}

std::unique_ptr<CachingAllocator> make_allocator(const AllocatorConfig& config, Ledger* ledger) {
  std::shared_ptr<Upstream> upstream = make_upstream(config);
  CachingAllocatorOptions options;
  options.per_stream_pools = config.per_stream_pools;
  options.category_limits = config.category_limits;
  if (config.has_budget) options.budget_bytes = config.budget.resolve(upstream->memory_info(0).total_bytes);
  return std::make_unique<CachingAllocator>(std::move(upstream), options, ledger);
}

}  // namespace oomguard
