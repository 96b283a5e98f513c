#include "config.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>
#include <unistd.h>

namespace oomguard::sim {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = s.find(separator, start);
    parts.push_back(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

bool parse_int(std::string_view s, long& value, int base = 10) {
  s = trim(s);
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
  return ec == std::errc{} && end == s.data() + s.size();
}

std::string table_names() {
  std::string names;
  for (const GpuModel& model : gpu_models()) {
    if (!names.empty()) names += ", ";
    names += model.table_name;
  }
  return names;
}

// One element of OOMGUARD_SIMULATE: "NAME" or "NxNAME" (spaces allowed
// around the x).
bool parse_device_element(std::string_view element, std::vector<const GpuModel*>& out) {
  element = trim(element);
  long count = 1;
  std::string_view name = element;
  const std::size_t x = element.find_first_of("xX");
  if (x != std::string_view::npos && x > 0) {
    long n = 0;
    if (parse_int(element.substr(0, x), n)) {
      if (n < 1 || n > 64) return false;
      count = n;
      name = trim(element.substr(x + 1));
    }
  }
  const GpuModel* model = find_gpu_model(name);
  if (!model) return false;
  for (long i = 0; i < count; ++i) out.push_back(model);
  return true;
}

}  // namespace

bool parse_bytes(const std::string& input, std::uint64_t& bytes) {
  struct Unit {
    std::string_view suffix;
    double scale;
  };
  static constexpr Unit kUnits[] = {
      {"KiB", 1024.0}, {"MiB", 1024.0 * 1024}, {"GiB", 1024.0 * 1024 * 1024}, {"TiB", 1024.0 * 1024 * 1024 * 1024},
      {"KB", 1e3},     {"MB", 1e6},            {"GB", 1e9},                   {"TB", 1e12},
      {"k", 1024.0},   {"m", 1024.0 * 1024},   {"g", 1024.0 * 1024 * 1024},   {"t", 1024.0 * 1024 * 1024 * 1024},
      {"K", 1024.0},   {"M", 1024.0 * 1024},   {"G", 1024.0 * 1024 * 1024},   {"T", 1024.0 * 1024 * 1024 * 1024},
      {"B", 1.0},
  };
  const std::string_view s = trim(input);
  double scale = 1.0;
  std::string_view number = s;
  for (const Unit& unit : kUnits) {
    if (s.size() > unit.suffix.size() && s.ends_with(unit.suffix)) {
      scale = unit.scale;
      number = trim(s.substr(0, s.size() - unit.suffix.size()));
      break;
    }
  }
  if (number.empty()) return false;
  double value = 0.0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc{} || end != number.data() + number.size() || !std::isfinite(value) || value < 0) return false;
  const double rounded = std::round(value * scale);
  if (rounded >= static_cast<double>(std::numeric_limits<std::uint64_t>::max())) return false;
  bytes = static_cast<std::uint64_t>(rounded);
  return true;
}

