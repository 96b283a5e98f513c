#include "oomguard/category.hpp"

#include <fmt/format.h>

#include "oomguard/error.hpp"

namespace oomguard {
namespace {
template <typename Enum, std::size_t N>
std::optional<Enum> find_name(const std::array<std::string_view, N>& names, std::string_view text) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == text) return static_cast<Enum>(i);
  }
  return std::nullopt;
}
}  // namespace

std::optional<Category> try_parse_category(std::string_view text) {
  return find_name<Category>(kCategoryNames, text);
}
std::optional<Phase> try_parse_phase(std::string_view text) { return find_name<Phase>(kPhaseNames, text); }

Category parse_category(std::string_view text) {
  if (auto c = try_parse_category(text)) return *c;
  throw config_error(fmt::format("unknown category '{}'; accepted: {}", text, fmt::join(kCategoryNames, ", ")));
}
Phase parse_phase(std::string_view text) {
  if (auto p = try_parse_phase(text)) return *p;
  throw config_error(fmt::format("unknown phase '{}'; accepted: {}", text, fmt::join(kPhaseNames, ", ")));
}

}  // namespace oomguard
