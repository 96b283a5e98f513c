// Categories and phases: the two tags every allocation carries.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace oomguard {

// What an allocation is for. The order is the order reports list them in.
enum class Category : std::uint8_t {
  weights,
  gradients,
  optimizer,
  activations,
  adapters,
  temporary,
  checkpoint,
  non_torch,
  unknown,
};
inline constexpr std::size_t kNumCategories = 9;

// What the process is doing when an allocation happens.
enum class Phase : std::uint8_t { idle, forward, backward, optimizer, eval, save };
inline constexpr std::size_t kNumPhases = 6;

inline constexpr std::array<std::string_view, kNumCategories> kCategoryNames = {
    "weights", "gradients", "optimizer", "activations", "adapters",
    "temporary", "checkpoint", "non_torch", "unknown"};
inline constexpr std::array<std::string_view, kNumPhases> kPhaseNames = {
    "idle", "forward", "backward", "optimizer", "eval", "save"};

constexpr std::string_view name(Category c) { return kCategoryNames[static_cast<std::size_t>(c)]; }
constexpr std::string_view name(Phase p) { return kPhaseNames[static_cast<std::size_t>(p)]; }
constexpr std::size_t index(Category c) { return static_cast<std::size_t>(c); }
constexpr std::size_t index(Phase p) { return static_cast<std::size_t>(p); }

std::optional<Category> try_parse_category(std::string_view text);
std::optional<Phase> try_parse_phase(std::string_view text);
// Throw oomguard::config_error naming the bad text and the accepted names.
Category parse_category(std::string_view text);
Phase parse_phase(std::string_view text);

// The category an untagged allocation gets from the phase it happens in:
// forward tensors are saved activations, backward ones are temporaries (the
// gradients are retagged by the census), save-phase copies are checkpoint I/O.
// The optimizer step's are temporaries too: the state it creates on its
// first step is retagged `optimizer` by the census at the boundary (and the
// breakdown at the peak follows that retag, Note [The breakdown at the
// peak]), while foreach AdamW's one-parameter-sized intermediates die inside
// the step and are what they look like, temporaries.
constexpr Category default_category(Phase p) {
  switch (p) {
    case Phase::forward: return Category::activations;
    case Phase::eval: return Category::activations;
    case Phase::backward: return Category::temporary;
    case Phase::optimizer: return Category::temporary;
    case Phase::save: return Category::checkpoint;
    case Phase::idle: break;
  }
  return Category::unknown;
}

}  // namespace oomguard
