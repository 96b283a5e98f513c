#include "oomguard/guard/activation_model.hpp"

#include <algorithm>

namespace oomguard::guard {
namespace {

// Note [What a decoder layer saves]
// Counted per token, in bytes, from what each op of the transformers
// implementation hands to autograd (verified against saved_tensors_hooks on
// CPU, tests/python/test_estimator_models.py):
//  * RMSNorm upcasts its input to fp32 (4h; the input itself when fp32) and
//    keeps rsqrt (4 bytes). `weight * normed` keeps `normed` (d*h) only when
//    the norm weight trains. The norm output is kept by the linears it feeds.
//  * A linear keeps its input when its weight trains. Under LoRA the frozen
//    base keeps nothing; lora_A keeps the input (a copy in the adapter dtype
//    when that differs, one per adapter) and lora_B keeps the r-wide middle.
//    QLoRA's 4-bit matmul (bitsandbytes MatMul4Bit) holds its input anyway.
//  * RoPE keeps only cos/sin, computed once per model.
//  * Eager attention keeps q, k and v as h_q-wide copies (the matmul reshape,
//    repeat_kv), the fp32 softmax and its d-byte cast (same tensor in fp32).
//    SDPA/flash keep q, k, v (kv-wide), the output, which is also o_proj's
//    input, and an fp32 log-sum-exp per head: no s*s term.
//  * The gated MLP keeps gate, act(gate) and up (3*d*I); the product is
//    down_proj's input.

struct LayerTerms {
  double per_token = 0;
  double per_token_per_position = 0;
  double attention_per_token = 0;  // the part saved up to o_proj (input norm, q/k/v, attention)
};

bool targeted(const ActivationInputs& in, std::string_view module) {
  return std::find(in.lora_targets.begin(), in.lora_targets.end(), module) != in.lora_targets.end();
}

// Note [Autocast: fp32 weights, bf16 compute]
// Under torch.autocast with an fp32 model (the Trainer's bf16=True on a
// model loaded in fp32) the residual stream stays fp32 (the embedding does
// not autocast, and fp32 + bf16 adds to fp32), and every linear casts its
// input to bf16 itself: q, k and v each keep their own bf16 copy of the
// norm's fp32 output, as gate and up do, where a bf16 model shares one
// input. A linear whose input is already bf16 (o_proj, down_proj) keeps
// that input. A LoRA adapter casts its input up to its fp32 weight's
// dtype and autocast casts it back: one bf16 copy per adapter, and a bf16
// r-wide middle. RMSNorm's input is the fp32 hidden state itself, and the
// normed fp32 output stays for its weight's gradient; RoPE's cos/sin come
// in the hidden states' dtype, fp32. Measured on the simulated A100
// (saved_tensors_hooks under autocast, a 2-layer Llama, full and LoRA):
// 26,920 and 17,064 B per token per layer at hidden 512, as counted here.
// The bf16 copies of the weights themselves (autocast's cache, then
// autograd's saved tensors) are the estimator's autocast_weight_copies.
// `already_kept`: the input is bf16 and kept by another op (SDPA's output).
double autocast_linear_inputs(const ActivationInputs& in, const std::vector<std::string_view>& modules,
                              double width, bool already_kept) {
  const double d = in.compute_bytes;
  int adapted = 0;
  for (auto m : modules) adapted += targeted(in, m) ? 1 : 0;
  if (in.method == Method::full)
    return already_kept ? 0 : static_cast<double>(modules.size()) * d * width;
  double bytes = adapted * d * (width + static_cast<double>(in.lora_r));
  // QLoRA's 4-bit matmul holds its input whether or not an adapter reads it.
  if (in.method == Method::qlora && !already_kept) bytes += static_cast<double>(modules.size()) * d * width;
  return bytes;
}

// Bytes a group of linears reading the same input of `width` features keeps.
// `modules` is a vector, not an initializer_list: a list picked by a ?: is a
// copy whose array dies with the expression (the LoRA q/k/v and gate/up
// groups read freed memory and counted no adapter).
double linear_inputs(const ActivationInputs& in, const std::vector<std::string_view>& modules, double width,
                     bool already_kept) {
  const double d = in.compute_bytes;
  if (in.amp) return autocast_linear_inputs(in, modules, width, already_kept);
  if (in.method == Method::full || in.method == Method::qlora) return already_kept ? 0 : d * width;
  double bytes = 0;
  int adapted = 0;
  for (auto m : modules) adapted += targeted(in, m) ? 1 : 0;
  if (adapted == 0) return 0;
  if (in.adapter_bytes == in.compute_bytes) {
    bytes += already_kept ? 0 : d * width;
  } else {
    bytes += adapted * in.adapter_bytes * width;
  }
  bytes += adapted * static_cast<double>(in.adapter_bytes * in.lora_r);
  return bytes;
}

LayerTerms llama_layer(const ModelSpec& s, const ActivationInputs& in) {
  const double d = in.compute_bytes;
  const double h = static_cast<double>(s.hidden);
  const double hq = static_cast<double>(s.q_width());
  const double hkv = static_cast<double>(s.kv_width());
  const double inter = static_cast<double>(s.intermediate);
  const double a = static_cast<double>(s.heads);
  const bool norms_train = in.method == Method::full;

  LayerTerms t;
  // Under autocast the normed output kept for the weight's gradient is fp32.
  const double norm = 4 * h + 4 + (norms_train ? (in.amp ? 4 : d) * h : 0);
  t.per_token += static_cast<double>(s.norms_per_layer) * norm;

  const bool fused = s.fused_projections;
  const std::vector<std::string_view> qkv =
      fused ? std::vector<std::string_view>{"qkv_proj"} : std::vector<std::string_view>{"q_proj", "k_proj", "v_proj"};
  const std::vector<std::string_view> gate_up =
      fused ? std::vector<std::string_view>{"gate_up_proj"} : std::vector<std::string_view>{"gate_proj", "up_proj"};
  t.per_token += linear_inputs(in, qkv, h, false);
  // The MLP's part (its norms, its linears' inputs, and below its
  // activations) is what a layer's backward frees before it reaches
  // attention.
  const double mlp_linear_inputs = linear_inputs(in, gate_up, h, false) + linear_inputs(in, {"down_proj"}, inter, false);
  const double mlp_norms = static_cast<double>(s.norms_per_layer / 2) * norm;  // counted with the others above
  t.per_token += mlp_linear_inputs;

  const AttentionKernel kernel = attention_kernel(s, in);
  if (kernel == AttentionKernel::eager) {
    t.per_token += 3 * d * hq;
    t.per_token_per_position += a * (4 + (d < 4 ? d : 0));
    t.per_token += linear_inputs(in, {"o_proj"}, hq, false);
  } else if (kernel == AttentionKernel::math) {
    // fp32 copies of q (scaled), k and v (repeated to every head) and the
    // fp32 softmax, whatever the input dtype.
    t.per_token += 3 * 4 * hq;
    t.per_token_per_position += a * 4;
    t.per_token += linear_inputs(in, {"o_proj"}, hq, false);
  } else {
    t.per_token += d * (2 * hq + 2 * hkv) + 4 * a;
    t.per_token += linear_inputs(in, {"o_proj"}, hq, true);
  }
  t.attention_per_token = t.per_token - mlp_linear_inputs - mlp_norms;
  t.per_token += 3 * d * inter;
  return t;
}

// Note [GPT-2 activations]
// Not validated by measurement: LayerNorm keeps its input and mean/rstd,
// attention as above, GELU keeps its input, dropout (p = 0.1 in the
// published configs) a one-byte mask and the dropped copy per site.
LayerTerms gpt2_layer(const ModelSpec& s, const ActivationInputs& in) {
  const double d = in.compute_bytes;
  const double h = static_cast<double>(s.hidden);
  const double inter = static_cast<double>(s.intermediate);
  const double a = static_cast<double>(s.heads);
  LayerTerms t;
  t.per_token += 2 * (d * h + 8);                           // two LayerNorms
  t.per_token += linear_inputs(in, {"c_attn"}, h, false);   // ln_1 output
  t.per_token += linear_inputs(in, {"c_proj"}, h, false);   // attention output
  t.per_token += linear_inputs(in, {"c_fc"}, h, false);     // ln_2 output
  t.per_token += linear_inputs(in, {"c_proj"}, inter, false);
  t.per_token += 2 * d * inter;                              // GELU input, its tanh
  t.per_token += 2 * (1 + d) * h;                            // residual dropouts
  if (in.attention == Attention::eager) {
    t.per_token += 3 * d * h;
    t.per_token_per_position += a * (d + 1 + d);             // probs, mask, dropped
  } else {
    t.per_token += 4 * d * h + 4 * a;
  }
  return t;
}

}  // namespace

// Note [Which kernel SDPA runs]
// torch 2.11's scaled_dot_product_attention takes, in order, the flash
// kernel (fp16/bf16, compute capability 8.0 or later, head_dim a multiple
// of 8 up to 256), the memory-efficient kernel (no grouped-query attention:
// transformers passes enable_gqa=True when num_key_value_heads < heads and
// the efficient kernel refuses it; bf16 needs 8.0) and otherwise the math
// fallback. Flash and efficient save q, k, v, the output and an fp32
// log-sum-exp; the math fallback upcasts to fp32 and keeps the s x s
// softmax like eager attention. So an fp32 GQA model (Llama-3, Mistral,
// Qwen2) or any GQA model on a T4 or V100 pays per position. Seen on the
// simulated A100 and T4 (saved_tensors_hooks: SafeSoftmaxBackward0 with
// fp32 q, k, v); cuDNN's kernel, which torch prefers from 9.0, saves what
// flash does. On CPU (compute capability 0: a run description of a model
// that is not on CUDA) torch's CPU flash kernel takes fp32 and grouped-query
// attention alike.
// Without the key/value cache (gradient checkpointing turns it off, and so
// does a script's config.use_cache=False) transformers 5 builds an
// explicit s x s causal mask and repeats the key/value heads itself rather
// than passing enable_gqa: flash takes no mask, so the efficient kernel
// runs, in fp32 too, and the math fallback is left for bf16 before 8.0.
// Seen on the simulated A100 (the SDPA call of a checkpointed fp32 GQA
// Llama: a 1 x 1 x s x s mask, 8 key/value heads of 8 after repeat_kv,
// ScaledDotProductEfficientAttentionBackward0); the estimate that took
// the math kernel there was 20% high at 1 x 1024 and 78% at 1 x 2048.
AttentionKernel attention_kernel(const ModelSpec& s, const ActivationInputs& in) {
  if (in.attention == Attention::eager) return AttentionKernel::eager;
  if (in.attention == Attention::flash) return AttentionKernel::flash_or_efficient;
  if (in.compute_capability == 0) return AttentionKernel::flash_or_efficient;  // CPU: torch's flash kernel for CPU
  const bool half = in.compute_bytes == 2;
  const bool ampere = in.compute_capability >= 80;
  const bool head_ok = s.head_dim % 8 == 0 && s.head_dim <= 256;
  if (half && ampere && head_ok) return AttentionKernel::flash_or_efficient;
  const bool gqa = s.kv_heads < s.heads && !in.gradient_checkpointing;  // repeated heads without the cache
  const bool bf16 = half && in.bf16;
  if (!gqa && !(bf16 && !ampere)) return AttentionKernel::flash_or_efficient;
  return AttentionKernel::math;
}

double ActivationModel::saved_bytes(std::int64_t batch, std::int64_t seq) const {
  const double tokens = static_cast<double>(batch) * static_cast<double>(seq);
  return static_cast<double>(layers) *
             (tokens * per_layer_per_token + tokens * static_cast<double>(seq) * per_layer_per_token_per_position) +
         tokens * per_token + static_cast<double>(seq) * per_position;
}

double ActivationModel::recompute_bytes(std::int64_t batch, std::int64_t seq) const {
  const double tokens = static_cast<double>(batch) * static_cast<double>(seq);
  return tokens * recompute_per_token + tokens * static_cast<double>(seq) * recompute_per_token_per_position;
}

double ActivationModel::recompute_attention_bytes(std::int64_t batch, std::int64_t seq) const {
  const double tokens = static_cast<double>(batch) * static_cast<double>(seq);
  return tokens * recompute_attention_per_token +
         tokens * static_cast<double>(seq) * recompute_per_token_per_position;
}

double ActivationModel::logits_bytes(std::int64_t batch, std::int64_t seq) const {
  return static_cast<double>(batch) * static_cast<double>(seq) * logits_per_token;
}

ActivationModel activation_model(const ModelSpec& s, const ActivationInputs& in) {
  const double d = in.compute_bytes;
  const double h = static_cast<double>(s.hidden);
  const double vocab = static_cast<double>(s.vocab);
  const bool gpt2 = s.family == Family::gpt2;
  const LayerTerms layer = gpt2 ? gpt2_layer(s, in) : llama_layer(s, in);

  ActivationModel m;
  m.layers = s.layers;
  if (in.gradient_checkpointing) {
    // Non-reentrant checkpointing keeps each layer's input hidden states.
    m.per_layer_per_token = d * h;
    m.recompute_per_token = layer.per_token;
    m.recompute_per_token_per_position = layer.per_token_per_position;
    m.recompute_attention_per_token = gpt2 ? layer.per_token : layer.attention_per_token;
  } else {
    m.mlp_per_token = gpt2 ? 0 : layer.per_token - layer.attention_per_token;
    m.per_layer_per_token = layer.per_token;
    m.per_layer_per_token_per_position = layer.per_token_per_position;
  }
  // Final norm and lm_head input (lm_head trains only in a full fine-tune).
  const bool full = in.method == Method::full;
  m.per_token += gpt2 ? d * h + 8 : 4 * h + 4 + (full ? (in.amp ? 4 : d) * h : 0);
  if (full) m.per_token += d * h;
  m.per_token += 4 * vocab;  // fp32 log-softmax kept by cross-entropy
  m.per_token += 2 * 8;      // int64 input ids (embedding) and shifted labels (nll)
  m.per_position = gpt2 ? 0 : 2 * (in.amp ? 4 : d) * static_cast<double>(s.head_dim);  // cos and sin
  m.logits_per_token = d * vocab;
  return m;
}

}  // namespace oomguard::guard
