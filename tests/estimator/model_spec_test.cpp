#include <gtest/gtest.h>

#include "oomguard/error.hpp"
#include "oomguard/guard/model_spec.hpp"
#include "oomguard/guard/model_table.hpp"

namespace og = oomguard::guard;

namespace {

// Llama-like count from the architecture: attention, gated MLP, norms, and
// embeddings (lm_head separate unless tied).
std::int64_t llama_params(std::int64_t h, std::int64_t inter, std::int64_t layers, std::int64_t heads,
                          std::int64_t kv_heads, std::int64_t vocab, bool tied, std::int64_t head_dim = 0,
                          std::int64_t norms = 2, bool qkv_bias = false) {
  if (head_dim == 0) head_dim = h / heads;
  const std::int64_t hq = heads * head_dim, hkv = kv_heads * head_dim;
  std::int64_t layer = h * hq + 2 * h * hkv + hq * h + 3 * h * inter + norms * h;
  if (qkv_bias) layer += hq + 2 * hkv;
  return layers * layer + vocab * h * (tied ? 1 : 2) + h;
}

}  // namespace

TEST(ModelSpec, MistralCountFollowsTheArchitecture) {
  const auto spec = og::parse_model_spec(og::builtin_model_config("mistral-7b-v0.1"));
  EXPECT_EQ(spec.hidden, 4096);
  EXPECT_EQ(spec.kv_width(), 1024);
  EXPECT_FALSE(spec.tied_embeddings);
  EXPECT_EQ(og::parameter_count(spec), llama_params(4096, 14336, 32, 32, 8, 32000, false));
  // The per-layer count of the reference notes, 2h^2 + 2h*h_kv + 3hI + 2h.
  EXPECT_EQ(og::parameter_count(spec), 32 * (2 * 4096LL * 4096 + 2 * 4096LL * 1024 + 3 * 4096LL * 14336 + 2 * 4096) +
                                           2 * 32000LL * 4096 + 4096);
}

TEST(ModelSpec, FamiliesDifferWhereTheyShould) {
  const auto qwen = og::parse_model_spec(og::builtin_model_config("qwen2.5-7b"));
  EXPECT_EQ(og::parameter_count(qwen), llama_params(3584, 18944, 28, 28, 4, 152064, false, 0, 2, true));
  const auto gemma = og::parse_model_spec(og::builtin_model_config("gemma-2-9b"));
  EXPECT_TRUE(gemma.tied_embeddings);
  EXPECT_EQ(gemma.q_width(), 16 * 256);  // wider than hidden 3584
  EXPECT_EQ(og::parameter_count(gemma), llama_params(3584, 14336, 42, 16, 8, 256000, true, 256, 4));
  const auto gpt2 = og::parse_model_spec(og::builtin_model_config("gpt2"));
  const std::int64_t h = 768, layer = 2 * 2 * h + (3 * h * h + 3 * h) + (h * h + h) + (4 * h * h + 4 * h) + (4 * h * h + h);
  EXPECT_EQ(og::parameter_count(gpt2), 12 * layer + 50257 * h + 1024 * h + 2 * h);
}

TEST(ModelSpec, HubNamesAndCaseAreAccepted) {
  EXPECT_NO_THROW(og::builtin_model_config("mistralai/Mistral-7B-v0.1"));
  EXPECT_NO_THROW(og::builtin_model_config("LLAMA-3-8B"));
}

// Note [Model names users type]
TEST(ModelSpec, CheckpointNamesResolveToTheirArchitecture) {
  const std::pair<const char*, const char*> cases[] = {
      {"mistral-7b", "mistral-7b-v0.1"},
      {"mistralai/Mistral-7B-Instruct-v0.2", "mistral-7b-v0.1"},
      {"meta-llama/Llama-2-7b-hf", "llama-2-7b"},
      {"meta-llama/Llama-2-7b-chat-hf", "llama-2-7b"},
      {"meta-llama/Meta-Llama-3-8B-Instruct", "llama-3-8b"},
      {"meta-llama/Llama-3.1-8B", "llama-3-8b"},
      {"Qwen/Qwen2.5-7B-Instruct", "qwen2.5-7b"},
      {"google/gemma-2-9b-it", "gemma-2-9b"},
      {"microsoft/Phi-3-mini-4k-instruct", "phi-3-mini"},
      {"LLAMA-3-8B", "llama-3-8b"},
  };
  for (const auto& [typed, builtin] : cases) {
    const auto resolved = og::resolve_model_name(typed);
    ASSERT_TRUE(resolved.has_value()) << typed;
    EXPECT_EQ(*resolved, builtin) << typed;
  }
  // Not the same shapes: Mistral v0.3's vocabulary is 32,768.
  EXPECT_FALSE(og::resolve_model_name("mistralai/Mistral-7B-v0.3").has_value());
  EXPECT_FALSE(og::resolve_model_name("instruct").has_value());
}

