#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "oomguard/error.hpp"
#include "oomguard/guard/estimator.hpp"
#include "oomguard/guard/fit_search.hpp"
#include "oomguard/guard/gpu_table.hpp"
#include "oomguard/guard/model_table.hpp"

namespace og = oomguard::guard;

namespace {

og::ModelSpec mistral() { return og::parse_model_spec(og::builtin_model_config("mistral-7b-v0.1")); }

// Mistral-7B-v0.1 from the architecture, independent of parameter_tensors().
constexpr double kH = 4096, kKv = 1024, kI = 14336, kL = 32, kV = 32000, kHeads = 32, kHeadDim = 128;
constexpr double kN = kL * (2 * kH * kH + 2 * kH * kKv + 3 * kH * kI + 2 * kH) + 2 * kV * kH + kH;

og::EstimateOptions reference(og::DType dtype, bool mixed) {
  og::EstimateOptions o;  // batch 1, seq 1024, AdamW, full, sdpa: the defaults
  o.setup.dtype = dtype;
  o.setup.mixed_precision = mixed;
  o.setup.optimizer_impl = og::OptimizerImpl::foreach;  // the seed article's plain torch loop
  o.gpu_memory_bytes = og::find_gpu("A100-80GB").memory_bytes;
  return o;
}

// SDPA, full fine-tune, per token per layer: two norms (fp32 upcast, rsqrt,
// normed), the inputs of qkv, gate/up and down, q/k/v and the attention
// output, log-sum-exp, and the gated MLP's three I-wide tensors.
double sdpa_layer_bytes_per_token(double d) {
  const double norms = 2 * (4 * kH + 4 + d * kH);
  const double linear_inputs = d * kH + d * kH + d * kI;
  const double attention = d * (kH + 2 * kKv) + d * kH + 4 * kHeads;
  const double mlp = 3 * d * kI;
  return norms + linear_inputs + attention + mlp;
}

}  // namespace

struct PrecisionCase {
  og::DType dtype;
  bool mixed;
  double weight_bytes, grad_bytes, master_bytes, state_bytes;
};

class ReferenceCase : public ::testing::TestWithParam<PrecisionCase> {};

TEST_P(ReferenceCase, ModelStatesFollowTheDtypeRules) {
  const auto p = GetParam();
  const auto e = og::estimate(mistral(), reference(p.dtype, p.mixed));
  EXPECT_EQ(e.parameters, static_cast<std::int64_t>(kN));
  EXPECT_DOUBLE_EQ(e.component("weights"), p.weight_bytes * kN);
  EXPECT_DOUBLE_EQ(e.component("gradients"), p.grad_bytes * kN);
  EXPECT_DOUBLE_EQ(e.component("master_weights"), p.master_bytes * kN);
  EXPECT_DOUBLE_EQ(e.component("optimizer_states"), 2 * p.state_bytes * kN);
  // foreach AdamW: one sqrt(exp_avg_sq) temporary as large as the states' dtype.
  EXPECT_DOUBLE_EQ(e.component("optimizer_step_transient"), p.state_bytes * kN);

  const double d = p.weight_bytes;
  const double tokens = 1024;
  const double saved = kL * tokens * sdpa_layer_bytes_per_token(d) +
                       tokens * ((4 * kH + 4 + 2 * d * kH) + 4 * kV + 16) + 1024 * 2 * d * kHeadDim;
  // In fp32 Mistral's grouped-query SDPA runs the math kernel (Note [Which
  // kernel SDPA runs], SdpaOnAGroupedQueryModelInFp32PaysPerPosition).
  if (d == 2) {
    EXPECT_NEAR(e.component("activations_saved"), saved, 1e-6 * saved);
  }
  EXPECT_DOUBLE_EQ(e.component("logits"), tokens * kV * d);

  // Batch 1 without accumulation: the optimizer step is the peak.
  EXPECT_EQ(e.peak().phase, "optimizer_step");
  const double step = (p.weight_bytes + p.master_bytes + 2 * p.state_bytes + p.grad_bytes + p.state_bytes) * kN +
                      2.0 * static_cast<double>(og::cublas_workspace_bytes(80));
  EXPECT_NEAR(e.peak().tensor_bytes(), step, 1.0);
  EXPECT_NEAR(e.peak_bytes, step * 1.05 + 512.0 * 1024 * 1024, 1.0);
}

