// How many bytes autograd keeps for backward in one training step of a
// Hugging Face causal LM, as a function of batch and sequence length.
//
// The model is public because the runtime predictor anchors on it: a
// measured step fixes the scale, the terms below fix how it moves with the
// shape. See docs/estimator.md, "Activations", for the derivation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "oomguard/guard/model_spec.hpp"
#include "oomguard/guard/training_setup.hpp"

namespace oomguard::guard {

struct ActivationInputs {
  int compute_bytes = 2;        // bytes per element of the activations
  bool bf16 = true;             // of 2-byte activations: bf16, else fp16
  Attention attention = Attention::sdpa;
  Method method = Method::full;
  std::vector<std::string> lora_targets;  // leaf module names (already expanded)
  std::int64_t lora_r = 16;
  int adapter_bytes = 4;        // PEFT keeps adapters in fp32 by default
  bool gradient_checkpointing = false;
  // fp32 weights under torch.autocast to the 2-byte compute dtype (Note
  // [Autocast: fp32 weights, bf16 compute]).
  bool amp = false;
  // Of the device, major * 10 + minor: which kernel torch's SDPA runs
  // (Note [Which kernel SDPA runs]). 80 when no device is known; 0 on CPU.
  int compute_capability = 80;
};

// The kernel behind attention "sdpa" (and "flash": FlashAttention-2).
enum class AttentionKernel : std::uint8_t { flash_or_efficient, math, eager };
AttentionKernel attention_kernel(const ModelSpec& spec, const ActivationInputs& in);

// Bytes, split by how they scale. For b sequences of s tokens:
//   saved = layers * (b*s * per_layer_per_token + b*s*s * per_layer_per_token_per_position)
//         + b*s * per_token + s * per_position
// With gradient checkpointing the per-layer terms hold only the layer inputs
// and `recompute_*` is the one layer rebuilt during backward.
struct ActivationModel {
  std::int64_t layers = 0;
  double per_layer_per_token = 0;
  double per_layer_per_token_per_position = 0;  // eager attention's s x s scores
  double per_token = 0;          // final norm, token ids, fp32 log-softmax of the loss
  double per_position = 0;       // rotary cos/sin, shared by the batch
  double logits_per_token = 0;   // outputs.logits, held by the caller through backward
  double recompute_per_token = 0;               // checkpointing only
  double recompute_per_token_per_position = 0;  // checkpointing only
  // Of the rebuilt layer, the part still held when its backward reaches
  // attention (the MLP's is freed by then); checkpointing only.
  double recompute_attention_per_token = 0;
  // Of one layer's saved bytes per token, those of its MLP (its norm, its
  // linears' inputs, its activations): freed before backward reaches the
  // layer's attention. Without checkpointing only (0 with it).
  double mlp_per_token = 0;

  // What autograd keeps at the end of forward (logits not included).
  double saved_bytes(std::int64_t batch, std::int64_t seq) const;
  // The layer rebuilt during backward under checkpointing (0 otherwise).
  double recompute_bytes(std::int64_t batch, std::int64_t seq) const;
  double recompute_attention_bytes(std::int64_t batch, std::int64_t seq) const;
  double logits_bytes(std::int64_t batch, std::int64_t seq) const;
};

ActivationModel activation_model(const ModelSpec& spec, const ActivationInputs& in);

}  // namespace oomguard::guard
