// The built-in models: the config.json of each, embedded at build time from
// guard/data/models.json so that a model name works without a hub download.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace oomguard::guard {

std::vector<std::string> builtin_model_names();

// The built-in a name a user types stands for (Note [Model names users
// type] in model_table.cpp): "mistralai/Mistral-7B-Instruct-v0.2" ->
// "mistral-7b-v0.1". nullopt when none does.
std::optional<std::string> resolve_model_name(std::string_view name);

// The config.json of a built-in model. Names match case-insensitively and may
// carry the hub organisation ("mistralai/Mistral-7B-v0.1"). Throws
// config_error listing the known names.
const nlohmann::json& builtin_model_config(std::string_view name);

}  // namespace oomguard::guard
