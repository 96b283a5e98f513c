#include "oomguard/guard/policy.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "oomguard/error.hpp"
#include "oomguard/guard/optimizer_state.hpp"

namespace oomguard::guard {
namespace {

std::uint64_t bytes_of(double x) { return x > 0 ? static_cast<std::uint64_t>(std::llround(x)) : 0; }

// Which fix a remediation applies.
std::string_view fix_of(std::string_view action) {
  if (action == "checkpoint") return "checkpointing";
  if (action == "micro_batch") return "micro_batch";
  if (action == "save_guard") return "save_guard";
  return "";
}

double number(std::string_view text, std::string_view key) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    throw config_error(fmt::format("OOMGUARD_CONF key '{}': '{}' is not a number", key, text));
  return value;
}

}  // namespace

bool is_remediation(std::string_view action) { return !fix_of(action).empty(); }

std::vector<std::string> parse_actions(std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('+', start), text.size());
    const std::string_view item = text.substr(start, end - start);
    if (std::find(std::begin(kActionNames), std::end(kActionNames), item) == std::end(kActionNames))
      throw config_error(fmt::format("OOMGUARD_CONF key 'actions': '{}' is not an action; accepted: {} (joined by '+')",
                                     item, fmt::join(kActionNames, ", ")));
    if (std::find(out.begin(), out.end(), item) != out.end())
      throw config_error(fmt::format("OOMGUARD_CONF key 'actions': '{}' is listed twice", item));
    out.emplace_back(item);
    start = end + 1;
  }
  return out;
}

double parse_warn_at(std::string_view text) {
  const double value = number(text, "warn_at");
  if (!(value > 0 && value <= 1))
    throw config_error(fmt::format("OOMGUARD_CONF key 'warn_at': {} is outside (0, 1]; e.g. warn_at:0.9", text));
  return value;
}

std::int64_t parse_predict_after(std::string_view text) {
  const double value = number(text, "predict_after");
  // !(a <= v <= b) also refuses NaN; an upper bound keeps inf from the cast.
  if (!(value >= 1 && value <= 1e6) || value != std::floor(value))
    throw config_error(fmt::format(
        "OOMGUARD_CONF key 'predict_after': {} is not a whole number of steps from 1 to 1000000; e.g. predict_after:2",
        text));
  return static_cast<std::int64_t>(value);
}

std::int64_t parse_max_seq_len(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > 2147483647)
    throw config_error(fmt::format(
        "OOMGUARD_CONF key 'max_seq_len': '{}' is not a number of tokens from 1 to 2147483647; e.g. max_seq_len:4096",
        text));
  return value;
}

void check_guard_conf(std::span<const ConfEntry> entries) {
  for (const ConfEntry& e : entries) {
    if (e.key == "actions") (void)parse_actions(e.value);
    else if (e.key == "warn_at") (void)parse_warn_at(e.value);
    else if (e.key == "predict_after") (void)parse_predict_after(e.value);
    else if (e.key == "max_seq_len") (void)parse_max_seq_len(e.value);
    else if (e.key == "budget") (void)parse_budget(e.value);
  }
}

std::vector<Suggestion> rank_fixes(const RunDescription& run, const Forecast& f) {
  std::vector<Suggestion> out;
  const auto grown = [&](std::int64_t b, std::int64_t s) { return f.dynamic(b, s); };
  const double act = grown(f.batch, f.seq);
  const bool training_peak = f.prediction.phase == Phase::backward || f.prediction.phase == Phase::forward;
  if (training_peak && run.model && !run.activation.gradient_checkpointing) {
    ActivationInputs with = run.activation;
    with.gradient_checkpointing = true;
    const ActivationModel off = activation_model(*run.model, run.activation);
    const ActivationModel on = activation_model(*run.model, with);
    const auto total = [&](const ActivationModel& m) {
      return m.saved_bytes(f.batch, f.seq) + m.logits_bytes(f.batch, f.seq) + m.recompute_bytes(f.batch, f.seq);
    };
    const double saves = act * (1 - total(on) / total(off));
    out.push_back({"checkpointing", "enable gradient checkpointing (model.gradient_checkpointing_enable())",
                   bytes_of(saves)});
  } else if (training_peak && !run.model && run.blocks > 0 && run.block_kept_per_token > 0) {
    // A model of its own: what its blocks were measured to keep, at the
    // predicted micro-batch.
    const double kept = static_cast<double>(run.blocks) * run.block_kept_per_token *
                        static_cast<double>(f.batch) * static_cast<double>(f.seq);
    out.push_back({"checkpointing",
                   fmt::format("checkpoint the model's {} blocks (torch.utils.checkpoint)", run.blocks),
                   bytes_of(std::min(kept, act))});
  }
  if (training_peak && f.batch >= 2) {
    const std::int64_t half = f.batch / 2;
    out.push_back({"micro_batch",
                   fmt::format("micro-batch {} -> {} with twice the gradient accumulation", f.batch, half),
                   bytes_of(act - grown(half, f.seq))});
  }
  if (training_peak && f.seq >= 2) {
    out.push_back({"max_length", fmt::format("max length {} -> {} tokens", f.seq, f.seq / 2),
                   bytes_of(act - grown(f.batch, f.seq / 2))});
  }
  double trainable = 0;
  for (const auto& p : run.trainable) trainable += static_cast<double>(p.numel());
  const double grads_and_state = trainable * run.param_bytes + f.optimizer_state;
  if (run.activation.method == Method::full && trainable > 0) {
    out.push_back({"lora", "train LoRA adapters instead of every weight (gradients and optimizer state of ~1%)",
                   bytes_of(0.98 * grads_and_state)});
  } else if (run.activation.method != Method::full && run.activation.lora_r > 4 && trainable > 0) {
    out.push_back({"lora_rank", fmt::format("LoRA rank {} -> {}", run.activation.lora_r, run.activation.lora_r / 2),
                   bytes_of(0.5 * (grads_and_state + trainable * run.param_bytes))});
  }
  if (run.optimizer == Optimizer::adamw && !run.trainable.empty()) {
    double eight = 0;
    for (const auto& p : run.trainable) eight += optimizer_state_bytes(Optimizer::adamw_8bit, p, run.param_bytes);
    out.push_back({"optimizer_8bit", "8-bit AdamW (bitsandbytes adamw_8bit)", bytes_of(f.optimizer_state - eight)});
  }
  if (run.saves && run.save_copy_bytes > 0 && f.prediction.phase == Phase::save)
    out.push_back({"save_guard", "save through host memory, one tensor at a time", run.save_copy_bytes});
  std::erase_if(out, [](const Suggestion& s) { return s.saves_bytes == 0; });
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.saves_bytes > b.saves_bytes; });
  return out;
}

