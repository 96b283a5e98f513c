// The predictor's JSON: what the Python side sends (a run description and
// step observations) and what it reads back. Unknown keys are errors, so a
// typo on either side fails loudly instead of being ignored.
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "oomguard/error.hpp"
#include "oomguard/guard/predictor.hpp"

namespace oomguard::guard {
namespace {

void check_keys(const nlohmann::json& j, const std::set<std::string>& accepted, std::string_view what) {
  if (!j.is_object()) throw config_error(fmt::format("oomguard predictor: {} must be a JSON object", what));
  for (const auto& [key, value] : j.items())
    if (!accepted.contains(key))
      throw config_error(fmt::format("oomguard predictor: {} has no key '{}'; accepted keys: {}", what, key,
                                     fmt::join(accepted, ", ")));
}

template <typename T>
void read(const nlohmann::json& j, const char* key, T& out) {
  if (j.contains(key) && !j[key].is_null()) out = j[key].get<T>();
}

}  // namespace

RunDescription run_description_from_json(const nlohmann::json& j) {
  check_keys(j,
             {"model_config", "method", "dtype", "attention", "gradient_checkpointing", "lora_r", "lora_targets",
              "optimizer", "optimizer_momentum", "optimizer_impl", "compute_capability", "trainable", "param_bytes", "longest_batch", "longest_seq",
              "longest_at_step", "eval_batch", "eval_seq", "eval_at_step", "save_copy_bytes", "saves",
              "save_at_step", "blocks", "block_kept_per_token"},
             "run description");
  RunDescription r;
  if (j.contains("model_config") && !j["model_config"].is_null()) r.model = parse_model_spec(j["model_config"]);
  if (j.contains("method")) r.activation.method = parse_method(j["method"].get<std::string>());
  if (j.contains("dtype")) {
    const DType dtype = parse_dtype(j["dtype"].get<std::string>());
    r.activation.compute_bytes = dtype_bytes(dtype);
    r.activation.bf16 = dtype == DType::bf16;
  }
  if (j.contains("attention")) r.activation.attention = parse_attention(j["attention"].get<std::string>());
  read(j, "gradient_checkpointing", r.activation.gradient_checkpointing);
  r.activation.compute_capability = 0;  // no key: the model is not on CUDA
  read(j, "compute_capability", r.activation.compute_capability);
  read(j, "lora_r", r.activation.lora_r);
  read(j, "lora_targets", r.activation.lora_targets);
  if (j.contains("optimizer") && !j["optimizer"].is_null())
    r.optimizer = parse_optimizer(j["optimizer"].get<std::string>());
  read(j, "optimizer_momentum", r.optimizer_momentum);
  if (j.contains("optimizer_impl") && !j["optimizer_impl"].is_null())
    r.optimizer_impl = parse_optimizer_impl(j["optimizer_impl"].get<std::string>());
  if (j.contains("trainable")) {
    for (const auto& t : j["trainable"]) {
      if (!t.is_array() || t.size() != 2)
        throw config_error("oomguard predictor: run description 'trainable' holds [rows, cols] pairs");
      ParamTensor p;
      p.rows = t[0].get<std::int64_t>(), p.cols = t[1].get<std::int64_t>();
      r.trainable.push_back(p);
    }
  }
  read(j, "param_bytes", r.param_bytes);
  read(j, "longest_batch", r.longest_batch);
  read(j, "longest_seq", r.longest_seq);
  read(j, "longest_at_step", r.longest_at_step);
  read(j, "blocks", r.blocks);
  read(j, "block_kept_per_token", r.block_kept_per_token);
  read(j, "eval_batch", r.eval_batch);
  read(j, "eval_seq", r.eval_seq);
  read(j, "eval_at_step", r.eval_at_step);
  read(j, "save_copy_bytes", r.save_copy_bytes);
  read(j, "saves", r.saves);
  read(j, "save_at_step", r.save_at_step);
  return r;
}

StepObservation step_observation_from_json(const nlohmann::json& j) {
  check_keys(j,
             {"step", "batch", "seq", "peak_allocated", "activations_peak", "activations_at_start", "train_peak", "persistent_at_start", "weights_bytes",
              "gradient_bytes", "optimizer_bytes", "fragmentation", "reserved_peak", "non_torch"},
             "step observation");
  StepObservation s;
  read(j, "step", s.step);
  read(j, "batch", s.batch);
  read(j, "seq", s.seq);
  read(j, "peak_allocated", s.peak_allocated);
  read(j, "activations_peak", s.activations_peak);
  read(j, "activations_at_start", s.activations_at_start);
  read(j, "train_peak", s.train_peak);
  read(j, "persistent_at_start", s.persistent_at_start);
  read(j, "weights_bytes", s.weights_bytes);
  read(j, "gradient_bytes", s.gradient_bytes);
  read(j, "optimizer_bytes", s.optimizer_bytes);
  read(j, "fragmentation", s.fragmentation);
  read(j, "reserved_peak", s.reserved_peak);
  read(j, "non_torch", s.non_torch);
  return s;
}

// The one JSON form of a Prediction: oomguard.prediction(), the history and
// summary.json.
nlohmann::json to_json(const Prediction& p) {
  return {{"made_at_step", p.made_at_step},
          {"peak_allocated_bytes", p.peak_allocated_bytes},
          {"peak_reserved_bytes", p.peak_reserved_bytes},
          {"phase", std::string(name(p.phase))},
          {"step", p.step < 0 ? nlohmann::json(nullptr) : nlohmann::json(p.step)},
          {"low_bytes", p.low_bytes},
          {"high_bytes", p.high_bytes},
          {"reason", p.reason}};
}

nlohmann::json to_json(const Forecast& f) {
  auto candidates = nlohmann::json::array();
  for (const auto& c : f.candidates)
    candidates.push_back({{"name", c.name},
                          {"phase", std::string(name(c.phase))},
                          {"step", c.step < 0 ? nlohmann::json(nullptr) : nlohmann::json(c.step)},
                          {"bytes", std::llround(c.bytes)},
                          {"uncertainty", std::llround(c.uncertainty)},
                          {"reason", c.reason}});
  return {{"prediction", to_json(f.prediction)},
          {"candidates", candidates},
          {"activation_fit",
           {{"per_token", f.fit.per_token}, {"per_token_squared", f.fit.per_token_squared}, {"method", f.fit.method}}},
          {"growth", f.growth},
          {"loss_grad_per_token", f.loss_grad_per_token},
          {"activation_regime", f.activation_regime},
          {"gradient_slope", f.gradient_slope},
          {"activation_scale", f.activation_scale},
          {"optimizer_state", std::llround(f.optimizer_state)},
          {"optimizer_transient", std::llround(f.optimizer_transient)},
          {"longest_batch", f.batch},
          {"longest_seq", f.seq}};
}

}  // namespace oomguard::guard
