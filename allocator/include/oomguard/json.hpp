// JSON forms of the core's records, shared by the C ABI and the reports.
#pragma once

#include <nlohmann/json.hpp>

#include "oomguard/device_allocator.hpp"
#include "oomguard/ledger.hpp"

namespace oomguard {

nlohmann::json category_bytes_json(const CategoryBytes& bytes);
nlohmann::json to_json(const DeviceStats& stats);
nlohmann::json to_json(const AllocatorStats& stats);
nlohmann::json to_json(const StepPeak& peak);
nlohmann::json to_json(const AllocationRecord& record);
nlohmann::json to_json(const Event& event);
nlohmann::json to_json(const LedgerCounters& counters);

}  // namespace oomguard
