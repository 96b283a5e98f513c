// What the guard knows about the run, shared by the predictor and policy
// (which write it) and the report writers (which read it, also from the
// out-of-memory path). One per process, like the Ledger.
//
// Note [Prediction history]
// The guard predicts at every step boundary, so the latest prediction is
// made at the last step and agrees with the actual peak by construction. To
// say how good a prediction was, the run state keeps the first prediction
// and every revision: a prediction is kept when its peak, phase or reason
// differs from the last one kept (an unchanged forecast repeated each step
// is not news). The list is bounded; when full, the oldest revision after
// the first goes, never the first.
// An action other than warn (checkpointing, a smaller micro-batch, a save
// guard, an abort) changes what the run allocates, so a prediction made
// before it does not describe the run that follows. Each action records how
// many predictions were made before it, and the run state keeps, apart from
// the bounded list, the first prediction made after the latest such action:
// the summary compares that one with the actual peak as well.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "oomguard/category.hpp"

namespace oomguard::guard {

// The predicted peak of the whole run, as oomguard.prediction() returns it.
struct Prediction {
  std::int64_t made_at_step = 0;
  std::uint64_t peak_allocated_bytes = 0;
  std::uint64_t peak_reserved_bytes = 0;
  Phase phase = Phase::idle;  // where the peak happens
  std::int64_t step = 0;      // when it happens
  std::uint64_t low_bytes = 0;   // band on peak_allocated_bytes
  std::uint64_t high_bytes = 0;
  std::string reason;  // e.g. "longest batch (4096 tokens) at step 20"
};

// An action the guard took, as oomguard.actions() lists it.
struct ActionRecord {
  std::int64_t step = 0;
  std::string kind;    // warn, checkpoint, micro_batch, save_guard, emergency, abort
  std::string detail;
  std::uint64_t predicted_saving_bytes = 0;
  // Set by RunState::add_action: predictions made before this action.
  std::uint64_t predictions_before = 0;
  // Note [Prediction history]: every kind but warn changes the run.
  bool changes_run() const { return kind != "warn"; }
};

// The one JSON form of an action, for oomguard.actions() and summary.json.
nlohmann::json to_json(const ActionRecord& action);

// A fix the user could apply, ranked by the bytes it saves.
struct Suggestion {
  std::string kind;  // checkpointing, micro_batch, lora, optimizer_8bit, max_length, ...
  std::string description;
  std::uint64_t saves_bytes = 0;
};

class RunState {
 public:
  static RunState& global();

  void set_budget(std::uint64_t bytes);
  std::uint64_t budget() const;
  // Note [Prediction history]: the latest, the first and each revision (at
  // most kPredictionHistory, oldest first), and the first made after the
  // latest action that changes the run (none before such an action).
  static constexpr std::size_t kPredictionHistory = 256;
  void set_prediction(Prediction p);
  std::optional<Prediction> prediction() const;
  std::vector<Prediction> predictions() const;
  std::optional<Prediction> first_prediction_after_actions() const;
  std::uint64_t predictions_made() const;
  // Stamps predictions_before.
  void add_action(ActionRecord a);
  std::vector<ActionRecord> actions() const;
  void set_suggestions(std::vector<Suggestion> s);
  std::vector<Suggestion> suggestions() const;
  void reset();

 private:
  mutable std::mutex mutex_;  // never on an allocation path
  std::uint64_t budget_ = 0;
  std::optional<Prediction> prediction_;
  std::vector<Prediction> predictions_;
  std::uint64_t predictions_made_ = 0;
  bool awaiting_after_action_ = false;  // a run-changing action has no prediction after it yet
  std::optional<Prediction> after_actions_;
  std::vector<ActionRecord> actions_;
  std::vector<Suggestion> suggestions_;
};

}  // namespace oomguard::guard
