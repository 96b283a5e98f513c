// The one line a run prints when it ends well: its peak by category and
// where the report is.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace oomguard::guard::report {

// "oomguard: rank 0 peak 12.6 MiB on cpu at step 5 (backward): activations
// 8.5 MiB, optimizer 1.6 MiB, ...; report: DIR/report.html". The categories
// are the summary's breakdown at the peak, largest first, those under 1% of
// the peak left out. After an out-of-memory, the refusal instead. Empty when
// the summary saw no allocation.
std::string headline(const nlohmann::json& summary, const std::string& dir);

}  // namespace oomguard::guard::report
