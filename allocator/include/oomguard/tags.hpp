// Where an allocation's category, phase and step come from.
//
// Note [Thread-local scope over process-wide phase]
// A scope (CategoryScope / PhaseScope) is set by the thread that allocates,
// e.g. the Python hooks around a module's forward. Autograd runs backward on
// threads of its own which no scope reaches, so the process also has one
// phase and one step counter, set at phase changes and step boundaries, that
// every thread without a scope falls back to. Reading the tag is two
// thread-local loads and, when no scope is set, two relaxed atomic loads.
#pragma once

#include <cstdint>
#include <optional>

#include "oomguard/category.hpp"

namespace oomguard {

struct Tag {
  Category category;
  Phase phase;
  std::int64_t step;
};

// Process-wide state, read by threads with no scope.
void set_process_phase(Phase phase) noexcept;
Phase process_phase() noexcept;
void set_process_step(std::int64_t step) noexcept;
std::int64_t process_step() noexcept;
// A category forced on every thread without a category scope (e.g. while
// loading weights); std::nullopt restores the phase default.
void set_process_category(std::optional<Category> category) noexcept;

// The tag an allocation made now on this thread gets.
Tag current_tag() noexcept;

// RAII: allocations on this thread get `category` until destruction. Nests.
class CategoryScope {
 public:
  explicit CategoryScope(Category category) noexcept;
  ~CategoryScope();
  CategoryScope(const CategoryScope&) = delete;
  CategoryScope& operator=(const CategoryScope&) = delete;

 private:
  std::int8_t previous_;
};

// RAII: this thread is in `phase` until destruction. Nests.
class PhaseScope {
 public:
  explicit PhaseScope(Phase phase) noexcept;
  ~PhaseScope();
  PhaseScope(const PhaseScope&) = delete;
  PhaseScope& operator=(const PhaseScope&) = delete;

 private:
  std::int8_t previous_;
};

}  // namespace oomguard