INSTANTIATE_TEST_SUITE_P(Precisions, ReferenceCase,
                         ::testing::Values(PrecisionCase{og::DType::bf16, false, 2, 2, 0, 2},
                                           PrecisionCase{og::DType::fp16, false, 2, 2, 0, 2},
                                           PrecisionCase{og::DType::fp32, false, 4, 4, 0, 4},
                                           PrecisionCase{og::DType::bf16, true, 2, 2, 4, 4}));

TEST(Estimator, ReferenceCaseFitsOnlyInPureBf16) {
  EXPECT_TRUE(*og::estimate(mistral(), reference(og::DType::bf16, false)).fits);
  EXPECT_FALSE(*og::estimate(mistral(), reference(og::DType::bf16, true)).fits);
  EXPECT_FALSE(*og::estimate(mistral(), reference(og::DType::fp32, false)).fits);
}

TEST(Estimator, NaiveRuleMatchesTheArticle) {
  const auto naive = og::naive_estimate(mistral(), reference(og::DType::bf16, false).setup);
  EXPECT_DOUBLE_EQ(naive.activations, 1.0 * 1024 * 4096 * 32 * 2);
  EXPECT_DOUBLE_EQ(naive.weights + naive.optimizer, 10 * kN);
}

TEST(Estimator, EagerAttentionAddsAQuadraticTerm) {
  auto o = reference(og::DType::bf16, false);
  o.setup.attention = og::Attention::eager;
  const auto at = [&](std::int64_t seq) {
    o.setup.seq_len = seq;
    return og::estimate(mistral(), o).activation;
  };
  const auto model = at(1024);
  // fp32 softmax kept, plus its bf16 cast kept by the second matmul.
  EXPECT_DOUBLE_EQ(model.per_layer_per_token_per_position, kHeads * (4 + 2));
  const double grow = at(2048).saved_bytes(1, 2048) - 2 * at(1024).saved_bytes(1, 1024);
  EXPECT_NEAR(grow, kL * kHeads * 6 * (2048.0 * 2048 - 2 * 1024.0 * 1024), 1e-6 * grow);
  o.setup.attention = og::Attention::flash;
  EXPECT_EQ(og::estimate(mistral(), o).activation.per_layer_per_token_per_position, 0);
}

TEST(Estimator, CheckpointingKeepsLayerInputsAndOneLayer) {
  auto o = reference(og::DType::bf16, false);
  const auto plain = og::estimate(mistral(), o).activation;
  o.setup.gradient_checkpointing = true;
  const auto ckpt = og::estimate(mistral(), o);
  EXPECT_DOUBLE_EQ(ckpt.activation.per_layer_per_token, 2 * kH);
  EXPECT_DOUBLE_EQ(ckpt.activation.recompute_per_token, plain.per_layer_per_token);
  EXPECT_DOUBLE_EQ(ckpt.component("checkpoint_recompute"), 1024 * plain.per_layer_per_token);
}

TEST(Estimator, LoraTrainsOnlyAdapters) {
  auto o = reference(og::DType::bf16, false);
  o.setup.method = og::Method::lora;
  o.setup.lora_r = 16;
  o.setup.lora_targets = {"q_proj", "v_proj"};
  const auto e = og::estimate(mistral(), o);
  const double adapter_params = kL * 16 * ((kH + kH) + (kH + kKv));
  EXPECT_EQ(e.trainable_parameters, static_cast<std::int64_t>(adapter_params));
  EXPECT_DOUBLE_EQ(e.component("adapters"), 4 * adapter_params);  // fp32 adapters
  EXPECT_DOUBLE_EQ(e.component("gradients"), 4 * adapter_params);
  EXPECT_DOUBLE_EQ(e.component("optimizer_states"), 8 * adapter_params);
  EXPECT_DOUBLE_EQ(e.component("weights"), 2 * kN);
  o.setup.method = og::Method::qlora;
  const auto q = og::estimate(mistral(), o);
  const double linear = kL * (2 * kH * kH + 2 * kH * kKv + 3 * kH * kI);
  EXPECT_NEAR(q.component("weights"), (kN - linear) * 2 + linear * (0.5 + 1.0 / 64 + 4.0 / (64 * 256)), 1.0);
}

