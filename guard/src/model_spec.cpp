#include "oomguard/guard/model_spec.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "oomguard/error.hpp"

namespace oomguard::guard {
namespace {

using nlohmann::json;

// Read a positive integer. `keys` lists the aliases a family uses, first wins.
std::int64_t require_positive(const json& config, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    auto it = config.find(key);
    if (it == config.end() || it->is_null()) continue;
    if (!it->is_number_integer() || it->get<std::int64_t>() <= 0)
      throw config_error(fmt::format("config.json: \"{}\" must be a positive integer, got {}", key,
                                     it->dump()));
    return it->get<std::int64_t>();
  }
  throw config_error(fmt::format("config.json: missing \"{}\"", *keys.begin()));
}

std::int64_t optional_positive(const json& config, const char* key, std::int64_t fallback) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return fallback;
  return require_positive(config, {key});
}

bool optional_bool(const json& config, const char* key, bool fallback) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_boolean())
    throw config_error(fmt::format("config.json: \"{}\" must be true or false, got {}", key, it->dump()));
  return it->get<bool>();
}

ModelSpec parse_gpt2(const json& config) {
  ModelSpec spec;
  spec.family = Family::gpt2;
  spec.hidden = require_positive(config, {"n_embd", "hidden_size"});
  spec.layers = require_positive(config, {"n_layer", "num_hidden_layers"});
  spec.heads = require_positive(config, {"n_head", "num_attention_heads"});
  spec.kv_heads = spec.heads;
  spec.intermediate = optional_positive(config, "n_inner", 4 * spec.hidden);
  spec.vocab = require_positive(config, {"vocab_size"});
  spec.max_positions = require_positive(config, {"n_positions", "max_position_embeddings"});
  spec.tied_embeddings = optional_bool(config, "tie_word_embeddings", true);
  spec.qkv_bias = spec.o_bias = spec.mlp_bias = true;
  return spec;
}

bool is_builtin_type(const std::string& type) {
  const auto& types = supported_model_types();
  return std::find(types.begin(), types.end(), type) != types.end();
}

ModelSpec parse_llama_like(const json& config, const std::string& type) {
  ModelSpec spec;
  spec.hidden = require_positive(config, {"hidden_size"});
  spec.intermediate = require_positive(config, {"intermediate_size"});
  spec.layers = require_positive(config, {"num_hidden_layers"});
  spec.heads = require_positive(config, {"num_attention_heads"});
  spec.kv_heads = optional_positive(config, "num_key_value_heads", spec.heads);
  spec.vocab = require_positive(config, {"vocab_size"});
  spec.max_positions = optional_positive(config, "max_position_embeddings", 0);
  // Gemma conventions (tied embeddings; four norms from gemma2 on) for
  // gemma types not built in as well.
  const bool gemma = type.starts_with("gemma");
  // Each family's config class default, as in transformers.
  spec.tied_embeddings = optional_bool(config, "tie_word_embeddings", gemma);
  if (type == "qwen2") {
    spec.qkv_bias = true;
  } else if (type == "llama") {
    spec.qkv_bias = spec.o_bias = optional_bool(config, "attention_bias", false);
    spec.mlp_bias = optional_bool(config, "mlp_bias", false);
  }
  spec.fused_projections = type == "phi3";
  spec.norms_per_layer = gemma && type != "gemma" ? 4 : 2;
  if (!is_builtin_type(type)) {  // biases as Llama's config names them
    spec.qkv_bias = spec.o_bias = optional_bool(config, "attention_bias", false);
    spec.mlp_bias = optional_bool(config, "mlp_bias", false);
  }
  return spec;
}

}  // namespace

const std::vector<std::string>& supported_model_types() {
  static const std::vector<std::string> types = {"llama", "mistral", "qwen2", "gemma", "gemma2",
                                                 "phi3", "gpt2"};
  return types;
}

