#include "oomguard/guard/static_check.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "oomguard/error.hpp"
#include "oomguard/guard/optimizer_state.hpp"

namespace oomguard::guard {
namespace {

std::uint64_t bytes_of(double x) { return x > 0 ? static_cast<std::uint64_t>(std::llround(x)) : 0; }

double trainable_elements(const RunDescription& run) {
  double n = 0;
  for (const auto& p : run.trainable) n += static_cast<double>(p.numel());
  return n;
}

double state_with(const RunDescription& run, Optimizer optimizer, double state_bytes) {
  double sum = 0;
  for (const auto& p : run.trainable) sum += optimizer_state_bytes(optimizer, p, state_bytes);
  return sum;
}

// Note [Static fixes]
// Each fix is costed on the static bytes only, the part it changes:
//  * lora: the frozen weights stay; adapters of ~1% of the trainable
//    elements get gradients and optimizer state (the estimator's LoRA rule).
//  * optimizer_8bit: AdamW's two fp32-wide moments become one byte each.
//  * bf16: weights, gradients and state in two bytes instead of four (only
//    offered to an fp32 run).
//  * shard: FSDP / ZeRO-3 divide all three by the number of ranks; the
//    smallest power of two (up to 64) that fits is proposed.
// A fix "fits" when its static bytes are within the budget; the activations
// come on top, so a fix that only just fits is listed, not promised.
std::vector<StaticFix> fixes_for(const RunDescription& run, const StaticFootprint& f, int world_size) {
  std::vector<StaticFix> out;
  const double trainable = trainable_elements(run);
  const double state = static_cast<double>(f.optimizer_state);
  const double weights = static_cast<double>(f.weights);
  const double grads = static_cast<double>(f.gradients);
  const auto add = [&](std::string kind, std::string description, double bytes) {
    out.push_back({std::move(kind), std::move(description), bytes_of(bytes), bytes_of(bytes) <= f.budget});
  };
  if (run.activation.method == Method::full && trainable > 0) {
    const double adapters = 0.01 * (grads + state);
    add("lora", "train LoRA adapters (r=16) instead of every weight", weights + 2 * adapters);
  }
  if (f.optimizer_known && run.optimizer && *run.optimizer == Optimizer::adamw) {
    add("optimizer_8bit", "8-bit AdamW (bitsandbytes adamw_8bit)",
        weights + grads + state_with(run, Optimizer::adamw_8bit, run.param_bytes));
  }
  if (run.param_bytes == 4) add("bf16", "bf16 weights, gradients and optimizer state", (weights + grads + state) / 2);
  const double all = weights + grads + state;
  for (int ranks = std::max(2, 2 * world_size); ranks <= 64; ranks *= 2) {
    if (all / ranks <= static_cast<double>(f.budget) || ranks == 64) {
      add("shard", fmt::format("FSDP or ZeRO-3 over {} GPUs", ranks), all / ranks);
      break;
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const StaticFix& a, const StaticFix& b) {
    return a.fits != b.fits ? a.fits : a.static_bytes < b.static_bytes;
  });
  return out;
}

}  // namespace

StaticFootprint static_footprint(const RunDescription& run, std::uint64_t weights_bytes, std::uint64_t budget,
                                 int world_size) {
  StaticFootprint f;
  f.weights = weights_bytes;
  f.gradients = bytes_of(trainable_elements(run) * run.param_bytes);
  f.optimizer_known = run.optimizer.has_value();
  f.optimizer_state = bytes_of(predicted_optimizer_state(run));
  f.budget = budget;
  if (f.fits()) return f;
  f.fixes = fixes_for(run, f, world_size);
  std::string fits;
  for (const auto& fix : f.fixes)
    if (fix.fits)
      fits += fmt::format("{}{} ({}{})", fits.empty() ? "" : "; ", fix.description, format_bytes(fix.static_bytes),
                          fix.kind == "shard" ? " per GPU" : "");
  f.message = fmt::format(
      "weights {} + gradients {} + optimizer state {}{} = {} exceed the budget {} before any activation",
      format_bytes(f.weights), format_bytes(f.gradients), format_bytes(f.optimizer_state),
      f.optimizer_known ? "" : " (no optimizer known yet)", format_bytes(f.total()), format_bytes(budget));
  f.message += fits.empty() ? "; no single fix brings them within it" : "; these would fit: " + fits;
  return f;
}

nlohmann::json to_json(const StaticFootprint& f) {
  nlohmann::json fixes = nlohmann::json::array();
  for (const auto& fix : f.fixes)
    fixes.push_back({{"kind", fix.kind}, {"description", fix.description}, {"static_bytes", fix.static_bytes},
                     {"fits", fix.fits}});
  return {{"weights_bytes", f.weights},
          {"gradient_bytes", f.gradients},
          {"optimizer_state_bytes", f.optimizer_state},
          {"optimizer_known", f.optimizer_known},
          {"static_bytes", f.total()},
          {"budget_bytes", f.budget},
          {"fits", f.fits()},
          {"fixes", fixes},
          {"message", f.message}};
}

}  // namespace oomguard::guard