TEST(Estimator, LoraTargetsMustExist) {
  EXPECT_THROW(og::resolve_lora_targets(mistral(), {"qkv_proj"}), oomguard::config_error);
  EXPECT_EQ(og::resolve_lora_targets(mistral(), {"all-linear"}).size(), 7u);
}

TEST(Estimator, ShardingDividesWhatItShards) {
  auto o = reference(og::DType::bf16, false);
  const auto single = og::estimate(mistral(), o);
  o.setup.world_size = 8;
  o.setup.sharding = og::Sharding::zero2;
  const auto z2 = og::estimate(mistral(), o);
  EXPECT_DOUBLE_EQ(z2.component("optimizer_states"), single.component("optimizer_states") / 8);
  EXPECT_DOUBLE_EQ(z2.component("gradients"), single.component("gradients") / 8);
  EXPECT_DOUBLE_EQ(z2.component("weights"), single.component("weights"));
  o.setup.sharding = og::Sharding::zero3;
  EXPECT_DOUBLE_EQ(og::estimate(mistral(), o).component("weights"), single.component("weights") / 8);
}

TEST(Estimator, InconsistentSetupsAreRejected) {
  auto o = reference(og::DType::fp32, true);
  EXPECT_THROW(og::estimate(mistral(), o), oomguard::config_error);
  o = reference(og::DType::bf16, false);
  o.setup.batch_size = 0;
  EXPECT_THROW(og::estimate(mistral(), o), oomguard::config_error);
}

TEST(FitSearch, EveryCandidateFitsAndKeepsTheEffectiveBatch) {
  auto o = reference(og::DType::bf16, true);  // does not fit as given
  o.setup.batch_size = 8;
  o.setup.grad_accum = 2;
  const auto fits = og::fit_search(mistral(), o, 1000);
  ASSERT_FALSE(fits.empty());
  for (std::size_t i = 0; i < fits.size(); ++i) {
    EXPECT_TRUE(*fits[i].estimate.fits);
    EXPECT_EQ(fits[i].setup.batch_size * fits[i].setup.grad_accum, 16);
    EXPECT_FALSE(fits[i].changes.empty());
    if (i > 0) {
      EXPECT_LE(fits[i].relative_speed, fits[i - 1].relative_speed);  // fastest first
    }
  }
  o.gpu_memory_bytes = 0;
  EXPECT_THROW(og::fit_search(mistral(), o), oomguard::config_error);
}

// Note [Which fitting configurations are shown]
TEST(FitSearch, NoRowIsBeatenByAnotherThatGivesUpNoMore) {
  auto o = reference(og::DType::bf16, true);
  o.setup.batch_size = 8;
  o.setup.grad_accum = 2;
  const auto fits = og::fit_search(mistral(), o, 1000);
  auto subset = [](const std::vector<std::string>& small, const std::vector<std::string>& large) {
    for (const auto& c : small)
      if (std::find(large.begin(), large.end(), c) == large.end()) return false;
    return small.size() < large.size();
  };
  bool full_kept = false, lora_kept = false;
  for (const auto& a : fits) {
    full_kept |= a.setup.method == og::Method::full;
    lora_kept |= a.setup.method == og::Method::lora;
    for (const auto& b : fits) {
      if (&a == &b) continue;
      EXPECT_FALSE(subset(b.changes, a.changes) && b.relative_speed >= a.relative_speed)
          << fmt::format("{} shown beside {}", fmt::join(a.changes, ", "), fmt::join(b.changes, ", "));
      if (b.setup.method == a.setup.method && b.setup.dtype == a.setup.dtype && b.changes.size() <= a.changes.size()) {
        EXPECT_FALSE(b.estimate.peak_bytes < a.estimate.peak_bytes && b.relative_speed > a.relative_speed)
            << fmt::format("{} shown beside {}", fmt::join(a.changes, ", "), fmt::join(b.changes, ", "));
      }
    }
  }
  // LoRA, smaller and faster, does not hide the full fine-tunes that fit.
  EXPECT_TRUE(full_kept);
  EXPECT_TRUE(lora_kept);
}

