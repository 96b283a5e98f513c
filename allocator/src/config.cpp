#include "oomguard/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

#include "oomguard/error.hpp"

namespace oomguard {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

struct Unit {
  std::string_view suffix;
  double scale;
};
constexpr Unit kUnits[] = {
    {"KiB", 1024.0}, {"MiB", 1024.0 * 1024}, {"GiB", 1024.0 * 1024 * 1024}, {"TiB", 1024.0 * 1024 * 1024 * 1024},
    {"KB", 1e3},     {"MB", 1e6},            {"GB", 1e9},                   {"TB", 1e12},
    {"k", 1024.0},   {"m", 1024.0 * 1024},   {"g", 1024.0 * 1024 * 1024},   {"t", 1024.0 * 1024 * 1024 * 1024},
    {"K", 1024.0},   {"M", 1024.0 * 1024},   {"G", 1024.0 * 1024 * 1024},   {"T", 1024.0 * 1024 * 1024 * 1024},
    {"B", 1.0},
};

[[noreturn]] void bad_size(std::string_view text, std::string_view what) {
  throw config_error(fmt::format(
      "invalid {} '{}': expected a non-negative number of bytes with an optional unit "
      "(B, KiB, MiB, GiB, TiB, KB, MB, GB, TB, k, m, g, t), e.g. '20GiB' or '512MiB'",
      what, text));
}

}  // namespace

std::uint64_t parse_bytes(std::string_view text, std::string_view what) {
  const std::string_view s = trim(text);
  double scale = 1.0;
  std::string_view number = s;
  for (const Unit& unit : kUnits) {
    if (s.size() > unit.suffix.size() && s.ends_with(unit.suffix)) {
      scale = unit.scale;
      number = trim(s.substr(0, s.size() - unit.suffix.size()));
      break;
    }
  }
  if (number.empty()) bad_size(text, what);
  double value = 0.0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc{} || end != number.data() + number.size() || !std::isfinite(value) || value < 0) {
    bad_size(text, what);
  }
  const double bytes = std::round(value * scale);
  if (bytes >= static_cast<double>(std::numeric_limits<std::uint64_t>::max())) {
    throw config_error(fmt::format("invalid {} '{}': more than 2^64 bytes (16 EiB), the most a size can be", what,
                                   text));
  }
  return static_cast<std::uint64_t>(bytes);
}

std::uint64_t BudgetSpec::resolve(std::uint64_t device_total) const {
  if (fraction > 0.0) return static_cast<std::uint64_t>(static_cast<double>(device_total) * fraction);
  return bytes;
}

BudgetSpec parse_budget(std::string_view text) {
  const std::string_view s = trim(text);
  BudgetSpec spec;
  if (s.ends_with('%')) {
    const std::string_view number = trim(s.substr(0, s.size() - 1));
    double percent = 0.0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), percent);
    if (number.empty() || ec != std::errc{} || end != number.data() + number.size() || !(percent > 0.0) ||
        percent > 100.0) {
      throw config_error(fmt::format(
          "invalid budget '{}': a percentage must be in (0, 100], e.g. '90%'; or give bytes, e.g. '20GiB'", text));
    }
    spec.fraction = percent / 100.0;
    return spec;
  }
  spec.bytes = parse_bytes(s, "budget");
  if (spec.bytes == 0) {
    throw config_error(fmt::format("invalid budget '{}': must be greater than zero, e.g. '20GiB' or '90%'", text));
  }
  return spec;
}

// Note [A value may hold a comma]
// The grammar is PYTORCH_CUDA_ALLOC_CONF's, which has no way to say a comma
// inside a value, and `oomguard run --report-dir` pasted the folder into it:
// a path with a comma broke the run, and `--budget '1GiB,report_dir:/etc'`
// set a second key. A backslash now takes the next character literally
// (in keys too, where no accepted key needs it), join_conf escapes what it
// writes, and the CLI checks each option's value before joining. Quoting
// was dropped: a path may hold quotes as well, and one escape rule is less
// to get wrong.
namespace {

// Cut `text` at unescaped `separator`s; escapes are kept for the next level.
std::vector<std::string_view> split_unescaped(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == separator) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(text.substr(start));
  return parts;
}

std::string unescape(std::string_view text, std::string_view source, std::string_view item) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\') {
      if (++i == text.size())
        throw config_error(fmt::format("{}: entry '{}' ends in a lone '\\'; write '\\\\' for a backslash",
                                       source, item));
    }
    out += text[i];
  }
  return out;
}

std::size_t unescaped_colon(std::string_view item) {
  for (std::size_t i = 0; i < item.size(); ++i) {
    if (item[i] == '\\') ++i;
    else if (item[i] == ':') return i;
  }
  return std::string_view::npos;
}

}  // namespace

std::vector<ConfEntry> parse_conf(std::string_view text, std::string_view source) {
  std::vector<ConfEntry> entries;
  for (const std::string_view part : split_unescaped(text, ',')) {
    const std::string_view item = trim(part);
    if (item.empty()) continue;
    const std::size_t colon = unescaped_colon(item);
    if (colon == std::string_view::npos || trim(item.substr(0, colon)).empty()) {
      throw config_error(fmt::format("{}: malformed entry '{}': expected key:value, entries separated by ','",
                                     source, item));
    }
    ConfEntry entry{unescape(trim(item.substr(0, colon)), source, item),
                    unescape(trim(item.substr(colon + 1)), source, item)};
    for (const ConfEntry& seen : entries) {
      if (seen.key == entry.key) {
        throw config_error(fmt::format("{}: key '{}' is given twice", source, entry.key));
      }
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::string join_conf(std::span<const ConfEntry> entries) {
  std::string out;
  auto append_escaped = [&out](std::string_view text) {
    for (const char c : text) {
      if (c == ',' || c == ':' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
  };
  for (const ConfEntry& e : entries) {
    if (!out.empty()) out.push_back(',');
    append_escaped(e.key);
    out.push_back(':');
    append_escaped(e.value);
  }
  return out;
}

void check_conf_keys(std::span<const ConfEntry> entries, std::span<const std::string_view> accepted,
                     std::string_view source) {
  for (const ConfEntry& entry : entries) {
    if (std::find(accepted.begin(), accepted.end(), entry.key) == accepted.end()) {
      throw config_error(
          fmt::format("{}: unknown key '{}'; accepted keys: {}", source, entry.key, fmt::join(accepted, ", ")));
    }
  }
}

bool parse_bool(std::string_view text, std::string_view what) {
  std::string s(trim(text));
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));  // TRUE as true
  if (s == "1" || s == "true" || s == "on" || s == "yes") return true;
  if (s == "0" || s == "false" || s == "off" || s == "no") return false;
  throw config_error(fmt::format("invalid value '{}' for {}: accepted: true, false, 1, 0, on, off", text, what));
}

}  // namespace oomguard
