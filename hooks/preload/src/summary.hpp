// preload-summary.json: the post-mortem written at an out-of-memory, at exit
// and at a terminating signal. Written to a temporary name and renamed, so a
// reader sees the previous summary or the new one, never half of one.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace oomguard::preload {

nlohmann::json build_summary(std::string_view reason);
// False if the file could not be written.
bool write_summary(const std::string& dir, std::string_view reason);

}  // namespace oomguard::preload
