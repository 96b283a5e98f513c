// The built-in models: the config.json of each, embedded at build time from
// guard/data/models.json so that a model name works without a hub download.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace oomguard::guard {

std::vector<std::string> builtin_model_names();

// The config.json of a built-in model. Names match case-insensitively and may
// carry the hub organisation ("mistralai/Mistral-7B-v0.1"). Throws
// config_error listing the known names.
const nlohmann::json& builtin_model_config(std::string_view name);

}  // namespace oomguard::guard
