// The architecture of a decoder-only language model, read from a Hugging Face
// config.json, and the parameter tensors it implies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace oomguard::guard {

// How a family lays out its blocks. Llama-like covers llama, mistral, qwen2,
// gemma/gemma2 and phi3 (fused qkv/gate_up, same counts); gpt2 has LayerNorm
// with bias, biased projections, a plain GELU MLP and learned positions.
enum class Family : std::uint8_t { llama_like, gpt2 };

struct ModelSpec {
  std::string model_type;      // config.json "model_type": "llama", "gpt2", ...
  Family family = Family::llama_like;
  std::int64_t hidden = 0;
  std::int64_t intermediate = 0;
  std::int64_t layers = 0;
  std::int64_t heads = 0;
  std::int64_t kv_heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t vocab = 0;
  std::int64_t max_positions = 0;
  bool tied_embeddings = false;
  bool qkv_bias = false;        // qwen2; llama with attention_bias
  bool o_bias = false;          // llama with attention_bias
  bool mlp_bias = false;        // llama with mlp_bias
  bool fused_projections = false;  // phi3: qkv_proj, gate_up_proj
  std::int64_t norms_per_layer = 2;  // gemma2 has four
  // What was guessed reading the config (a model_type not built in):
  // Note [Model types that are not built in] in model_spec.cpp.
  std::vector<std::string> assumptions;

  std::int64_t q_width() const { return heads * head_dim; }
  std::int64_t kv_width() const { return kv_heads * head_dim; }
};

// Accepted values of config.json "model_type".
const std::vector<std::string>& supported_model_types();

// Parse a config.json object. A model_type not built in is read as
// llama-like with its guesses in spec.assumptions, unless it is plainly not
// (a mixture of experts, a state-space model, an encoder-decoder). Throws
// config_error naming the missing or bad key, or why the model_type is
// refused and the accepted ones.
ModelSpec parse_model_spec(const nlohmann::json& config);

// Where a tensor sits: inside each decoder layer, or once per model.
enum class TensorScope : std::uint8_t { per_layer, per_model };

// One parameter tensor (a bias is its own tensor, cols == 1). `module` is the
// leaf module name LoRA targets match ("q_proj", "c_attn", "embed_tokens").
struct ParamTensor {
  std::string module;
  std::int64_t rows = 0;  // output features (or vocab for embeddings)
  std::int64_t cols = 0;  // input features; 1 for vectors
  TensorScope scope = TensorScope::per_layer;
  bool is_linear_weight = false;  // a weight LoRA/QLoRA can adapt or quantize
  bool is_bias = false;
  std::int64_t numel() const { return rows * cols; }
};

// Every distinct parameter tensor; per-layer ones appear once (multiply by
// spec.layers). Tied lm_head is absent, as in model.parameters().
std::vector<ParamTensor> parameter_tensors(const ModelSpec& spec);

std::int64_t total(const ModelSpec& spec, const std::vector<ParamTensor>& tensors);
std::int64_t parameter_count(const ModelSpec& spec);

nlohmann::json to_json(const ModelSpec& spec);

}  // namespace oomguard::guard
