#include "oomguard/guard/report/headline.hpp"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "oomguard/error.hpp"

namespace oomguard::guard::report {

std::string headline(const nlohmann::json& summary, const std::string& page) {
  const std::string where = page.empty() ? "report.html not written (see the errors above)" : "report: " + page;
  const nlohmann::json& oom = summary.at("oom");
  if (oom.is_object()) {
    return fmt::format("oomguard: rank {} ran out of memory at step {} ({}): {} refused with {} allocated; {}",
                       summary.value("rank", 0), oom.value("step", std::int64_t{0}), oom.value("phase", std::string("?")),
                       format_bytes(oom.value("requested_bytes", std::int64_t{0})),
                       format_bytes(oom.value("allocated_bytes", std::int64_t{0})), where);
  }
  const nlohmann::json& peak = summary.at("peak");
  const auto total = peak.value("allocated_bytes", std::int64_t{0});
  if (total <= 0) return "";
  std::vector<std::pair<std::int64_t, std::string>> parts;
  for (const auto& [category, bytes] : peak.at("by_category").items()) {
    const auto value = bytes.get<std::int64_t>();
    if (value * 100 >= total) parts.emplace_back(value, category);
  }
  std::stable_sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string categories;
  for (const auto& [bytes, category] : parts)
    categories += fmt::format("{}{} {}", categories.empty() ? "" : ", ", category, format_bytes(bytes));
  return fmt::format("oomguard: rank {} peak {} on {} at step {} ({}): {}; {}",
                     summary.value("rank", 0), format_bytes(total), summary.value("device", std::string("?")),
                     peak.value("step", std::int64_t{0}), peak.value("phase", std::string("?")), categories, where);
}

}  // namespace oomguard::guard::report
