// Building an allocator from OOMGUARD_CONF-style entries.
#pragma once

#include <array>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "oomguard/caching_allocator.hpp"
#include "oomguard/config.hpp"
#include "oomguard/simulated_device.hpp"

namespace oomguard {

// The keys the allocator layer owns. limit_<category> is one per category.
inline constexpr std::array<std::string_view, 5 + kNumCategories> kAllocatorConfKeys = {
    "upstream",          "capacity",         "devices",          "budget",
    "per_stream_pools",  "limit_weights",    "limit_gradients",  "limit_optimizer",
    "limit_activations", "limit_adapters",   "limit_temporary",  "limit_checkpoint",
    "limit_non_torch",   "limit_unknown"};

struct AllocatorConfig {
  std::string upstream = "cuda";  // cuda | simulated
  SimulatedDeviceOptions simulated;
  bool has_budget = false;
  BudgetSpec budget;
  bool per_stream_pools = true;
  CategoryLimits::Limits category_limits{};
};

// Entries whose key the allocator does not own are an error when `strict`,
// and left to the other layers otherwise.
AllocatorConfig parse_allocator_config(std::span<const ConfEntry> entries, bool strict,
                                       std::string_view source = "OOMGUARD_CONF");

std::shared_ptr<Upstream> make_upstream(const AllocatorConfig& config);
std::unique_ptr<CachingAllocator> make_allocator(const AllocatorConfig& config, Ledger* ledger = &Ledger::global());

}  // namespace oomguard
