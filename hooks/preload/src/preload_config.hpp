// What the preload library reads from the environment, once, at load.
//
// OOMGUARD_CONF is shared with the other layers; this library reads only the
// keys it owns (`budget`) and leaves the rest to them. A malformed value is a
// fatal, clearly worded error at load: running unguarded when a budget was
// asked for would be worse than not running.
#pragma once

#include <optional>
#include <string>

#include "oomguard/config.hpp"

namespace oomguard::preload {

struct PreloadConfig {
  std::optional<BudgetSpec> budget;  // per device, segment level
  std::string budget_text;           // as written, for the summary
  std::string report_dir;            // OOMGUARD_REPORT_DIR, may be empty
  std::string run_id;                // OOMGUARD_RUN_ID, may be empty
  std::string rank;                  // RANK, may be empty
};

// Parse the environment. Throws config_error naming the variable and the value.
PreloadConfig read_preload_config();

// The configuration read at load (or re-read in a forked child).
// Valid after load_config_or_exit().
const PreloadConfig& config() noexcept;
// Read the environment once (the first caller wins: our constructor, or an
// interposed call that runs before it); on bad input print the error and
// _exit(2).
void load_config_or_exit() noexcept;

}  // namespace oomguard::preload