ConfigOutcome load_config(const Environment& environment) {
  ConfigOutcome outcome;
  Config& config = outcome.config;
  auto fail = [&](std::string message) {
    outcome.error = std::move(message);
    return outcome;
  };
  auto value_of = [&](const char* name) -> const char* { return environment(name); };

  // OOMGUARD_SIM_LOG first, so the other messages honour it.
  if (const char* text = value_of("OOMGUARD_SIM_LOG"); text && *text) {
    long level = 0;
    if (!parse_int(text, level) || level < 0 || level > 3) {
      return fail(std::string("OOMGUARD_SIM_LOG='") + text +
                  "' is not a log level: accepted 0 (quiet), 1 (unsupported calls and capacity refusals), "
                  "2 (also every allocation), 3 (also every launch)");
    }
    config.log_level = static_cast<int>(level);
  }

  std::vector<const GpuModel*> physical;
  const char* spec = value_of("OOMGUARD_SIMULATE");
  if (!spec || trim(spec).empty()) spec = "A100-80GB";
  for (std::string_view element : split(spec, ',')) {
    if (!parse_device_element(element, physical)) {
      return fail(std::string("OOMGUARD_SIMULATE='") + spec + "': '" + std::string(trim(element)) +
                  "' is not a device: accepted a GPU table name, N x NAME (e.g. 4xH100-80GB, N from 1 to 64) "
                  "or a comma list of those; table names: " +
                  table_names());
    }
  }

  if (const char* text = value_of("OOMGUARD_SIM_MEMORY"); text && *text) {
    std::uint64_t bytes = 0;
    if (!parse_bytes(text, bytes) || bytes == 0) {
      return fail(std::string("OOMGUARD_SIM_MEMORY='") + text +
                  "' is not a memory size: accepted a positive number of bytes with an optional unit "
                  "(B, KiB, MiB, GiB, TiB, KB, MB, GB, TB, k, m, g, t), e.g. '8GiB'");
    }
    for (const GpuModel* model : physical) {
      const std::uint64_t context_bytes = model->context_mib << 20;
      if (bytes <= context_bytes) {
        return fail(std::string("OOMGUARD_SIM_MEMORY='") + text + "' is too small: a " +
                    std::string(model->table_name) + " context alone takes " +
                    std::to_string(model->context_mib) + " MiB; accepted sizes above that, e.g. '8GiB'");
      }
    }
    config.memory_override = bytes;
  }

  if (const char* text = value_of("OOMGUARD_SIM_FILL"); text && *text) {
    std::string_view s = trim(text);
    long fill = -1;
    const bool hex = s.starts_with("0x") || s.starts_with("0X");
    if (!(hex ? parse_int(s.substr(2), fill, 16) : parse_int(s, fill)) || fill < 0 || fill > 255) {
      return fail(std::string("OOMGUARD_SIM_FILL='") + text +
                  "' is not a byte: accepted an integer from 0 to 255, decimal or 0x-prefixed hexadecimal");
    }
    config.fill_byte = static_cast<int>(fill);
  }

  if (const char* text = value_of("OOMGUARD_SIM_STATS"); text) {
    const std::string path = text;
    if (path.empty()) {
      return fail("OOMGUARD_SIM_STATS='' is not a path: accepted the path of a file to write at exit, or unset");
    }
    const std::size_t slash = path.rfind('/');
    const std::string folder = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    if (::access(folder.c_str(), W_OK | X_OK) != 0) {
      return fail(std::string("OOMGUARD_SIM_STATS='") + text + "': the folder '" + folder +
                  "' does not exist or is not writable; accepted a file path in a writable folder");
    }
    config.stats_path = path;
  }

  config.physical = physical;

  // Note [CUDA_VISIBLE_DEVICES]
  // Honoured as the real driver does with indices: the list is read up to
  // its first entry that is not the index of a device (not a number, out of
  // range, or a repeat), and the devices before it are visible in the order
  // given. An empty value hides every device (cuInit: CUDA_ERROR_NO_DEVICE).
  // No error: a GPU machine gives none either, so a script that works there
  // works here; the level-1 log says what was hidden and why.
  const char* visible = value_of("CUDA_VISIBLE_DEVICES");
  if (!visible) {
    for (std::size_t i = 0; i < physical.size(); ++i) config.devices.push_back({physical[i], static_cast<int>(i)});
    return outcome;
  }
  std::vector<bool> taken(physical.size(), false);
  if (!trim(visible).empty()) {
    for (std::string_view entry : split(visible, ',')) {
      long index = -1;
      if (!parse_int(entry, index) || index < 0 || index >= static_cast<long>(physical.size()) ||
          taken[static_cast<std::size_t>(index)]) {
        config.visibility_note = std::string("CUDA_VISIBLE_DEVICES='") + visible + "': entry '" +
                                 std::string(trim(entry)) + "' is not the index of one of the " +
                                 std::to_string(physical.size()) +
                                 " simulated devices (or repeats one); the devices from there on are hidden, "
                                 "as on a GPU machine";
        break;
      }
      taken[static_cast<std::size_t>(index)] = true;
      config.devices.push_back({physical[static_cast<std::size_t>(index)], static_cast<int>(index)});
    }
  }
  if (config.devices.empty() && config.visibility_note.empty()) {
    config.visibility_note = "CUDA_VISIBLE_DEVICES is empty: no device is visible, as on a GPU machine";
  }
  return outcome;
}

}  // namespace oomguard::sim