TEST(FitSearch, AnFp32RunIsOfferedBf16) {
  auto o = reference(og::DType::fp32, false);
  o.setup.optimizer_impl.reset();
  const auto fits = og::fit_search(mistral(), o, 1000);
  bool bf16 = false;
  for (const auto& c : fits)
    if (c.setup.dtype == og::DType::bf16) {
      bf16 = true;
      EXPECT_NE(std::find(c.changes.begin(), c.changes.end(), "dtype bf16"), c.changes.end());
    }
  EXPECT_TRUE(bf16);
  // And a bf16 run is not offered fp32.
  for (const auto& c : og::fit_search(mistral(), reference(og::DType::bf16, false), 1000))
    EXPECT_EQ(c.setup.dtype, og::DType::bf16);
}

TEST(Estimator, ZeroOnOneGpuShardsNothing) {
  auto o = reference(og::DType::bf16, false);
  const auto single = og::estimate(mistral(), o);
  o.setup.sharding = og::Sharding::zero2;  // world size 1: DeepSpeed runs it, nothing is divided
  EXPECT_DOUBLE_EQ(og::estimate(mistral(), o).peak_bytes, single.peak_bytes);
}

// Note [The optimizer step's temporaries]
TEST(Estimator, TheOptimizerImplementationSetsTheStepTemporary) {
  auto o = reference(og::DType::bf16, false);
  o.setup.optimizer_impl = og::OptimizerImpl::foreach;
  EXPECT_DOUBLE_EQ(og::estimate(mistral(), o).component("optimizer_step_transient"), 2 * kN);
  o.setup.optimizer_impl = og::OptimizerImpl::fused;
  EXPECT_DOUBLE_EQ(og::estimate(mistral(), o).component("optimizer_step_transient"), 0);
  o.setup.optimizer_impl = og::OptimizerImpl::for_loop;  // two copies of the largest tensor, the embedding
  EXPECT_DOUBLE_EQ(og::estimate(mistral(), o).component("optimizer_step_transient"), 2 * 2 * kV * kH);
}

// Note [Framework defaults]
TEST(Estimator, TheTrainerDefaultsToFusedAndDropsTheLogitsBeforeBackward) {
  og::EstimateOptions trainer;  // framework hf-trainer, no implementation given
  EXPECT_EQ(og::optimizer_impl(trainer.setup), og::OptimizerImpl::fused);
  og::EstimateOptions plain;
  plain.setup.framework = og::Framework::torch;
  EXPECT_EQ(og::optimizer_impl(plain.setup), og::OptimizerImpl::foreach);
  // A bf16 7B full fine-tune: the Trainer's step needs one parameter-sized
  // temporary less than a plain loop's (14.5 GB).
  const double saved = og::estimate(mistral(), plain).peak().tensor_bytes() -
                       og::estimate(mistral(), trainer).peak().tensor_bytes();
  EXPECT_NEAR(saved, 2 * kN + 1024.0 * kV * 2, 1.0);  // the step temporary and the held logits
}

