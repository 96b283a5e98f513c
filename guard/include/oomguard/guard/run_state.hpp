// What the guard knows about the run, shared by the predictor and policy
// (which write it) and the report writers (which read it, also from the
// out-of-memory path). One per process, like the Ledger.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

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
};

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
  void set_prediction(Prediction p);
  std::optional<Prediction> prediction() const;
  void add_action(ActionRecord a);
  std::vector<ActionRecord> actions() const;
  void set_suggestions(std::vector<Suggestion> s);
  std::vector<Suggestion> suggestions() const;
  void reset();

 private:
  mutable std::mutex mutex_;  // never on an allocation path
  std::uint64_t budget_ = 0;
  std::optional<Prediction> prediction_;
  std::vector<ActionRecord> actions_;
  std::vector<Suggestion> suggestions_;
};

}  // namespace oomguard::guard
