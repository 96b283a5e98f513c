// What the user is about to run: method, precision, optimizer, shapes,
// parallelism. Each enum has a parse function whose error lists the accepted
// spellings, so the CLI and the config files reject bad input the same way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace oomguard::guard {

enum class Method : std::uint8_t { full, lora, qlora };
enum class DType : std::uint8_t { bf16, fp16, fp32 };
enum class Optimizer : std::uint8_t { adamw, adamw_8bit, paged_adamw_8bit, sgd, adafactor };
enum class Attention : std::uint8_t { eager, sdpa, flash };
enum class Sharding : std::uint8_t { none, zero1, zero2, zero3, fsdp };
// How torch's AdamW runs its step (Note [The optimizer step's temporaries]
// in optimizer_state.cpp): foreach=True, fused=True or foreach=False.
enum class OptimizerImpl : std::uint8_t { foreach, fused, for_loop };
// Who runs the loop, where its defaults move the peak (Note [Framework
// defaults] in training_setup.cpp).
enum class Framework : std::uint8_t { hf_trainer, torch };

struct TrainingSetup {
  Method method = Method::full;
  DType dtype = DType::bf16;
  bool mixed_precision = false;  // fp32 master weights kept by the optimizer
  // fp32 weights, gradients and states, the forward under torch.autocast to
  // `dtype` (the Trainer's bf16=True or fp16=True on a model loaded in fp32).
  bool amp = false;
  Optimizer optimizer = Optimizer::adamw;
  std::optional<OptimizerImpl> optimizer_impl;  // unset: the framework's default
  Framework framework = Framework::hf_trainer;
  std::int64_t batch_size = 1;   // micro-batch per device
  std::int64_t seq_len = 1024;
  std::int64_t grad_accum = 1;
  bool gradient_checkpointing = false;
  Attention attention = Attention::sdpa;
  std::int64_t world_size = 1;
  Sharding sharding = Sharding::none;
  std::int64_t lora_r = 16;
  std::vector<std::string> lora_targets = {"q_proj", "k_proj", "v_proj", "o_proj"};
  // LoRA adapters' dtype; unset: fp32, PEFT's autocast_adapter_dtype=True.
  std::optional<DType> adapter_dtype;
  bool double_quant = true;           // QLoRA's quantization constants quantized again (bitsandbytes' default)
  bool optimizer_in_backward = false; // each parameter stepped, its gradient freed, as backward makes it
};

std::string_view name(Method m);
std::string_view name(DType d);
std::string_view name(Optimizer o);
std::string_view name(Attention a);
std::string_view name(Sharding s);
std::string_view name(OptimizerImpl i);
std::string_view name(Framework f);

Method parse_method(std::string_view text);
DType parse_dtype(std::string_view text);
Optimizer parse_optimizer(std::string_view text);
Attention parse_attention(std::string_view text);
Sharding parse_sharding(std::string_view text);  // "0", "1", "2", "3", "fsdp"
OptimizerImpl parse_optimizer_impl(std::string_view text);  // "foreach", "fused", "for-loop"
Framework parse_framework(std::string_view text);            // "hf-trainer", "torch"

// The adapters' dtype: the one given, else PEFT's default (fp32).
DType adapter_dtype(const TrainingSetup& setup);

// The implementation the step runs: the one given, else the framework's.
OptimizerImpl optimizer_impl(const TrainingSetup& setup);
// Whether the logits stay alive through backward and the optimizer step:
// the loop keeps the model's outputs (a plain loop's `outputs` variable) or
// drops them before backward (the Trainer's compute_loss returns the loss
// alone).
bool logits_held_in_backward(Framework framework);

// Bytes per element of the compute dtype.
int dtype_bytes(DType d);

// "all-linear" expands to every linear module of the model; otherwise the
// comma-separated names are kept. Throws config_error on an empty list.
std::vector<std::string> parse_lora_targets(std::string_view text);

// Throws config_error naming the first inconsistent field (batch < 1,
// fp32 master weights of an fp32 model, ...).
void validate(const TrainingSetup& setup);

}  // namespace oomguard::guard
