#include "oomguard/guard/model_table.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "oomguard/error.hpp"

namespace oomguard::guard {

// Generated from guard/data/models.json (see guard/CMakeLists.txt).
extern const char* const kBuiltinModelsJson;

namespace {

const nlohmann::json& table() {
  static const nlohmann::json parsed = nlohmann::json::parse(kBuiltinModelsJson);
  return parsed;
}

std::string normalise(std::string_view name) {
  if (auto slash = name.rfind('/'); slash != std::string_view::npos) name.remove_prefix(slash + 1);
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::vector<std::string> builtin_model_names() {
  std::vector<std::string> names;
  for (const auto& item : table().items()) names.push_back(item.key());
  return names;
}

const nlohmann::json& builtin_model_config(std::string_view name) {
  const auto key = normalise(name);
  if (auto it = table().find(key); it != table().end()) return *it;
  throw config_error(fmt::format("unknown model \"{}\"; built-in models: {} (or pass --config path/to/config.json)",
                                 name, fmt::join(builtin_model_names(), ", ")));
}

}  // namespace oomguard::guard
