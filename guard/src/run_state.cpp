#include "oomguard/guard/run_state.hpp"

namespace oomguard::guard {

RunState& RunState::global() {
  static RunState* state = new RunState();  // read at exit and on OOM: never destroyed
  return *state;
}

void RunState::set_budget(std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  budget_ = bytes;
}
std::uint64_t RunState::budget() const {
  std::lock_guard lock(mutex_);
  return budget_;
}
void RunState::set_prediction(Prediction p) {
  std::lock_guard lock(mutex_);
  prediction_ = std::move(p);
}
std::optional<Prediction> RunState::prediction() const {
  std::lock_guard lock(mutex_);
  return prediction_;
}
void RunState::add_action(ActionRecord a) {
  std::lock_guard lock(mutex_);
  actions_.push_back(std::move(a));
}
std::vector<ActionRecord> RunState::actions() const {
  std::lock_guard lock(mutex_);
  return actions_;
}
void RunState::set_suggestions(std::vector<Suggestion> s) {
  std::lock_guard lock(mutex_);
  suggestions_ = std::move(s);
}
std::vector<Suggestion> RunState::suggestions() const {
  std::lock_guard lock(mutex_);
  return suggestions_;
}
void RunState::reset() {
  std::lock_guard lock(mutex_);
  budget_ = 0;
  prediction_.reset();
  actions_.clear();
  suggestions_.clear();
}

}  // namespace oomguard::guard
