// The `key:value,key:value` grammar of PYTORCH_CUDA_ALLOC_CONF, used by
// OOMGUARD_CONF, the C ABI and the CLI; and the byte-size strings in it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace oomguard {

// "1048576", "512MiB", "1.5GiB", "20GB", "4g". Binary units (KiB, MiB, GiB,
// TiB and the one-letter k, m, g, t) are powers of 1024; decimal ones (KB,
// MB, GB, TB) powers of 1000. Throws config_error naming `what` on bad input.
std::uint64_t parse_bytes(std::string_view text, std::string_view what = "size");

// A budget is either absolute bytes or a fraction of the device ("90%").
struct BudgetSpec {
  std::uint64_t bytes = 0;   // used when fraction == 0
  double fraction = 0.0;     // in (0, 1]
  std::uint64_t resolve(std::uint64_t device_total) const;
};
BudgetSpec parse_budget(std::string_view text);

struct ConfEntry {
  std::string key;
  std::string value;
};

// Split "a:1,b:2" into entries in order. Empty entries (",,") are skipped;
// an entry without ':' or with an empty key, or a key given twice, throws
// config_error quoting the entry. `source` names the origin in messages.
// A backslash takes the next character as it is: `report_dir:/runs/a\,b`
// is the folder "/runs/a,b" (Note [A value may hold a comma]).
std::vector<ConfEntry> parse_conf(std::string_view text, std::string_view source = "OOMGUARD_CONF");

// The text parse_conf reads back as `entries`, values escaped: the one way
// every layer (the CLI, the Python launcher) builds OOMGUARD_CONF.
std::string join_conf(std::span<const ConfEntry> entries);

// Throw config_error if any entry's key is not in `accepted`, listing them.
void check_conf_keys(std::span<const ConfEntry> entries, std::span<const std::string_view> accepted,
                     std::string_view source = "OOMGUARD_CONF");

bool parse_bool(std::string_view text, std::string_view what);

}  // namespace oomguard
