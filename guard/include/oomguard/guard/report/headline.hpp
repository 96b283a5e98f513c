// The one line a run prints when it ends well: its peak by category and
// where the report is.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace oomguard::guard::report {

// "oomguard: rank 0 peak 12.6 MiB on cpu at step 5 (backward): activations
// 8.5 MiB, optimizer 1.6 MiB, ...; report: PAGE". The categories are the
// summary's breakdown at the peak, largest first, those under 1% of the peak
// left out. After an out-of-memory, the refusal instead. `page` is the
// report.html written; empty when it could not be (a read-only or full
// folder), and the line says so rather than name a page that is not there.
// Empty when the summary saw no allocation.
std::string headline(const nlohmann::json& summary, const std::string& page);

}  // namespace oomguard::guard::report