// Note [Which kernel SDPA runs]
TEST(Estimator, SdpaOnAGroupedQueryModelInFp32PaysPerPosition) {
  auto o = reference(og::DType::bf16, false);
  const auto bf16 = og::estimate(mistral(), o);
  EXPECT_EQ(og::attention_kernel(mistral(), {}), og::AttentionKernel::flash_or_efficient);
  EXPECT_DOUBLE_EQ(bf16.activation.per_layer_per_token_per_position, 0);
  og::ActivationInputs fp32;
  fp32.compute_bytes = 4;
  EXPECT_EQ(og::attention_kernel(mistral(), fp32), og::AttentionKernel::math);  // 8 kv heads of 32
  og::ActivationInputs t4;
  t4.bf16 = false;
  t4.compute_capability = 75;
  EXPECT_EQ(og::attention_kernel(mistral(), t4), og::AttentionKernel::math);  // no flash before 8.0, GQA
  o.setup.dtype = og::DType::fp32;
  EXPECT_GT(og::estimate(mistral(), o).activation.per_layer_per_token_per_position, 0);
}

// Note [cuBLAS workspaces]
TEST(Estimator, CublasWorkspacesFollowTheArchitecture) {
  EXPECT_EQ(og::cublas_workspace_bytes(80), 8519680u);   // A100, measured on the simulated device
  EXPECT_EQ(og::cublas_workspace_bytes(90), 33554432u);  // H100
  EXPECT_EQ(og::cublas_workspace_bytes(100), 8519680u);  // B200
}

TEST(Estimator, AdaptersInTheModelsDtypeHalveTheirBytes) {
  auto o = reference(og::DType::bf16, false);
  o.setup.method = og::Method::lora;
  o.setup.lora_targets = {"q_proj", "v_proj"};
  const auto fp32 = og::estimate(mistral(), o);
  o.setup.adapter_dtype = og::DType::bf16;
  const auto bf16 = og::estimate(mistral(), o);
  // r x (in + out) per adapted projection per layer: q 4096->4096, v 4096->1024.
  const double adapter_numel = kL * 16 * ((kH + kH) + (kH + kKv));
  EXPECT_DOUBLE_EQ(fp32.component("adapters"), 4 * adapter_numel);
  EXPECT_DOUBLE_EQ(bf16.component("adapters"), 2 * adapter_numel);
  EXPECT_DOUBLE_EQ(bf16.component("gradients"), 2 * adapter_numel);
  EXPECT_DOUBLE_EQ(bf16.component("optimizer_states"), 2 * 2 * adapter_numel);
  o.setup.method = og::Method::full;
  EXPECT_THROW(og::estimate(mistral(), o), oomguard::config_error);  // a full fine-tune has no adapters
}

TEST(Estimator, QloraWithoutDoubleQuantKeepsAnFp32AbsmaxPerBlock) {
  auto o = reference(og::DType::bf16, false);
  o.setup.method = og::Method::qlora;
  const auto doubled = og::estimate(mistral(), o);
  o.setup.double_quant = false;
  const auto single = og::estimate(mistral(), o);
  const double linear = kL * (2 * kH * kH + 2 * kH * kKv + 3 * kH * kI);
  // fp32 per 64 weights, against one byte per 64 and an fp32 per 256 blocks.
  EXPECT_NEAR(single.component("weights") - doubled.component("weights"),
              linear * (4.0 / 64 - 1.0 / 64 - 4.0 / (64 * 256)), 1.0);
  o.setup.method = og::Method::lora;
  EXPECT_THROW(og::estimate(mistral(), o), oomguard::config_error);  // only QLoRA quantizes
}

TEST(Estimator, PagedOptimizerStatesAreOutsideTorchsAllocator) {
  auto o = reference(og::DType::bf16, false);
  o.setup.optimizer = og::Optimizer::paged_adamw_8bit;
  const auto paged = og::estimate(mistral(), o);
  o.setup.optimizer = og::Optimizer::adamw_8bit;
  const auto plain = og::estimate(mistral(), o);
  // The same bytes; the big tensors' states move to unified memory.
  EXPECT_NEAR(paged.component("optimizer_states") + paged.component("optimizer_states_paged"),
              plain.component("optimizer_states"), 1.0);
  EXPECT_GT(paged.component("optimizer_states_paged"), 0.99 * plain.component("optimizer_states"));
  for (const auto& c : paged.components)
    if (c.name == "optimizer_states_paged") {
      EXPECT_EQ(c.category, oomguard::Category::non_torch);
    }
  EXPECT_LT(paged.allocator_slack_bytes, plain.allocator_slack_bytes);  // no slack on memory torch does not cache
}

