// Pre-flight estimate: bytes per category at the peak of a training step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "oomguard/category.hpp"
#include "oomguard/guard/activation_model.hpp"
#include "oomguard/guard/model_spec.hpp"
#include "oomguard/guard/training_setup.hpp"

namespace oomguard::guard {

struct EstimateOptions {
  TrainingSetup setup;
  std::uint64_t gpu_memory_bytes = 0;  // 0: no device given, `fits` is absent
  std::string gpu_name;
  std::uint64_t cuda_context_bytes = 512ull << 20;
  int compute_capability = 80;  // of the GPU (major * 10 + minor); 80 when none is given
  double allocator_slack = 0.05;  // reserved-but-unused, as a fraction of tensor bytes
};

// One line of the breakdown. `phases` says when it is alive.
struct Component {
  std::string name;
  Category category = Category::unknown;
  double bytes = 0;
};

// Phases of one optimizer step; each peak is the sum of what is alive then.
struct PhasePeak {
  std::string phase;  // "forward", "backward", "optimizer_step"
  std::vector<Component> components;
  double tensor_bytes() const;
};

struct Estimate {
  std::int64_t parameters = 0;
  std::int64_t trainable_parameters = 0;
  std::vector<Component> components;  // every term, once
  std::vector<PhasePeak> phases;
  std::size_t peak_phase = 0;          // index into phases
  double allocator_slack_bytes = 0;
  double cuda_context_bytes = 0;
  double peak_bytes = 0;               // tensors at the peak + slack + context
  std::optional<bool> fits;
  double headroom_bytes = 0;           // gpu memory - peak (negative: short by)
  ActivationModel activation;

  const PhasePeak& peak() const { return phases[peak_phase]; }
  double component(std::string_view name) const;
};

// What torch's default CUBLAS_WORKSPACE_CONFIG gives each cuBLAS handle on
// a device of `compute_capability` (Note [cuBLAS workspaces]).
std::uint64_t cublas_workspace_bytes(int compute_capability);

// Expand family defaults and "all-linear"; throw config_error when a target
// names no linear module of the model (listing those that exist).
std::vector<std::string> resolve_lora_targets(const ModelSpec& spec, const std::vector<std::string>& targets);

Estimate estimate(const ModelSpec& spec, const EstimateOptions& options);

// The seed article's rule: fp16 weights + fp32 AdamW moments + b*s*h*L*2.
struct NaiveEstimate {
  double weights = 0, optimizer = 0, activations = 0;
  double total() const { return weights + optimizer + activations; }
};
NaiveEstimate naive_estimate(const ModelSpec& spec, const TrainingSetup& setup);

}  // namespace oomguard::guard
