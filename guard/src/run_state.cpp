#include "oomguard/guard/run_state.hpp"

#include <nlohmann/json.hpp>

namespace oomguard::guard {
namespace {

// Note [Prediction history]: what makes a prediction a revision.
bool revises(const Prediction& kept, const Prediction& p) {
  return p.peak_allocated_bytes != kept.peak_allocated_bytes || p.phase != kept.phase || p.reason != kept.reason;
}

}  // namespace

nlohmann::json to_json(const ActionRecord& a) {
  return {{"step", a.step}, {"kind", a.kind}, {"detail", a.detail}, {"predicted_saving_bytes", a.predicted_saving_bytes}};
}

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
  ++predictions_made_;
  if (awaiting_after_action_) {
    after_actions_ = p;
    awaiting_after_action_ = false;
  }
  if (predictions_.empty() || revises(predictions_.back(), p)) {
    if (predictions_.size() == kPredictionHistory) predictions_.erase(predictions_.begin() + 1);
    predictions_.push_back(p);
  }
  prediction_ = std::move(p);
}
std::optional<Prediction> RunState::prediction() const {
  std::lock_guard lock(mutex_);
  return prediction_;
}
std::vector<Prediction> RunState::predictions() const {
  std::lock_guard lock(mutex_);
  return predictions_;
}
std::optional<Prediction> RunState::first_prediction_after_actions() const {
  std::lock_guard lock(mutex_);
  return after_actions_;
}
std::uint64_t RunState::predictions_made() const {
  std::lock_guard lock(mutex_);
  return predictions_made_;
}
void RunState::add_action(ActionRecord a) {
  std::lock_guard lock(mutex_);
  a.predictions_before = predictions_made_;
  if (a.changes_run()) {
    awaiting_after_action_ = true;
    after_actions_.reset();
  }
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
  predictions_.clear();
  predictions_made_ = 0;
  awaiting_after_action_ = false;
  after_actions_.reset();
  actions_.clear();
  suggestions_.clear();
}

}  // namespace oomguard::guard
