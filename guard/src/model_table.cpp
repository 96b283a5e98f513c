#include "oomguard/guard/model_table.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string_view>
#include <utility>

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

// Note [Model names users type]
// A user types the hub id they train ("mistralai/Mistral-7B-Instruct-v0.2",
// "meta-llama/Llama-2-7b-hf"), a short name ("mistral-7b") or ours. The
// organisation and case are dropped; then the suffixes that name a
// checkpoint, not an architecture (hf, instruct, chat, it, base) are
// dropped, and a few spellings map to ours. An instruct or chat checkpoint
// has its base model's shapes; where a later version differs only in
// context length, sliding window or rope scaling (Mistral v0.2, Llama 3.1,
// phi-3's 4k and 128k), memory per token does not change. Mistral v0.3 is
// not one (its vocabulary grew to 32,768). The estimate says which
// built-in it used.
const std::vector<std::pair<std::string_view, std::string_view>>& aliases() {
  static const std::vector<std::pair<std::string_view, std::string_view>> table = {
      {"mistral-7b", "mistral-7b-v0.1"},        {"mistral-7b-v0.2", "mistral-7b-v0.1"},
      {"meta-llama-3-8b", "llama-3-8b"},        {"llama-3.1-8b", "llama-3-8b"},
      {"meta-llama-3.1-8b", "llama-3-8b"},      {"meta-llama-3-70b", "llama-3-70b"},
      {"llama-3.1-70b", "llama-3-70b"},         {"meta-llama-3.1-70b", "llama-3-70b"},
      {"phi-3-mini-4k", "phi-3-mini"},          {"phi-3-mini-128k", "phi-3-mini"},
      {"gpt2-small", "gpt2"},
  };
  return table;
}

// Dash-separated words that name a checkpoint, not an architecture.
bool names_a_checkpoint(std::string_view word) {
  for (std::string_view w : {"hf", "instruct", "chat", "it", "base"})
    if (word == w) return true;
  return false;
}

std::string without_checkpoint_words(const std::string& key) {
  std::string out;
  std::size_t start = 0;
  while (start <= key.size()) {
    const std::size_t end = std::min(key.find('-', start), key.size());
    const std::string_view word(key.data() + start, end - start);
    if (!names_a_checkpoint(word)) {
      if (!out.empty()) out.push_back('-');
      out.append(word);
    }
    start = end + 1;
  }
  return out;
}

}  // namespace

std::vector<std::string> builtin_model_names() {
  std::vector<std::string> names;
  for (const auto& item : table().items()) names.push_back(item.key());
  return names;
}

std::optional<std::string> resolve_model_name(std::string_view name) {
  const std::string typed = normalise(name);
  for (const std::string& key : {typed, without_checkpoint_words(typed)}) {
    if (table().contains(key)) return key;
    for (const auto& [alias, builtin] : aliases())
      if (key == alias) return std::string(builtin);
  }
  return std::nullopt;
}

const nlohmann::json& builtin_model_config(std::string_view name) {
  if (const auto key = resolve_model_name(name)) return table().at(*key);
  throw config_error(fmt::format("unknown model \"{}\"; built-in models: {} (or pass --config path/to/config.json)",
                                 name, fmt::join(builtin_model_names(), ", ")));
}

}  // namespace oomguard::guard
