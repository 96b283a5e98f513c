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

// bitsandbytes' paged optimizers keep the states of tensors of at least
// this many elements in unified memory (bitsandbytes/optim/optimizer.py
// get_state_buffer); smaller ones come from torch.
constexpr double kPagedStateMinElements = 1e5;
constexpr std::uint64_t kCublasLtWorkspaceBytes = 1 << 20;  // Note [cuBLAS workspaces]

double sharded(double bytes, bool shard, std::int64_t world) {
  return shard ? bytes / static_cast<double>(world) : bytes;
}

}  // namespace

// Note [cuBLAS workspaces]
// torch hands cuBLAS a workspace per (handle, stream) from its own caching
// allocator, so it counts in torch.cuda.max_memory_allocated(). A training
// step uses two handles: the forward's, on the main thread, and backward's,
// on autograd's device thread. Each workspace is CUBLAS_WORKSPACE_CONFIG's
// default, ":4096:8" (32 MiB) on compute capability 9.x and ":4096:2:16:8"
// (2 x 4 MiB + 8 x 16 KiB) elsewhere. Measured on the simulated devices,
// which run torch's own code: 17,039,360 B held after a step on an A100, a
// T4 and a B200, 67,108,864 B on an H100. Beside a 7B model this is noise;
// beside a small model on a small GPU it is what an estimate 17 MB low
// misses. A linear with a bias (Qwen2's q/k/v, GPT-2) runs its addmm
// through cuBLASLt's bias epilogue, and cuBLASLt takes a workspace of its
// own, CUBLASLT_WORKSPACE_SIZE's default 1 MiB, at the first one (seen on
// the simulated A100: a 1,048,576 B block allocated from Linear.forward at
// Qwen2's q_proj, held to the end; Llama, without biases, has none), and
// a second one on autograd's thread when checkpointing rebuilds a layer
// there. A user
// who sets CUBLAS_WORKSPACE_CONFIG changes the figures; the estimate does
// not read the environment.
std::uint64_t cublas_workspace_bytes(int compute_capability) {
  constexpr std::uint64_t KiB = 1024;
  return compute_capability / 10 == 9 ? 8 * 4096 * KiB : 2 * 4096 * KiB + 8 * 16 * KiB;
}

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
  const double d = dtype_bytes(s.dtype);  // of the compute: activations, logits
  const double weight_bytes = s.amp ? 4 : d;  // of unquantized weights, their gradients and states
  const bool full = s.method == Method::full;
  const std::int64_t world = s.world_size;
  const bool shard_optimizer = s.sharding != Sharding::none;
  const bool shard_grads = s.sharding == Sharding::zero2 || s.sharding == Sharding::zero3 || s.sharding == Sharding::fsdp;
  const bool shard_weights = s.sharding == Sharding::zero3 || s.sharding == Sharding::fsdp;
  const auto targets = full ? std::vector<std::string>{} : resolve_lora_targets(spec, s.lora_targets);
  const double adapter_bytes = dtype_bytes(adapter_dtype(s));

  Estimate e;
  e.parameters = total(spec, tensors);

  // Weights, adapters, and what trains.
  double weights = 0, adapters = 0, largest_layer = 0, largest_tensor = 0, autocast_copies = 0;
  std::vector<ParamTensor> trainable;
  for (const auto& p : tensors) {
    const std::int64_t count = p.scope == TensorScope::per_layer ? spec.layers : 1;
    const double copies = static_cast<double>(count);
    const double n = static_cast<double>(p.numel());
    if (s.method == Method::qlora && p.is_linear_weight) {
      // NF4: half a byte per weight and an absmax per 64-weight block: an
      // fp32 one, or with double quantization (bitsandbytes' default) one
      // byte per block plus an fp32 per 256 blocks.
      const double constants = s.double_quant ? n / 64 + 4 * n / (64 * 256) : 4 * n / 64;
      weights += copies * (n / 2 + constants);
    } else {
      weights += copies * n * weight_bytes;
    }
    // Note [Autocast: fp32 weights, bf16 compute] in activation_model.cpp:
    // every linear's weight in the compute dtype, cached by autocast in
    // forward and then held by autograd for backward; the embedding too
    // where it is the tied lm_head. QLoRA's 4-bit weights are dequantized
    // per use instead.
    if (s.amp && p.is_linear_weight && s.method != Method::qlora) autocast_copies += copies * n * d;
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
      adapters += copies * static_cast<double>(a.numel() + b.numel()) * adapter_bytes;
      if (s.amp) autocast_copies += copies * static_cast<double>(a.numel() + b.numel()) * d;
    }
  }
  const double lm_head_copy = s.amp ? static_cast<double>(spec.vocab * spec.hidden) * d : 0;
  autocast_copies += lm_head_copy;
  // The optimizer steps what trains: its largest tensor sizes the
  // one-tensor-at-a-time temporaries (a frozen embedding does not).
  double trainable_n = 0, trainable_per_layer = 0;
  for (const auto& p : trainable) {
    const double n = static_cast<double>(p.numel());
    trainable_n += n;
    largest_tensor = std::max(largest_tensor, n);
    if (p.scope == TensorScope::per_layer) trainable_per_layer += n;
  }
  trainable_per_layer /= static_cast<double>(std::max<std::int64_t>(spec.layers, 1));
  e.trainable_parameters = static_cast<std::int64_t>(trainable_n);

  // Gradients, master weights and optimizer states of what trains.
  const double train_bytes = full ? weight_bytes : adapter_bytes;
  const bool master = full && s.mixed_precision;
  const double state_bytes = master ? 4 : train_bytes;
  double states = 0, paged_states = 0;
  for (const auto& p : trainable) {
    const double bytes = optimizer_state_bytes(s.optimizer, p, state_bytes);
    const bool paged = s.optimizer == Optimizer::paged_adamw_8bit && static_cast<double>(p.numel()) >= kPagedStateMinElements;
    (paged ? paged_states : states) += bytes;
  }
  // Note [The optimizer in backward]
  // torchtune's optimizer_in_bwd gives each parameter its own optimizer and
  // steps it from a post-accumulate-grad hook, which then frees the
  // gradient: at most one gradient is alive (the one being stepped), with
  // that one tensor's step temporaries, and there is no optimizer-step
  // phase after backward. Seen on the simulated A100 with a plain loop
  // doing the same (tests/python/test_estimator_grid.py, the settings grid).
  const bool in_backward = s.optimizer_in_backward;
  const double grads = in_backward ? largest_tensor * train_bytes : sharded(trainable_n * train_bytes, shard_grads, world);
  const double master_bytes = master ? sharded(4 * trainable_n, shard_optimizer, world) : 0;
  states = sharded(states, shard_optimizer, world);
  paged_states = sharded(paged_states, shard_optimizer, world);
  const double step_transient = sharded(
      optimizer_step_transient(s.optimizer, optimizer_impl(s), in_backward ? largest_tensor : trainable_n, state_bytes,
                               largest_tensor),
      shard_optimizer, world);
  double gathered = 0;
  if (shard_weights) {
    // Each rank keeps 1/world of the weights and gathers a layer at a time,
    // prefetching the next one.
    weights /= static_cast<double>(world);
    gathered = 2 * largest_layer * weight_bytes;
  }

  // Activations.
  ActivationInputs ai;
  ai.compute_bytes = static_cast<int>(d);
  ai.bf16 = s.dtype == DType::bf16;
  ai.compute_capability = options.compute_capability;
  ai.attention = s.attention;
  ai.method = s.method;
  ai.lora_targets = targets;
  ai.lora_r = s.lora_r;
  ai.adapter_bytes = static_cast<int>(adapter_bytes);
  ai.gradient_checkpointing = s.gradient_checkpointing;
  ai.amp = s.amp;
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
  const double first_grads =
      in_backward ? grads
                  : (full ? sharded(static_cast<double>(spec.vocab * spec.hidden) * train_bytes, shard_grads, world) : 0);
  const double accumulated = s.grad_accum > 1 ? grads : 0;
  const bool logits_held = logits_held_in_backward(s.framework);
  // Note [The key/value cache of a training forward]
  // transformers 5 builds a DynamicCache in a training forward too
  // (config.use_cache defaults to true; gradient checkpointing turns it
  // off) and returns it in the outputs. Each layer's cache holds its own
  // copy of the rotated keys and the values (cache_utils.py DynamicLayer
  // .update, seen on the simulated A100). SDPA's flash and efficient kernels
  // save those same tensors, so the cache costs nothing more. Eager
  // attention with grouped-query heads keeps repeat_kv's h_q-wide copies
  // (with one key/value head per head repeat_kv returns the cache's own
  // tensors), and the math kernel keeps repeated or fp32 copies; then the
  // cache's keys and values are extra for as long as the outputs live.
  const AttentionKernel kernel = attention_kernel(spec, ai);
  const bool grouped = spec.kv_heads < spec.heads;
  const bool copies_kv = (kernel == AttentionKernel::eager && grouped) ||
                         (kernel == AttentionKernel::math && (grouped || d < 4));
  const bool cache_is_extra = !s.gradient_checkpointing && spec.family != Family::gpt2 && copies_kv;
  // Note [Attention's backward holds s x s gradients]
  // Where the scores are materialised (eager, the math kernel), one layer's
  // backward holds, per head and pair of positions, the gradient of the
  // probabilities, its fp32 cast for the fp32 softmax's backward (none in
  // fp32), that backward's output and the gradient through the scaling:
  // 3d + 4 bytes in bf16 (10), 3d in fp32 (12). By then the layer's MLP
  // has been through backward: its activations are freed and, in a full
  // fine-tune, its weights' and o_proj's gradients made. Seen on the
  // simulated A100 at the backward peak of checkpointed 2-layer Llamas at
  // 1 x 1024 (full and LoRA, bf16 and fp32), which were estimated 22% low
  // without the term and within 2% with it.
  const double attention_backward =
      kernel == AttentionKernel::flash_or_efficient
          ? 0
          : tokens * static_cast<double>(s.seq_len) * static_cast<double>(spec.heads) * (3 * d + (d < 4 ? 4 : 0));
  const double h = static_cast<double>(spec.hidden);
  const double layer_mlp_and_o_grads =
      full && !in_backward
          ? sharded((3 * h * static_cast<double>(spec.intermediate) + h * static_cast<double>(spec.q_width())) *
                        train_bytes,
                    shard_grads, world)
          : 0;
  // Without the cache transformers passes SDPA an explicit causal mask,
  // one bool per pair of positions per sequence, made once and held by
  // every checkpointed layer until backward is through them (Note [Which
  // kernel SDPA runs]).
  const double attention_mask =
      s.gradient_checkpointing && s.attention == Attention::sdpa && spec.family != Family::gpt2
          ? tokens * static_cast<double>(s.seq_len)
          : 0;
  const double kv_cache =
      cache_is_extra ? tokens * static_cast<double>(spec.layers) * 2 * d * static_cast<double>(spec.kv_width()) : 0;
  const bool biased_linears = spec.family == Family::gpt2 || spec.qkv_bias || spec.o_bias || spec.mlp_bias;
  // Checkpointing runs the biased forward again on autograd's thread: a
  // second cuBLASLt handle, a second workspace.
  const double lt_handles = s.gradient_checkpointing ? 2 : 1;
  const double workspaces = 2.0 * static_cast<double>(cublas_workspace_bytes(options.compute_capability)) +
                            (biased_linears ? lt_handles * static_cast<double>(kCublasLtWorkspaceBytes) : 0.0);

  e.components = {
      {"weights", Category::weights, weights},
      {"weights_gathered", Category::weights, gathered},
      {"adapters", Category::adapters, adapters},
      {"master_weights", Category::optimizer, master_bytes},
      {"optimizer_states", Category::optimizer, states},
      // Unified memory bitsandbytes allocates itself: outside torch's
      // allocator, paged to host by the driver under pressure.
      {"optimizer_states_paged", Category::non_torch, paged_states},
      {"cublas_workspaces", Category::temporary, workspaces},
      {"gradients", Category::gradients, grads},
      {"activations_saved", Category::activations, saved},
      {"logits", Category::activations, logits},
      {"kv_cache", Category::activations, kv_cache},
      {"attention_mask", Category::activations, attention_mask},
      {"autocast_weight_copies", Category::activations, autocast_copies},
      // lm_head's gradient in the compute dtype beside its fp32 cast.
      {"autocast_gradient_cast", Category::temporary, s.amp && full ? lm_head_copy : 0},
      {"loss_forward_transient", Category::temporary, loss_forward},
      {"loss_backward_transient", Category::temporary, loss_backward},
      {"logits_gradient", Category::temporary, d * vocab * tokens},
      {"checkpoint_recompute", Category::temporary, recompute},
      {"checkpoint_recompute_attention", Category::temporary, am.recompute_attention_bytes(s.batch_size, s.seq_len)},
      {"attention_backward_transient", Category::temporary, attention_backward},
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
  const std::vector<Component> resident = {c("weights"),          c("weights_gathered"), c("adapters"),
                                           c("master_weights"),   c("optimizer_states"), c("optimizer_states_paged"),
                                           c("cublas_workspaces")};
  auto phase = [&](std::string name, std::vector<Component> extra) {
    PhasePeak p{std::move(name), resident};
    p.components.insert(p.components.end(), extra.begin(), extra.end());
    return p;
  };
  // Note [The moments of backward]
  // Backward frees activations as it makes gradients, so its peak is one
  // of these moments, not their sum (which overstated checkpointed Llamas'
  // backward by up to 14% on the simulated A100):
  //  * the loss's backward: every activation, the logits if the loop holds
  //    them, and the fp32 gradients of the log-softmax;
  //  * lm_head's backward, just after: the logits' gradient and lm_head's
  //    gradient (the first one backward makes) in place of the loss's;
  //  * the last layer's attention backward (below);
  //  * the end of backward: every gradient;
  //  * under checkpointing, the first layer rebuilt last: every gradient
  //    but the embedding's (untied) and that layer's, its input and the
  //    attention part of its rebuilt activations; the other layers'
  //    inputs are freed by then.
  const double logits_in_backward = logits_held ? logits : 0;
  const double cache_in_backward = logits_held ? kv_cache : 0;
  // With the optimizer in backward, a gradient is stepped as soon as it is
  // made. Its temporaries meet lm_head's step and the end of backward, not
  // an attention backward's s x s gradients: o_proj is stepped before they
  // are made, q/k/v after they are freed (full fine-tunes with eager
  // attention were 5.5% high on the simulated A100 while they were
  // counted there).
  const Component stepping = with_bytes(c("optimizer_step_transient"), in_backward ? step_transient : 0);
  // Autocast's weight copies: all of them through forward (its cache) and,
  // held by autograd, until backward passes their layer. Under
  // checkpointing the layers keep none: lm_head's until its backward, then
  // the rebuilt layer's own.
  const double layer_copies = autocast_copies - lm_head_copy;
  const Component copies_early =
      with_bytes(c("autocast_weight_copies"), s.gradient_checkpointing ? lm_head_copy : autocast_copies);
  const Component copies_late = with_bytes(
      c("autocast_weight_copies"),
      s.gradient_checkpointing ? layer_copies / static_cast<double>(std::max<std::int64_t>(spec.layers, 1)) : layer_copies);
  std::vector<PhasePeak> moments = {
      phase("backward", {with_bytes(c("gradients"), accumulated), c("activations_saved"),
                         with_bytes(c("logits"), logits_in_backward), with_bytes(c("kv_cache"), cache_in_backward),
                         c("attention_mask"), copies_early, c("loss_backward_transient")}),
      phase("backward", {with_bytes(c("gradients"), accumulated > 0 ? accumulated : first_grads),
                         c("activations_saved"), with_bytes(c("logits"), logits_in_backward),
                         with_bytes(c("kv_cache"), cache_in_backward), c("attention_mask"), copies_early,
                         c("logits_gradient"), c("autocast_gradient_cast")}),
      // The last layer's attention backward (under checkpointing, rebuilt
      // first): lm_head's gradient made, the loss's and the final norm's
      // saved tensors freed, every layer's still saved, the layer's s x s
      // gradients.
      phase("backward", {with_bytes(c("gradients"), accumulated > 0 ? accumulated : first_grads + layer_mlp_and_o_grads),
                         with_bytes(c("activations_saved"),
                                    std::max(0.0, saved - tokens * (am.per_token + am.mlp_per_token))),
                         with_bytes(c("logits"), logits_in_backward),
                         with_bytes(c("kv_cache"), cache_in_backward), c("attention_mask"), copies_late,
                         c("checkpoint_recompute_attention"), c("attention_backward_transient")}),
      // The end of backward: every gradient, activations all freed.
      phase("backward", {c("gradients"), with_bytes(c("logits"), logits_in_backward),
                         with_bytes(c("kv_cache"), cache_in_backward), stepping}),
  };
  if (in_backward) {
    // lm_head's gradient stepped: the logits' gradient and the log-softmax
    // saved by the loss are freed by then (its s x V terms and the step's
    // do not meet).
    moments.push_back(phase("backward", {c("gradients"),
                                         with_bytes(c("activations_saved"), std::max(0.0, saved - tokens * am.per_token)),
                                         with_bytes(c("logits"), logits_in_backward),
                                         with_bytes(c("kv_cache"), cache_in_backward), c("attention_mask"), copies_late,
                                         stepping}));
  }
  if (s.gradient_checkpointing) {
    const double embedding_grads = full && !spec.tied_embeddings ? first_grads : 0;
    const double late_grads =
        in_backward ? grads
                    : std::max(0.0, grads - embedding_grads - sharded(trainable_per_layer * train_bytes, shard_grads, world));
    const double layer_input = tokens * am.per_layer_per_token;
    moments.push_back(phase("backward", {with_bytes(c("gradients"), std::max(late_grads, accumulated)),
                                         with_bytes(c("activations_saved"), layer_input),
                                         with_bytes(c("logits"), logits_in_backward), c("attention_mask"),
                                         copies_late, c("checkpoint_recompute_attention"),
                                         c("attention_backward_transient")}));
  }
  PhasePeak backward = moments.front();
  for (const auto& m : moments)
    if (m.tensor_bytes() > backward.tensor_bytes()) backward = m;
  e.phases = {
      phase("forward", {with_bytes(c("gradients"), accumulated), c("activations_saved"), c("logits"), c("kv_cache"),
                        c("attention_mask"), c("autocast_weight_copies"), c("loss_forward_transient")}),
      backward,
  };
  if (!in_backward)
    e.phases.push_back(phase("optimizer_step", {c("gradients"), c("optimizer_step_transient"),
                                                with_bytes(c("logits"), logits_in_backward),
                                                with_bytes(c("kv_cache"), cache_in_backward)}));
  for (std::size_t i = 1; i < e.phases.size(); ++i)
    if (e.phases[i].tensor_bytes() > e.phases[e.peak_phase].tensor_bytes()) e.peak_phase = i;
  const double tensor_peak = e.peak().tensor_bytes();
  // Slack is what torch's caching allocator reserves beyond its tensors;
  // paged states are not in it.
  e.allocator_slack_bytes = (tensor_peak - paged_states) * options.allocator_slack;
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