namespace {

// Note [Model types that are not built in]
// Most new decoder-only models are llama-like (qwen3, gemma3, olmo2,
// granite, ...): token embedding, per layer two or four RMSNorms, q/k/v/o
// projections and a gated MLP, then a norm and lm_head. Such a config is
// read as llama-like and every guess is said, so a user can see what the
// estimate assumed. What is not llama-like is refused with a reason: a
// mixture of experts (its MLP memory is experts x the dense one and its
// routing transients are not modelled), a state-space or recurrent model
// (no attention, no per-position keys), an encoder or encoder-decoder.
// A multimodal config (gemma3, qwen2_vl) keeps its language model in
// "text_config": that is what is read, and the vision tower is left out.
std::string refusal(const json& config, const std::string& type) {
  static const std::vector<std::string> state_space = {"mamba", "mamba2", "falcon_mamba", "jamba", "rwkv",
                                                       "recurrent_gemma", "xlstm"};
  if (std::find(state_space.begin(), state_space.end(), type) != state_space.end())
    return "a state-space or recurrent model, not a transformer decoder";
  static const std::vector<std::string> other_layouts = {"gpt_neox", "gptj", "gpt_bigcode", "bloom", "falcon",
                                                         "opt", "mpt", "codegen", "bert", "roberta", "t5", "bart",
                                                         "whisper"};
  if (std::find(other_layouts.begin(), other_layouts.end(), type) != other_layouts.end())
    return "its layers are not llama-like (LayerNorms with biases, fused or ungated projections)";
  for (const char* key : {"num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts"})
    if (config.contains(key) && !config[key].is_null() && !(config[key].is_number() && config[key].get<double>() <= 1))
      return fmt::format("a mixture of experts (\"{}\"), whose expert memory is not modelled", key);
  if (optional_bool(config, "is_encoder_decoder", false)) return "an encoder-decoder model";
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"})
    if (!config.contains(key))
      return fmt::format("not llama-like: its config has no \"{}\"", key);
  return "";
}

}  // namespace

ModelSpec parse_model_spec(const json& config) {
  if (!config.is_object()) throw config_error("config.json: expected a JSON object");
  auto it = config.find("model_type");
  if (it == config.end() || !it->is_string())
    throw config_error(fmt::format("config.json: missing \"model_type\"; accepted: {}, or another llama-like decoder",
                                   fmt::join(supported_model_types(), ", ")));
  const std::string type = it->get<std::string>();
  const auto& types = supported_model_types();
  if (!is_builtin_type(type)) {
    // A multimodal wrapper: the language model is in text_config.
    if (!config.contains("hidden_size") && config.contains("text_config") && config["text_config"].is_object()) {
      json text = config["text_config"];
      if (!text.contains("model_type")) text["model_type"] = type + "_text";
      ModelSpec spec = parse_model_spec(text);
      spec.assumptions.insert(spec.assumptions.begin(),
                              fmt::format("model_type \"{}\": its language model read from \"text_config\"; the "
                                          "vision tower and projector are not counted",
                                          type));
      return spec;
    }
    if (const auto why = refusal(config, type); !why.empty())
      throw config_error(fmt::format("config.json: model_type \"{}\" is not supported: {}; accepted: {}, or another "
                                     "llama-like decoder",
                                     type, why, fmt::join(types, ", ")));
  }
  ModelSpec spec = type == "gpt2" ? parse_gpt2(config) : parse_llama_like(config, type);
  spec.model_type = type;
  if (!is_builtin_type(type)) {
    const bool gemma = type.starts_with("gemma");
    spec.assumptions.push_back(fmt::format(
        "model_type \"{}\" is not built in; read as a llama-like decoder: {} RMSNorms, q/k/v/o and gate/up/down "
        "projections per layer, biases only where attention_bias/mlp_bias say, embeddings {}; per-head q/k norms "
        "and other small tensors are not counted",
        type, spec.norms_per_layer, spec.tied_embeddings ? "tied" : "untied"));
    if (!config.contains("tie_word_embeddings"))
      spec.assumptions.push_back(fmt::format("no \"tie_word_embeddings\": taken as {} (the {} default)",
                                             gemma ? "true" : "false", gemma ? "Gemma" : "Llama"));
  }
  if (spec.hidden % spec.heads != 0 && !config.contains("head_dim"))
    throw config_error(fmt::format("config.json: hidden size {} is not a multiple of {} heads and no head_dim is given",
                                   spec.hidden, spec.heads));
  spec.head_dim = optional_positive(config, "head_dim", spec.hidden / spec.heads);
  if (spec.heads % spec.kv_heads != 0)
    throw config_error(fmt::format("config.json: {} attention heads are not a multiple of {} key/value heads",
                                   spec.heads, spec.kv_heads));
  return spec;
}

