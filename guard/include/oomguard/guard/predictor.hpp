// The runtime predictor: from the first optimizer steps of a run, the peak of
// the whole run (allocated and reserved bytes), the phase and the step where
// it happens, with a band. See docs/guard.md for the model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "oomguard/guard/activation_model.hpp"
#include "oomguard/guard/model_spec.hpp"
#include "oomguard/guard/run_state.hpp"
#include "oomguard/guard/training_setup.hpp"

namespace oomguard::guard {

// What the Ledger saw in one optimizer step (all micro-batches of it).
struct StepObservation {
  std::int64_t step = 0;
  std::int64_t batch = 0;  // sequences of the step's largest micro-batch
  std::int64_t seq = 0;    // its (padded) length
  std::uint64_t peak_allocated = 0;    // the step's peak, all categories
  std::uint64_t activations_peak = 0;  // the step's peak of the activations category
  // Activations live at the boundary that opened the step: library
  // workspaces, DDP's buckets, the previous step's outputs still referenced.
  std::uint64_t activations_at_start = 0;
  // The step's peak before its optimizer phase (forward and backward of all
  // micro-batches); 0 when not known, and peak_allocated stands for it.
  std::uint64_t train_peak = 0;
  // At the boundary that opened the step: what persists across steps.
  std::uint64_t persistent_at_start = 0;  // weights + adapters + optimizer (+ gradients kept)
  // At the boundary that closed it (after the census).
  std::uint64_t weights_bytes = 0;  // weights + adapters
  std::uint64_t gradient_bytes = 0;
  std::uint64_t optimizer_bytes = 0;
  std::uint64_t fragmentation = 0;  // reserved - allocated at the device's reserved peak
  std::uint64_t reserved_peak = 0;  // the device's reserved peak so far; 0 when not known
  std::uint64_t non_torch = 0;      // device memory outside PyTorch (context, workspaces)
};

// What the Python side knows about the run before it happens.
struct RunDescription {
  std::optional<ModelSpec> model;   // from model.config.to_dict(), when it is a transformers model
  ActivationInputs activation;      // method, LoRA targets, checkpointing, dtype
  std::optional<Optimizer> optimizer;
  std::vector<ParamTensor> trainable;  // one per trainable tensor (rows x cols)
  int param_bytes = 4;                 // bytes per element of the trainable parameters
  bool optimizer_momentum = true;      // SGD: false keeps no state
  OptimizerImpl optimizer_impl = OptimizerImpl::foreach;  // how AdamW steps
  // The longest micro-batch the run will see: from the dataset's lengths, or
  // batch x max_seq_len; 0 when unknown (the largest observed one is used).
  std::int64_t longest_batch = 0;
  std::int64_t longest_seq = 0;
  std::int64_t longest_at_step = -1;  // when it comes, if the order is known
  std::int64_t eval_batch = 0;        // 0: no evaluation
  std::int64_t eval_seq = 0;
  std::int64_t eval_at_step = -1;
  std::uint64_t save_copy_bytes = 0;  // what a checkpoint save copies on the device
  bool saves = false;
  std::int64_t save_at_step = -1;
  // Measured by the Python side's block profile: blocks not checkpointed yet
  // and the most one of them keeps for backward per input token. What the
  // checkpointing fix saves when there is no architecture (`model`) to cost
  // it with.
  std::int64_t blocks = 0;
  double block_kept_per_token = 0;
};

// The activation fit: bytes = per_token * b*s + per_token_squared * b*s*s.
struct ActivationFit {
  double per_token = 0;
  double per_token_squared = 0;
  std::string method;  // "least squares", "formula scaled", "linear"
  double operator()(std::int64_t batch, std::int64_t seq) const;
};

// Fit on (batch, seq, bytes) points. With two or more distinct lengths the
// two terms come from least squares; with one, the formula's shape (its ratio
// of the two terms) is scaled to the measurement. Coefficients never go
// negative.
struct ActivationPoint {
  std::int64_t batch = 0, seq = 0;
  double bytes = 0;
};
ActivationFit fit_activations(const std::vector<ActivationPoint>& points, const std::optional<ActivationModel>& formula);

// One candidate for the run's peak.
struct PeakCandidate {
  std::string name;  // "training step", "first optimizer step", "evaluation", "save"
  Phase phase = Phase::idle;
  std::int64_t step = -1;  // -1: not known when
  double bytes = 0;
  double uncertainty = 0;  // half-width of its band
  std::string reason;
};

struct Forecast {
  Prediction prediction;
  std::vector<PeakCandidate> candidates;
  ActivationFit fit;
  double growth = 1;         // measured / modelled step peak above what persists (activation regime)
  double loss_grad_per_token = 0;  // fp32 gradient of the log-softmax: 4 * vocab
  bool activation_regime = true;   // the measured step peaked at the start of backward
  double gradient_slope = 0;       // growth of the gradient moment per dynamic() byte
  double activation_scale = 1;  // activations at the longest micro-batch / at the measured one
  double optimizer_state = 0;  // measured, or predicted when not seen yet
  double optimizer_transient = 0;
  std::int64_t batch = 0, seq = 0;  // the longest micro-batch used

  // Bytes above what persists at the start of backward for a micro-batch:
  // growth * (activations + the loss gradient).
  double dynamic(std::int64_t b, std::int64_t s) const;
};

// Throws config_error when there is no observation.
Forecast predict(const RunDescription& run, const std::vector<StepObservation>& steps);

// Predicted bytes of state for the trainable tensors, and the step's transient.
double predicted_optimizer_state(const RunDescription& run);
double predicted_optimizer_transient(const RunDescription& run);

// JSON in (what the Python side sends) and out (what it reads back).
RunDescription run_description_from_json(const nlohmann::json& j);
StepObservation step_observation_from_json(const nlohmann::json& j);
nlohmann::json to_json(const Prediction& p);
nlohmann::json to_json(const Forecast& f);

}  // namespace oomguard::guard