// Note [The optimizer in backward]
TEST(Estimator, TheOptimizerInBackwardKeepsOneGradientAndNoStepPhase) {
  auto o = reference(og::DType::bf16, false);
  const auto after = og::estimate(mistral(), o);
  o.setup.optimizer_in_backward = true;
  const auto in_backward = og::estimate(mistral(), o);
  EXPECT_DOUBLE_EQ(in_backward.component("gradients"), 2 * kV * kH);  // the embedding's, the largest
  EXPECT_DOUBLE_EQ(in_backward.component("optimizer_step_transient"), 2 * kV * kH);  // foreach over one tensor
  ASSERT_EQ(in_backward.phases.size(), 2u);
  for (const auto& p : in_backward.phases) EXPECT_NE(p.phase, "optimizer_step");
  EXPECT_LT(in_backward.peak_bytes, after.peak_bytes - 2 * kN);  // all gradients and the step's temporary gone
  o.setup.grad_accum = 2;
  EXPECT_THROW(og::estimate(mistral(), o), oomguard::config_error);  // nothing to accumulate into
}

// Note [Which kernel SDPA runs]: without the cache, the efficient kernel.
TEST(Estimator, CheckpointingRunsTheEfficientKernelWithAMask) {
  og::ActivationInputs fp32;
  fp32.compute_bytes = 4;
  fp32.gradient_checkpointing = true;
  EXPECT_EQ(og::attention_kernel(mistral(), fp32), og::AttentionKernel::flash_or_efficient);
  auto o = reference(og::DType::bf16, false);
  o.setup.gradient_checkpointing = true;
  o.setup.seq_len = 2048;
  o.setup.batch_size = 2;
  EXPECT_DOUBLE_EQ(og::estimate(mistral(), o).component("attention_mask"), 2.0 * 2048 * 2048);
  o.setup.gradient_checkpointing = false;
  EXPECT_DOUBLE_EQ(og::estimate(mistral(), o).component("attention_mask"), 0);
}

// Note [Autocast: fp32 weights, bf16 compute]
TEST(Estimator, AutocastKeepsFp32WeightsAndBf16CopiesOfTheLinears) {
  auto o = reference(og::DType::bf16, false);
  o.setup.amp = true;
  const auto amp = og::estimate(mistral(), o);
  EXPECT_DOUBLE_EQ(amp.component("weights"), 4 * kN);
  EXPECT_DOUBLE_EQ(amp.component("gradients"), 4 * kN);
  EXPECT_DOUBLE_EQ(amp.component("optimizer_states"), 2 * 4 * kN);
  const double linear = kL * (2 * kH * kH + 2 * kH * kKv + 3 * kH * kI) + kV * kH;  // and lm_head
  EXPECT_DOUBLE_EQ(amp.component("autocast_weight_copies"), 2 * linear);
  // Each of q, k, v and gate, up keeps its own bf16 cast of the fp32 norm
  // output; the norms' fp32 outputs stay for their weights' gradients.
  o.setup.amp = false;
  const auto bf16 = og::estimate(mistral(), o);
  const double per_token_layer = amp.activation.per_layer_per_token - bf16.activation.per_layer_per_token;
  // Norms: 2 x (4 - 2) h; q/k/v: 3 casts of 2h for one; gate/up: 2 for one.
  EXPECT_DOUBLE_EQ(per_token_layer, 2 * 2 * kH + 2 * 2 * kH + 2 * kH);
  o.setup.amp = true;
  o.setup.mixed_precision = true;
  EXPECT_THROW(og::estimate(mistral(), o), oomguard::config_error);
  o.setup.mixed_precision = false;
  o.setup.dtype = og::DType::fp32;
  EXPECT_THROW(og::estimate(mistral(), o), oomguard::config_error);  // nothing to autocast to
}