// Note [Model types that are not built in]
TEST(ModelSpec, ALlamaLikeTypeNotBuiltInIsReadWithItsAssumptions) {
  const nlohmann::json qwen3 = {{"model_type", "qwen3"},          {"hidden_size", 4096},
                                {"intermediate_size", 12288},     {"num_hidden_layers", 36},
                                {"num_attention_heads", 32},      {"num_key_value_heads", 8},
                                {"head_dim", 128},                {"vocab_size", 151936},
                                {"tie_word_embeddings", false}};
  const auto spec = og::parse_model_spec(qwen3);
  EXPECT_EQ(spec.model_type, "qwen3");
  EXPECT_EQ(spec.family, og::Family::llama_like);
  EXPECT_EQ(spec.norms_per_layer, 2);
  EXPECT_FALSE(spec.qkv_bias);
  ASSERT_EQ(spec.assumptions.size(), 1u);
  EXPECT_NE(spec.assumptions[0].find("\"qwen3\" is not built in"), std::string::npos);
  // Qwen3-8B's published count, less its per-head q/k norms (2 x 128 per layer).
  EXPECT_EQ(og::parameter_count(spec), 8190735360 - 36 * 2 * 128);

  // A multimodal config: the language model from text_config, gemma's conventions.
  const nlohmann::json gemma3 = {{"model_type", "gemma3"},
                                 {"text_config",
                                  {{"model_type", "gemma3_text"}, {"hidden_size", 2560}, {"intermediate_size", 10240},
                                   {"num_hidden_layers", 34}, {"num_attention_heads", 8}, {"num_key_value_heads", 4},
                                   {"head_dim", 256}, {"vocab_size", 262208}}},
                                 {"vision_config", {{"hidden_size", 1152}}}};
  const auto g = og::parse_model_spec(gemma3);
  EXPECT_EQ(g.norms_per_layer, 4);
  EXPECT_TRUE(g.tied_embeddings);
  EXPECT_GE(g.assumptions.size(), 3u);  // text_config, the layout, the tying default
}

TEST(ModelSpec, WhatIsNotLlamaLikeIsRefusedWithTheReason) {
  auto expect_refused = [](nlohmann::json config, const char* reason) {
    try {
      og::parse_model_spec(config);
      FAIL() << config.dump();
    } catch (const oomguard::config_error& e) {
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("accepted: llama"), std::string::npos) << e.what();
    }
  };
  auto mixtral = og::builtin_model_config("mistral-7b-v0.1");
  mixtral["model_type"] = "mixtral";
  mixtral["num_local_experts"] = 8;
  expect_refused(mixtral, "mixture of experts");
  auto neox = og::builtin_model_config("llama-2-7b");
  neox["model_type"] = "gpt_neox";
  expect_refused(neox, "not llama-like");
  expect_refused({{"model_type", "bert_like"}, {"hidden_size", 8}}, "no \"intermediate_size\"");
}

TEST(ModelSpec, UnknownModelListsTheBuiltIns) {
  try {
    og::builtin_model_config("mistral-8b");
    FAIL() << "expected config_error";
  } catch (const oomguard::config_error& e) {
    EXPECT_NE(std::string(e.what()).find("mistral-8b"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("llama-3-8b"), std::string::npos);
  }
}

TEST(ModelSpec, BadConfigsNameTheKey) {
  auto config = og::builtin_model_config("llama-2-7b");
  config.erase("intermediate_size");
  EXPECT_THROW(
      {
        try {
          og::parse_model_spec(config);
        } catch (const oomguard::config_error& e) {
          EXPECT_NE(std::string(e.what()).find("intermediate_size"), std::string::npos);
          throw;
        }
      },
      oomguard::config_error);
  auto negative = og::builtin_model_config("llama-2-7b");
  negative["num_hidden_layers"] = -3;
  EXPECT_THROW(og::parse_model_spec(negative), oomguard::config_error);
  auto mamba = og::builtin_model_config("llama-2-7b");
  mamba["model_type"] = "mamba";
  try {
    og::parse_model_spec(mamba);
    FAIL();
  } catch (const oomguard::config_error& e) {
    EXPECT_NE(std::string(e.what()).find("accepted: llama"), std::string::npos);
  }
  auto gqa = og::builtin_model_config("llama-2-7b");
  gqa["num_key_value_heads"] = 5;
  EXPECT_THROW(og::parse_model_spec(gqa), oomguard::config_error);
}

TEST(ModelSpec, EveryBuiltInParses) {
  for (const auto& name : og::builtin_model_names()) {
    const auto spec = og::parse_model_spec(og::builtin_model_config(name));
    EXPECT_GT(og::parameter_count(spec), 0) << name;
  }
  EXPECT_GE(og::builtin_model_names().size(), 12u);
}
