#include "oomguard/guard/estimator.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "oomguard/error.hpp"
#include "oomguard/guard/optimizer_state.hpp"

namespace oomguard::guard {
namespace {

constexpr int kAdapterBytes = 4;  // PEFT's autocast_adapter_dtype keeps adapters in fp32

double sharded(double bytes, bool shard, std::int64_t world) {
  return shard ? bytes / static_cast<double>(world) : bytes;
}

}  // namespace

double PhasePeak::tensor_bytes() const {
  double sum = 0;
  for (const auto& c : components) sum += c.bytes;
  return sum;
}

double Estimate::component(std::string_view wanted) const {
  for (const auto& c : components)
    if (c.name == wanted) return c.bytes;
  return 0;
}

std::vector<std::string> resolve_lora_targets(const ModelSpec& spec, const std::vector<std::string>& targets) {
  std::set<std::string> linear;
  for (const auto& p : parameter_tensors(spec))
    if (p.is_linear_weight) linear.insert(p.module);
  std::vector<std::string> out;
  if (targets.empty()) {
    if (spec.family == Family::gpt2) return {"c_attn", "c_proj"};
    if (spec.fused_projections) return {"qkv_proj", "o_proj"};
    return {"q_proj", "k_proj", "v_proj", "o_proj"};
  }
  if (targets.size() == 1 && targets[0] == "all-linear") return {linear.begin(), linear.end()};
  for (const auto& t : targets) {
    if (!linear.contains(t))
      throw config_error(fmt::format("LoRA target \"{}\" is not a linear module of this {} model; its linear "
                                     "modules: {} (or all-linear)",
                                     t, spec.model_type, fmt::join(linear, ", ")));
    out.push_back(t);
  }
  return out;
}

Estimate estimate(const ModelSpec& spec, const EstimateOptions& options) {
  const TrainingSetup& s = options.setup;
  validate(s);
  const auto tensors = parameter_tensors(spec);
  const double d = dtype_bytes(s.dtype);
  const bool full = s.method == Method::full;
  const std::int64_t world = s.world_size;
  const bool shard_optimizer = s.sharding != Sharding::none;
  const bool shard_grads = s.sharding == Sharding::zero2 || s.sharding == Sharding::zero3 || s.sharding == Sharding::fsdp;
  const bool shard_weights = s.sharding == Sharding::zero3 || s.sharding == Sharding::fsdp;
  const auto targets = full ? std::vector<std::string>{} : resolve_lora_targets(spec, s.lora_targets);

  Estimate e;
  e.parameters = total(spec, tensors);

  // Weights, adapters, and what trains.
  double weights = 0, adapters = 0, largest_layer = 0, largest_tensor = 0;
  std::vector<ParamTensor> trainable;
  for (const auto& p : tensors) {
    const std::int64_t count = p.scope == TensorScope::per_layer ? spec.layers : 1;
    const double copies = static_cast<double>(count);
    const double n = static_cast<double>(p.numel());
    largest_tensor = std::max(largest_tensor, n);
    if (s.method == Method::qlora && p.is_linear_weight) {
      // NF4: half a byte per weight; double-quantized constants: one byte per
      // 64-block plus an fp32 per 256 blocks.
      weights += copies * (n / 2 + n / 64 + 4 * n / (64 * 256));
    } else {
      weights += copies * n * d;
    }
    if (p.scope == TensorScope::per_layer) largest_layer += n;
    const bool adapted = std::find(targets.begin(), targets.end(), p.module) != targets.end();
    if (full) {
      for (std::int64_t i = 0; i < count; ++i) trainable.push_back(p);
    } else if (adapted && p.is_linear_weight) {
      ParamTensor a{p.module + ".lora_A", s.lora_r, p.cols, p.scope, false, false};
      ParamTensor b{p.module + ".lora_B", p.rows, s.lora_r, p.scope, false, false};
      for (std::int64_t i = 0; i < count; ++i) {
        trainable.push_back(a);
        trainable.push_back(b);
      }
      adapters += copies * static_cast<double>(a.numel() + b.numel()) * kAdapterBytes;
    }
  }
  double trainable_n = 0;
  for (const auto& p : trainable) trainable_n += static_cast<double>(p.numel());
  e.trainable_parameters = static_cast<std::int64_t>(trainable_n);

  // Gradients, master weights and optimizer states of what trains.
  const double train_bytes = full ? d : kAdapterBytes;
  const bool master = full && s.mixed_precision;
  const double state_bytes = master ? 4 : train_bytes;
  double states = 0;
  for (const auto& p : trainable) states += optimizer_state_bytes(s.optimizer, p, state_bytes);
  const double grads = sharded(trainable_n * train_bytes, shard_grads, world);
  const double master_bytes = master ? sharded(4 * trainable_n, shard_optimizer, world) : 0;
  states = sharded(states, shard_optimizer, world);
  const double step_transient =
      sharded(optimizer_step_transient(s.optimizer, trainable_n, state_bytes, largest_tensor), shard_optimizer, world);
  double gathered = 0;
  if (shard_weights) {
    // Each rank keeps 1/world of the weights and gathers a layer at a time,
    // prefetching the next one.
    weights /= static_cast<double>(world);
    gathered = 2 * largest_layer * d;
  }

  // Activations.
  ActivationInputs ai;
  ai.compute_bytes = static_cast<int>(d);
  ai.attention = s.attention;
  ai.method = s.method;
  ai.lora_targets = targets;
  ai.lora_r = s.lora_r;
  ai.adapter_bytes = kAdapterBytes;
  ai.gradient_checkpointing = s.gradient_checkpointing;
  e.activation = activation_model(spec, ai);
  const auto& am = e.activation;
  const double tokens = static_cast<double>(s.batch_size * s.seq_len);
  const double vocab = static_cast<double>(spec.vocab);
  const double saved = am.saved_bytes(s.batch_size, s.seq_len);
  const double logits = am.logits_bytes(s.batch_size, s.seq_len);
  // Cross-entropy: forward makes an fp32 copy of the logits when they are not
  // fp32; backward holds the fp32 gradient of the log-softmax output and of
  // its input, then casts it to the logits dtype.
  const double loss_forward = d < 4 ? 4 * vocab * tokens : 0;
  const double loss_backward = (8 * vocab + d) * tokens;
  const double recompute = am.recompute_bytes(s.batch_size, s.seq_len);
  // Gradients alive while activations are: all of them when accumulating,
  // else those backward makes first (lm_head or the tied embedding).
  const double first_grads = full ? sharded(static_cast<double>(spec.vocab * spec.hidden) * train_bytes, shard_grads, world) : 0;
  const double grads_in_backward = s.grad_accum > 1 ? grads : first_grads;

  e.components = {
      {"weights", Category::weights, weights},
      {"weights_gathered", Category::weights, gathered},
      {"adapters", Category::adapters, adapters},
      {"master_weights", Category::optimizer, master_bytes},
      {"optimizer_states", Category::optimizer, states},
      {"gradients", Category::gradients, grads},
      {"activations_saved", Category::activations, saved},
      {"logits", Category::activations, logits},
      {"loss_forward_transient", Category::temporary, loss_forward},
      {"loss_backward_transient", Category::temporary, loss_backward},
      {"checkpoint_recompute", Category::temporary, recompute},
      {"optimizer_step_transient", Category::temporary, step_transient},
  };
  auto c = [&](std::string_view n) {
    for (const auto& x : e.components)
      if (x.name == n) return x;
    throw std::logic_error("no component");
  };
  auto with_bytes = [](Component x, double b) {
    x.bytes = b;
    return x;
  };
  const std::vector<Component> resident = {c("weights"), c("weights_gathered"), c("adapters"), c("master_weights"),
                                           c("optimizer_states")};
  auto phase = [&](std::string name, std::vector<Component> extra) {
    PhasePeak p{std::move(name), resident};
    p.components.insert(p.components.end(), extra.begin(), extra.end());
    return p;
  };
  e.phases = {
      phase("forward", {with_bytes(c("gradients"), s.grad_accum > 1 ? grads : 0), c("activations_saved"), c("logits"),
                        c("loss_forward_transient")}),
      phase("backward", {with_bytes(c("gradients"), grads_in_backward), c("activations_saved"), c("logits"),
                         c("loss_backward_transient"), c("checkpoint_recompute")}),
      phase("optimizer_step", {c("gradients"), c("optimizer_step_transient")}),
  };
  for (std::size_t i = 1; i < e.phases.size(); ++i)
    if (e.phases[i].tensor_bytes() > e.phases[e.peak_phase].tensor_bytes()) e.peak_phase = i;
  const double tensor_peak = e.peak().tensor_bytes();
  e.allocator_slack_bytes = tensor_peak * options.allocator_slack;
  e.cuda_context_bytes = static_cast<double>(options.cuda_context_bytes);
  e.peak_bytes = tensor_peak + e.allocator_slack_bytes + e.cuda_context_bytes;
  if (options.gpu_memory_bytes > 0) {
    e.headroom_bytes = static_cast<double>(options.gpu_memory_bytes) - e.peak_bytes;
    e.fits = e.headroom_bytes >= 0;
  }
  return e;
}

NaiveEstimate naive_estimate(const ModelSpec& spec, const TrainingSetup& setup) {
  const double n = static_cast<double>(parameter_count(spec));
  NaiveEstimate naive;
  naive.weights = 2 * n;
  naive.optimizer = 2 * 4 * n;
  naive.activations = static_cast<double>(setup.batch_size * setup.seq_len * spec.hidden * spec.layers) * 2;
  return naive;
}

}  // namespace oomguard::guard
