// Before the first forward: do the bytes every step keeps (weights,
// gradients, optimizer state) fit the budget at all? Known from the model
// and the optimizer alone, so a run that can never fit stops before its
// first step with the fixes that would fit, not with an out-of-memory
// traceback in step 0's forward.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "oomguard/guard/predictor.hpp"

namespace oomguard::guard {

// One way to shrink the static bytes, with what they would be after it.
struct StaticFix {
  std::string kind;  // lora, optimizer_8bit, bf16, shard
  std::string description;
  std::uint64_t static_bytes = 0;  // weights + gradients + optimizer state with the fix
  bool fits = false;               // static_bytes within the budget (activations not counted)
};

struct StaticFootprint {
  std::uint64_t weights = 0;          // measured: the model's parameters on the device
  std::uint64_t gradients = 0;        // one per trainable element, in the parameter dtype
  std::uint64_t optimizer_state = 0;  // 0 when no optimizer is known yet
  bool optimizer_known = false;
  std::uint64_t budget = 0;
  std::uint64_t total() const { return weights + gradients + optimizer_state; }
  bool fits() const { return budget == 0 || total() <= budget; }
  std::vector<StaticFix> fixes;  // the ones that fit first, then by static bytes
  std::string message;           // one paragraph for the user; empty when it fits
};

// `weights_bytes`: what the model's parameters hold now; `world_size`: ranks
// already in the run (the shard fix proposes more when one is not enough).
StaticFootprint static_footprint(const RunDescription& run, std::uint64_t weights_bytes, std::uint64_t budget,
                                 int world_size = 1);

nlohmann::json to_json(const StaticFootprint& footprint);

}  // namespace oomguard::guard