std::vector<ParamTensor> parameter_tensors(const ModelSpec& s) {
  std::vector<ParamTensor> t;
  auto linear = [&](std::string module, std::int64_t out, std::int64_t in, bool bias) {
    t.push_back({module, out, in, TensorScope::per_layer, true, false});
    if (bias) t.push_back({std::move(module), out, 1, TensorScope::per_layer, false, true});
  };
  auto vector = [&](std::string module, std::int64_t n, TensorScope scope, bool bias) {
    t.push_back({module, n, 1, scope, false, false});
    if (bias) t.push_back({std::move(module), n, 1, scope, false, true});
  };
  const std::int64_t h = s.hidden;
  if (s.family == Family::gpt2) {
    t.push_back({"wte", s.vocab, h, TensorScope::per_model, false, false});
    t.push_back({"wpe", s.max_positions, h, TensorScope::per_model, false, false});
    vector("ln_1", h, TensorScope::per_layer, true);
    linear("c_attn", 3 * h, h, true);
    linear("c_proj", h, h, true);
    vector("ln_2", h, TensorScope::per_layer, true);
    linear("c_fc", s.intermediate, h, true);
    linear("c_proj", h, s.intermediate, true);
    vector("ln_f", h, TensorScope::per_model, true);
    if (!s.tied_embeddings) t.push_back({"lm_head", s.vocab, h, TensorScope::per_model, false, false});
    return t;
  }
  t.push_back({"embed_tokens", s.vocab, h, TensorScope::per_model, false, false});
  for (std::int64_t i = 0; i < s.norms_per_layer; ++i) vector("norm", h, TensorScope::per_layer, false);
  if (s.fused_projections) {
    linear("qkv_proj", s.q_width() + 2 * s.kv_width(), h, s.qkv_bias);
  } else {
    linear("q_proj", s.q_width(), h, s.qkv_bias);
    linear("k_proj", s.kv_width(), h, s.qkv_bias);
    linear("v_proj", s.kv_width(), h, s.qkv_bias);
  }
  linear("o_proj", h, s.q_width(), s.o_bias);
  if (s.fused_projections) {
    linear("gate_up_proj", 2 * s.intermediate, h, s.mlp_bias);
  } else {
    linear("gate_proj", s.intermediate, h, s.mlp_bias);
    linear("up_proj", s.intermediate, h, s.mlp_bias);
  }
  linear("down_proj", h, s.intermediate, s.mlp_bias);
  vector("norm", h, TensorScope::per_model, false);
  if (!s.tied_embeddings) t.push_back({"lm_head", s.vocab, h, TensorScope::per_model, false, false});
  return t;
}

std::int64_t total(const ModelSpec& spec, const std::vector<ParamTensor>& tensors) {
  std::int64_t n = 0;
  for (const auto& p : tensors) n += p.numel() * (p.scope == TensorScope::per_layer ? spec.layers : 1);
  return n;
}

std::int64_t parameter_count(const ModelSpec& spec) { return total(spec, parameter_tensors(spec)); }

nlohmann::json to_json(const ModelSpec& s) {
  return {{"model_type", s.model_type},
          {"hidden_size", s.hidden},
          {"intermediate_size", s.intermediate},
          {"num_hidden_layers", s.layers},
          {"num_attention_heads", s.heads},
          {"num_key_value_heads", s.kv_heads},
          {"head_dim", s.head_dim},
          {"vocab_size", s.vocab},
          {"tie_word_embeddings", s.tied_embeddings}};
}

}  // namespace oomguard::guard
