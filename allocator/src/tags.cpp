#include "oomguard/tags.hpp"

#include <atomic>

namespace oomguard {
namespace {

constexpr std::int8_t kUnset = -1;

std::atomic<std::uint8_t> g_phase{static_cast<std::uint8_t>(Phase::idle)};
std::atomic<std::int64_t> g_step{0};
std::atomic<std::int8_t> g_category{kUnset};

// initial-exec: a direct %fs-relative load instead of a __tls_get_addr call
// per allocation. Two bytes fit the static TLS surplus glibc keeps for
// libraries that are dlopen'ed (as torch's pluggable allocator does).
__attribute__((tls_model("initial-exec"))) thread_local std::int8_t t_category = kUnset;
__attribute__((tls_model("initial-exec"))) thread_local std::int8_t t_phase = kUnset;

}  // namespace

void set_process_phase(Phase phase) noexcept {
  g_phase.store(static_cast<std::uint8_t>(phase), std::memory_order_relaxed);
}
Phase process_phase() noexcept { return static_cast<Phase>(g_phase.load(std::memory_order_relaxed)); }
void set_process_step(std::int64_t step) noexcept { g_step.store(step, std::memory_order_relaxed); }
std::int64_t process_step() noexcept { return g_step.load(std::memory_order_relaxed); }
void set_process_category(std::optional<Category> category) noexcept {
  g_category.store(category ? static_cast<std::int8_t>(*category) : kUnset, std::memory_order_relaxed);
}

Tag current_tag() noexcept {
  const Phase phase = t_phase != kUnset ? static_cast<Phase>(t_phase) : process_phase();
  Category category;
  if (t_category != kUnset) {
    category = static_cast<Category>(t_category);
  } else if (const auto forced = g_category.load(std::memory_order_relaxed); forced != kUnset) {
    category = static_cast<Category>(forced);
  } else {
    category = default_category(phase);
  }
  return Tag{category, phase, process_step()};
}

CategoryScope::CategoryScope(Category category) noexcept : previous_(t_category) {
  t_category = static_cast<std::int8_t>(category);
}
CategoryScope::~CategoryScope() { t_category = previous_; }

PhaseScope::PhaseScope(Phase phase) noexcept : previous_(t_phase) {
  t_phase = static_cast<std::int8_t>(phase);
}
PhaseScope::~PhaseScope() { t_phase = previous_; }

}  // namespace oomguard