bool Decision::takes(std::string_view kind) const {
  return std::any_of(actions.begin(), actions.end(), [&](const auto& a) { return a.kind == kind; });
}

Decision decide_with_ratio(double ratio, const Prediction& p, const std::vector<Suggestion>& fixes,
                           const PolicyConfig& config, const std::vector<std::string>& available) {
  Decision d;
  d.ratio = ratio;
  d.predicted = std::max(p.peak_allocated_bytes, p.peak_reserved_bytes);
  d.after_actions = d.predicted;
  if (config.budget == 0 || ratio < config.warn_at) {
    d.summary = config.budget == 0 ? "no budget" : "fits";
    return d;
  }
  const auto listed = [&](std::string_view kind) {
    return std::find(config.actions.begin(), config.actions.end(), kind) != config.actions.end();
  };
  const double budget = static_cast<double>(config.budget);
  // The ratio may be another rank's: what must be saved is measured on it.
  double need = (ratio - 1) * budget;
  if (listed("warn"))
    d.actions.push_back({"warn", fmt::format("predicted {:.0f}% of the budget", 100 * ratio), 0});
  if (need <= 0) {
    d.summary = "within the warning threshold of the budget";
    return d;
  }
  std::vector<PlannedAction> remedies;
  for (const auto& action : config.actions) {
    if (!is_remediation(action) || need <= 0) continue;
    if (std::find(available.begin(), available.end(), action) == available.end()) continue;
    const auto fix = std::find_if(fixes.begin(), fixes.end(), [&](const auto& s) { return s.kind == fix_of(action); });
    if (fix == fixes.end()) continue;
    remedies.push_back({action, fix->description, fix->saves_bytes});
    need -= static_cast<double>(fix->saves_bytes);
  }
  double saved = 0;
  for (const auto& r : remedies) saved += static_cast<double>(r.saves_bytes);
  d.after_actions = bytes_of(static_cast<double>(d.predicted) - saved);
  if (need > 0 && listed("abort")) {
    d.actions.push_back({"abort",
                         // The ratio may be another rank's (decide_with_ratio): name its peak.
                         fmt::format("predicted peak {} is {} over the budget {} and no configured action frees it",
                                     format_bytes(bytes_of(ratio * budget)), format_bytes(bytes_of(ratio * budget - budget)),
                                     format_bytes(config.budget)),
                         0});
    d.summary = "nothing fits: abort";
    return d;
  }
  d.actions.insert(d.actions.end(), remedies.begin(), remedies.end());
  d.summary = need > 0 ? "over budget; the configured actions are not enough" : "over budget; actions make it fit";
  return d;
}

Decision decide(const Prediction& p, const std::vector<Suggestion>& fixes, const PolicyConfig& config,
                const std::vector<std::string>& available) {
  const double predicted = static_cast<double>(std::max(p.peak_allocated_bytes, p.peak_reserved_bytes));
  const double ratio = config.budget ? predicted / static_cast<double>(config.budget) : 0;
  return decide_with_ratio(ratio, p, fixes, config, available);
}

std::string warn_message(const Prediction& p, std::uint64_t budget, const std::vector<Suggestion>& fixes) {
  std::string when = p.step < 0 ? "a later step" : fmt::format("step {}", p.step);
  std::string text = fmt::format(
      "oomguard: predicted peak {} allocated ({} reserved, band {} - {}) in {} at {}, against a budget of {} "
      "({:.0f}%); predicted at step {} from {}.",
      format_bytes(p.peak_allocated_bytes), format_bytes(p.peak_reserved_bytes), format_bytes(p.low_bytes),
      format_bytes(p.high_bytes), name(p.phase), when, format_bytes(budget),
      budget ? 100.0 * static_cast<double>(std::max(p.peak_allocated_bytes, p.peak_reserved_bytes)) /
                   static_cast<double>(budget)
             : 0.0,
      p.made_at_step, p.reason);
  if (!fixes.empty()) text += " Cheapest fixes, by bytes saved:";
  int rank = 1;
  for (const auto& s : fixes) text += fmt::format("\n  {}. {}: saves {}", rank++, s.description, format_bytes(s.saves_bytes));
  return text;
}

nlohmann::json to_json(const Suggestion& s) {
  return {{"kind", s.kind}, {"description", s.description}, {"saves_bytes", s.saves_bytes}};
}

nlohmann::json to_json(const Decision& d) {
  auto actions = nlohmann::json::array();
  for (const auto& a : d.actions) actions.push_back({{"kind", a.kind}, {"detail", a.detail}, {"saves_bytes", a.saves_bytes}});
  return {{"ratio", d.ratio},
          {"predicted", d.predicted},
          {"after_actions", d.after_actions},
          {"actions", actions},
          {"summary", d.summary}};
}

}  // namespace oomguard::guard
