#include "oomguard/guard/estimate_json.hpp"

#include <cmath>

namespace oomguard::guard {
namespace {

std::int64_t whole(double bytes) { return std::llround(bytes); }

nlohmann::json components_json(const std::vector<Component>& components) {
  auto out = nlohmann::json::array();
  for (const auto& c : components)
    out.push_back({{"name", c.name}, {"category", std::string(name(c.category))}, {"bytes", whole(c.bytes)}});
  return out;
}

}  // namespace

nlohmann::json to_json(const TrainingSetup& s) {
  return {{"method", name(s.method)},
          {"dtype", name(s.dtype)},
          {"mixed_precision", s.mixed_precision},
          {"amp", s.amp},
          {"optimizer", name(s.optimizer)},
          {"optimizer_impl", name(optimizer_impl(s))},
          {"framework", name(s.framework)},
          {"batch_size", s.batch_size},
          {"seq_len", s.seq_len},
          {"grad_accum", s.grad_accum},
          {"gradient_checkpointing", s.gradient_checkpointing},
          {"attention", name(s.attention)},
          {"world_size", s.world_size},
          {"zero", name(s.sharding)},
          {"lora_r", s.lora_r},
          {"lora_targets", s.lora_targets},
          {"adapter_dtype", s.method == Method::full ? nlohmann::json(nullptr) : nlohmann::json(name(adapter_dtype(s)))},
          {"double_quant", s.method == Method::qlora ? nlohmann::json(s.double_quant) : nlohmann::json(nullptr)},
          {"optimizer_in_backward", s.optimizer_in_backward}};
}

nlohmann::json to_json(const Estimate& e) {
  nlohmann::json categories = nlohmann::json::object();
  for (auto category_name : kCategoryNames) categories[std::string(category_name)] = 0;
  for (const auto& c : e.peak().components) categories[std::string(name(c.category))] = categories[std::string(name(c.category))].get<std::int64_t>() + whole(c.bytes);
  categories["non_torch"] = categories["non_torch"].get<std::int64_t>() + whole(e.cuda_context_bytes);

  nlohmann::json phases = nlohmann::json::array();
  for (const auto& p : e.phases)
    phases.push_back({{"phase", p.phase}, {"tensor_bytes", whole(p.tensor_bytes())}, {"components", components_json(p.components)}});

  const auto& a = e.activation;
  nlohmann::json out = {
      {"parameters", e.parameters},
      {"trainable_parameters", e.trainable_parameters},
      {"components", components_json(e.components)},
      {"phases", phases},
      {"peak_phase", e.peak().phase},
      {"categories_at_peak", categories},
      {"allocator_slack_bytes", whole(e.allocator_slack_bytes)},
      {"cuda_context_bytes", whole(e.cuda_context_bytes)},
      {"peak_bytes", whole(e.peak_bytes)},
      {"activation_model",
       {{"layers", a.layers},
        {"per_layer_per_token", a.per_layer_per_token},
        {"per_layer_per_token_per_position", a.per_layer_per_token_per_position},
        {"per_token", a.per_token},
        {"per_position", a.per_position},
        {"logits_per_token", a.logits_per_token},
        {"recompute_per_token", a.recompute_per_token},
        {"recompute_per_token_per_position", a.recompute_per_token_per_position}}},
  };
  out["fits"] = e.fits ? nlohmann::json(*e.fits) : nlohmann::json(nullptr);
  out["headroom_bytes"] = e.fits ? nlohmann::json(whole(e.headroom_bytes)) : nlohmann::json(nullptr);
  return out;
}

nlohmann::json to_json(const FitCandidate& c) {
  return {{"setup", to_json(c.setup)},
          {"changes", c.changes},
          {"relative_speed", c.relative_speed},
          {"peak_bytes", whole(c.estimate.peak_bytes)},
          {"headroom_bytes", whole(c.estimate.headroom_bytes)}};
}

}  // namespace oomguard::guard
