#include "oomguard/guard/training_setup.hpp"

#include <array>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "oomguard/error.hpp"

namespace oomguard::guard {
namespace {

template <typename Enum, std::size_t N>
using Names = std::array<std::pair<Enum, std::string_view>, N>;

constexpr Names<Method, 3> kMethods{{{Method::full, "full"}, {Method::lora, "lora"}, {Method::qlora, "qlora"}}};
constexpr Names<DType, 3> kDTypes{{{DType::bf16, "bf16"}, {DType::fp16, "fp16"}, {DType::fp32, "fp32"}}};
constexpr Names<Optimizer, 5> kOptimizers{{{Optimizer::adamw, "adamw"},
                                           {Optimizer::adamw_8bit, "adamw-8bit"},
                                           {Optimizer::paged_adamw_8bit, "paged-adamw-8bit"},
                                           {Optimizer::sgd, "sgd"},
                                           {Optimizer::adafactor, "adafactor"}}};
constexpr Names<Attention, 3> kAttention{
    {{Attention::eager, "eager"}, {Attention::sdpa, "sdpa"}, {Attention::flash, "flash"}}};
constexpr Names<Sharding, 5> kSharding{{{Sharding::none, "0"},
                                        {Sharding::zero1, "1"},
                                        {Sharding::zero2, "2"},
                                        {Sharding::zero3, "3"},
                                        {Sharding::fsdp, "fsdp"}}};
constexpr Names<OptimizerImpl, 3> kOptimizerImpls{
    {{OptimizerImpl::foreach, "foreach"}, {OptimizerImpl::fused, "fused"}, {OptimizerImpl::for_loop, "for-loop"}}};
constexpr Names<Framework, 2> kFrameworks{{{Framework::hf_trainer, "hf-trainer"}, {Framework::torch, "torch"}}};

template <typename Enum, std::size_t N>
std::string_view lookup_name(const Names<Enum, N>& names, Enum value) {
  for (const auto& [e, n] : names)
    if (e == value) return n;
  return "?";
}

template <typename Enum, std::size_t N>
Enum lookup_value(const Names<Enum, N>& names, std::string_view text, std::string_view what) {
  std::vector<std::string_view> accepted;
  for (const auto& [e, n] : names) {
    if (n == text) return e;
    accepted.push_back(n);
  }
  throw config_error(fmt::format("{} \"{}\" is not accepted; accepted: {}", what, text, fmt::join(accepted, ", ")));
}

}  // namespace

std::string_view name(Method m) { return lookup_name(kMethods, m); }
std::string_view name(DType d) { return lookup_name(kDTypes, d); }
std::string_view name(Optimizer o) { return lookup_name(kOptimizers, o); }
std::string_view name(Attention a) { return lookup_name(kAttention, a); }
std::string_view name(Sharding s) { return lookup_name(kSharding, s); }
std::string_view name(OptimizerImpl i) { return lookup_name(kOptimizerImpls, i); }
std::string_view name(Framework f) { return lookup_name(kFrameworks, f); }

Method parse_method(std::string_view text) { return lookup_value(kMethods, text, "method"); }
DType parse_dtype(std::string_view text) { return lookup_value(kDTypes, text, "dtype"); }
Optimizer parse_optimizer(std::string_view text) { return lookup_value(kOptimizers, text, "optimizer"); }
Attention parse_attention(std::string_view text) { return lookup_value(kAttention, text, "attention"); }
Sharding parse_sharding(std::string_view text) { return lookup_value(kSharding, text, "zero stage"); }
OptimizerImpl parse_optimizer_impl(std::string_view text) {
  return lookup_value(kOptimizerImpls, text, "optimizer implementation");
}
Framework parse_framework(std::string_view text) { return lookup_value(kFrameworks, text, "framework"); }

// Note [Framework defaults]
// What the loop does unasked, where it moves the peak:
//  * hf-trainer (transformers 5.24): TrainingArguments.optim defaults to
//    "adamw_torch_fused", torch's AdamW with fused=True, whose step
//    allocates no state-sized temporary (a bf16 7B full fine-tune: 14.5 GB
//    less at the step than foreach). Trainer.compute_loss returns the loss
//    alone, so the model's outputs (the logits) are freed before backward.
//  * torch (a plain loop): torch.optim.AdamW() picks foreach on CUDA
//    (torch/optim/optimizer.py _default_to_fused_or_foreach: fused is never
//    the default), and the loop's `outputs` variable holds the logits
//    through backward and the optimizer step.
// Measured on the simulated A100 (tests/python/test_estimator_grid.py).
OptimizerImpl optimizer_impl(const TrainingSetup& s) {
  if (s.optimizer_impl) return *s.optimizer_impl;
  return s.framework == Framework::hf_trainer ? OptimizerImpl::fused : OptimizerImpl::foreach;
}

bool logits_held_in_backward(Framework f) { return f == Framework::torch; }

int dtype_bytes(DType d) { return d == DType::fp32 ? 4 : 2; }

DType adapter_dtype(const TrainingSetup& s) { return s.adapter_dtype.value_or(DType::fp32); }

std::vector<std::string> parse_lora_targets(std::string_view text) {
  std::vector<std::string> targets;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) targets.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  if (targets.empty())
    throw config_error("lora targets: empty list; give module names such as q_proj,v_proj or all-linear");
  return targets;
}

void validate(const TrainingSetup& s) {
  auto positive = [](std::int64_t v, std::string_view what) {
    if (v < 1) throw config_error(fmt::format("{} must be at least 1, got {}", what, v));
  };
  positive(s.batch_size, "batch size");
  positive(s.seq_len, "sequence length");
  positive(s.grad_accum, "gradient accumulation steps");
  positive(s.world_size, "world size");
  if (s.method != Method::full) positive(s.lora_r, "LoRA rank");
  if (s.adapter_dtype && s.method == Method::full)
    throw config_error("--adapter-dtype is the dtype of LoRA adapters; a full fine-tune (--method full) has none: "
                       "use it with --method lora or qlora");
  if (!s.double_quant && s.method != Method::qlora)
    throw config_error("--no-double-quant changes QLoRA's 4-bit quantization constants; it needs --method qlora");
  if (s.optimizer_in_backward && s.grad_accum > 1)
    throw config_error(fmt::format("--optimizer-in-backward steps each parameter as its gradient is made, so it "
                                   "cannot accumulate gradients (--grad-accum {}); torchtune refuses the same",
                                   s.grad_accum));
  if (s.optimizer_in_backward && s.sharding != Sharding::none)
    throw config_error("--optimizer-in-backward is modelled for one device without sharding (--zero 0)");
  if (s.amp && s.dtype == DType::fp32)
    throw config_error("--amp keeps fp32 weights and autocasts the forward to --dtype bf16 or fp16; with --dtype fp32 "
                       "there is nothing to autocast");
  if (s.amp && s.mixed_precision)
    throw config_error("--amp and --mixed-precision both keep fp32 weights: --amp autocasts an fp32 model, "
                       "--mixed-precision keeps fp32 master copies of a bf16 one; give one");
  if (s.mixed_precision && s.dtype == DType::fp32)
    throw config_error("--mixed-precision keeps fp32 master weights of a bf16 or fp16 model; with --dtype fp32 "
                       "the weights are already fp32");
}

}  // namespace oomguard::guard
