#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "oomguard/error.hpp"
#include "oomguard/guard/model_table.hpp"
#include "oomguard/guard/predictor.hpp"

namespace og = oomguard::guard;

namespace {

og::RunDescription adamw_run(std::int64_t rows, std::int64_t cols, int param_bytes) {
  og::RunDescription r;
  r.optimizer = og::Optimizer::adamw;
  r.param_bytes = param_bytes;
  r.trainable.push_back({"w", rows, cols});
  return r;
}

og::ModelSpec tiny_llama() {
  return og::parse_model_spec({{"model_type", "llama"}, {"hidden_size", 64}, {"intermediate_size", 128},
                               {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                               {"vocab_size", 1000}, {"max_position_embeddings", 1024}});
}

// A synthetic run whose step peak above what persists is the larger of
// g * activations (start of backward) and the gradients (end of backward).
og::StepObservation step(std::int64_t n, std::int64_t b, std::int64_t s, double per_token, double per_sq,
                         double growth, bool first) {
  const double act = per_token * static_cast<double>(b * s) + per_sq * static_cast<double>(b * s * s);
  og::StepObservation o;
  o.step = n, o.batch = b, o.seq = s;
  o.weights_bytes = 1000000, o.optimizer_bytes = 2000000, o.gradient_bytes = 1000000;
  o.persistent_at_start = first ? o.weights_bytes : o.weights_bytes + o.optimizer_bytes;
  o.activations_peak = static_cast<std::uint64_t>(act);
  o.peak_allocated = static_cast<std::uint64_t>(static_cast<double>(o.persistent_at_start) +
                                                std::max(growth * act, static_cast<double>(o.gradient_bytes)));
  return o;
}

}  // namespace

TEST(OptimizerState, AdamWKeepsTwoStatesInTheParameterDtype) {
  EXPECT_DOUBLE_EQ(og::predicted_optimizer_state(adamw_run(100, 50, 4)), 2.0 * 4 * 5000);
  EXPECT_DOUBLE_EQ(og::predicted_optimizer_state(adamw_run(100, 50, 2)), 2.0 * 2 * 5000);
  // The foreach step's sqrt(exp_avg_sq) is one state-sized temporary.
  EXPECT_DOUBLE_EQ(og::predicted_optimizer_transient(adamw_run(100, 50, 4)), 4.0 * 5000);
}

TEST(OptimizerState, EightBitKeepsBytesPlusBlockScalesAndSmallTensorsIn32Bit) {
  auto r = adamw_run(1024, 1024, 2);
  r.optimizer = og::Optimizer::adamw_8bit;
  const double n = 1024.0 * 1024;
  EXPECT_DOUBLE_EQ(og::predicted_optimizer_state(r), 2 * (n + 4 * (n / 256)));
  r.optimizer = og::Optimizer::paged_adamw_8bit;
  EXPECT_DOUBLE_EQ(og::predicted_optimizer_state(r), 2 * (n + 4 * (n / 256)));
  r.trainable = {{"small", 10, 10}};
  EXPECT_DOUBLE_EQ(og::predicted_optimizer_state(r), 2 * 4 * 100.0);
  EXPECT_DOUBLE_EQ(og::predicted_optimizer_transient(r), 0);
}

TEST(OptimizerState, SgdMomentumAdafactorFactored) {
  auto r = adamw_run(300, 200, 4);
  r.optimizer = og::Optimizer::sgd;
  EXPECT_DOUBLE_EQ(og::predicted_optimizer_state(r), 4.0 * 60000);
  r.optimizer_momentum = false;
  EXPECT_DOUBLE_EQ(og::predicted_optimizer_state(r), 0);
  r.optimizer = og::Optimizer::adafactor;
  EXPECT_DOUBLE_EQ(og::predicted_optimizer_state(r), 4.0 * (300 + 200));
  r.trainable = {{"bias", 300, 1}};
  EXPECT_DOUBLE_EQ(og::predicted_optimizer_state(r), 4.0 * 300);
}

TEST(ActivationFit, LeastSquaresRecoversBothTermsFromTwoLengths) {
  og::ActivationInputs in;
  in.attention = og::Attention::eager;  // a quadratic term in the formula
  const auto formula = og::activation_model(tiny_llama(), in);
  std::vector<og::ActivationPoint> points;
  for (std::int64_t s : {32, 64, 128})
    points.push_back({2, s, 300.0 * static_cast<double>(2 * s) + 7.0 * static_cast<double>(2 * s * s)});
  const auto fit = og::fit_activations(points, formula);
  EXPECT_EQ(fit.method, "least squares");
  EXPECT_NEAR(fit.per_token, 300, 1e-6);
  EXPECT_NEAR(fit.per_token_squared, 7, 1e-6);
}

TEST(ActivationFit, OneLengthScalesTheFormulaShape) {
  og::ActivationInputs in;
  in.attention = og::Attention::eager;
  const auto formula = og::activation_model(tiny_llama(), in);
  const double measured = 1.1 * (formula.saved_bytes(2, 64) + formula.logits_bytes(2, 64));
  const auto fit = og::fit_activations({{2, 64, measured}}, formula);
  EXPECT_EQ(fit.method, "formula scaled");
  EXPECT_NEAR(fit(2, 64), measured, 1e-6 * measured);
  // Doubling the length follows the formula's growth, quadratic term included.
  const double f64 = formula.saved_bytes(2, 64) + formula.logits_bytes(2, 64);
  const double f128 = formula.saved_bytes(2, 128) + formula.logits_bytes(2, 128);
  const double per_position_part = 2 * formula.per_position * 64;  // rotary cos/sin: not a per-token term
  EXPECT_NEAR(fit(2, 128) / fit(2, 64), (f128 - per_position_part) / (f64 - per_position_part / 2), 0.02);
  EXPECT_GT(fit.per_token_squared, 0);
}

TEST(ActivationFit, WithoutAFormulaActivationsAreLinear) {
  const auto fit = og::fit_activations({{4, 32, 12800}}, std::nullopt);
  EXPECT_EQ(fit.method, "linear");
  EXPECT_DOUBLE_EQ(fit(4, 64), 25600);
  EXPECT_DOUBLE_EQ(fit.per_token_squared, 0);
}

TEST(Predictor, ExtrapolatesToTheLongestBatchWithTheMeasuredScale) {
  og::RunDescription r;  // no model config: the loss gradient is absorbed by the scale
  r.longest_batch = 2, r.longest_seq = 4096, r.longest_at_step = 9;
  const std::vector<og::StepObservation> steps = {step(1, 2, 1024, 500, 0, 1.3, true),
                                                  step(2, 2, 1536, 500, 0, 1.3, false)};
  const auto f = og::predict(r, steps);
  const auto truth = step(9, 2, 1024 * 4, 500, 0, 1.3, false);
  EXPECT_TRUE(f.activation_regime);
  EXPECT_NEAR(f.growth, 1.3, 1e-3);
  EXPECT_NEAR(static_cast<double>(f.prediction.peak_allocated_bytes), static_cast<double>(truth.peak_allocated),
              1e-3 * static_cast<double>(truth.peak_allocated));
  EXPECT_EQ(f.prediction.step, 9);
  EXPECT_EQ(f.prediction.phase, oomguard::Phase::backward);
  EXPECT_EQ(f.prediction.made_at_step, 2);
  EXPECT_LT(f.prediction.low_bytes, f.prediction.peak_allocated_bytes);
  EXPECT_GT(f.prediction.high_bytes, f.prediction.peak_allocated_bytes);
}

// Note [Activations that outlive their step]: a workspace allocated in the
// first forward (cuBLAS's, on CUDA) is tagged activations and stays; it must
// neither scale with the tokens nor hold the scale at its floor.
TEST(Predictor, AWorkspaceInTheActivationsCategoryDoesNotScaleWithTheTokens) {
  constexpr double kWorkspace = 10e6;
  auto with_workspace = [&](og::StepObservation o, bool first) {
    o.activations_peak += static_cast<std::uint64_t>(kWorkspace);
    o.peak_allocated += static_cast<std::uint64_t>(kWorkspace);
    if (!first) {
      o.activations_at_start = static_cast<std::uint64_t>(kWorkspace);
      o.persistent_at_start += static_cast<std::uint64_t>(kWorkspace);
    }
    return o;
  };
  og::RunDescription r;
  r.longest_batch = 8, r.longest_seq = 128, r.longest_at_step = 9;
  const std::vector<og::StepObservation> steps = {with_workspace(step(1, 8, 15, 12000, 0, 1.4, true), true),
                                                  with_workspace(step(2, 8, 16, 12000, 0, 1.4, false), false)};
  const auto f = og::predict(r, steps);
  const auto truth = with_workspace(step(9, 8, 128, 12000, 0, 1.4, false), false);
  EXPECT_TRUE(f.activation_regime);
  EXPECT_NEAR(f.fit.per_token, 12000, 1e-6);
  EXPECT_NEAR(f.growth, 1.4, 1e-3);
  EXPECT_NEAR(static_cast<double>(f.prediction.peak_allocated_bytes), static_cast<double>(truth.peak_allocated),
              1e-3 * static_cast<double>(truth.peak_allocated));
}

// Without a config the loss gradient and backward's temporaries sit in the
// scale: a step peaking at 1.7 times its activations is still their regime.
TEST(Predictor, WithoutAConfigAStepAtUpToTwiceItsActivationsIsScaled) {
  og::RunDescription r;
  r.longest_batch = 2, r.longest_seq = 4096, r.longest_at_step = 9;
  const std::vector<og::StepObservation> steps = {step(1, 2, 1024, 500, 0, 1.7, true),
                                                  step(2, 2, 1100, 500, 0, 1.7, false)};
  const auto f = og::predict(r, steps);
  const auto truth = step(9, 2, 4096, 500, 0, 1.7, false);
  EXPECT_TRUE(f.activation_regime);
  EXPECT_NEAR(static_cast<double>(f.prediction.peak_allocated_bytes), static_cast<double>(truth.peak_allocated),
              1e-3 * static_cast<double>(truth.peak_allocated));
}

TEST(Predictor, AStepPeakingAtItsGradientsIsAFloorNotAScale) {
  // Short micro-batches peak when the gradients are complete (1 MB here);
  // the longest one's activations then exceed that floor.
  og::RunDescription r;
  r.longest_batch = 2, r.longest_seq = 4096;
  const auto short_step = step(2, 2, 64, 500, 0, 1.0, false);  // activations 64 KB < gradients 1 MB
  const auto f = og::predict(r, {short_step});
  EXPECT_FALSE(f.activation_regime);
  const auto truth = step(9, 2, 4096, 500, 0, 1.0, false);
  EXPECT_NEAR(static_cast<double>(f.prediction.peak_allocated_bytes), static_cast<double>(truth.peak_allocated),
              1e-3 * static_cast<double>(truth.peak_allocated));
  r.longest_seq = 128;  // still below the gradients: the measured peak stands
  EXPECT_EQ(og::predict(r, {short_step}).prediction.peak_allocated_bytes, short_step.peak_allocated);
}

TEST(Predictor, TheGradientMomentGrowsAtTheSlopeOfTheStepsSeen) {
  // Checkpointing: the peak sits at the gradient moment, which holds 70% of
  // the activations' growth (the layer being rebuilt) on top of the gradients.
  og::RunDescription r;
  r.longest_batch = 2, r.longest_seq = 512;
  const auto moment = [](std::int64_t n, std::int64_t s, bool first) {
    auto o = step(n, 2, s, 500, 0, 1.0, first);
    o.train_peak = o.persistent_at_start + o.gradient_bytes + static_cast<std::uint64_t>(0.7 * 500 * 2 * static_cast<double>(s));
    o.peak_allocated = std::max(o.peak_allocated, o.train_peak);
    return o;
  };
  const auto f = og::predict(r, {moment(1, 64, true), moment(2, 96, false)});
  EXPECT_FALSE(f.activation_regime);
  EXPECT_NEAR(f.gradient_slope, 0.7, 1e-6);
  const auto truth = moment(9, 512, false);
  EXPECT_NEAR(static_cast<double>(f.prediction.peak_allocated_bytes), static_cast<double>(truth.train_peak),
              1e-6 * static_cast<double>(truth.train_peak));
}

TEST(Predictor, FirstStepOnlyAddsTheOptimizerStateItsForwardLacked) {
  auto r = adamw_run(500, 500, 4);
  const auto first = step(1, 2, 64, 500, 0, 1.0, true);
  auto unseen = first;
  unseen.optimizer_bytes = 0;  // predicted before the state exists
  const auto f = og::predict(r, {unseen});
  EXPECT_DOUBLE_EQ(f.optimizer_state, 2.0 * 4 * 250000);
  EXPECT_NEAR(static_cast<double>(f.prediction.peak_allocated_bytes),
              std::max(static_cast<double>(first.peak_allocated) + f.optimizer_state,
                       1e6 + 1e6 + f.optimizer_state + f.optimizer_transient),
              1);
}

TEST(Predictor, EvaluationAndSaveCanHoldThePeak) {
  og::RunDescription r;
  r.saves = true, r.save_copy_bytes = 50000000, r.save_at_step = 100;
  const auto f = og::predict(r, {step(1, 2, 64, 500, 0, 1.0, true), step(2, 2, 64, 500, 0, 1.0, false)});
  EXPECT_EQ(f.prediction.phase, oomguard::Phase::save);
  EXPECT_EQ(f.prediction.step, 100);
  EXPECT_EQ(f.prediction.peak_allocated_bytes, 1000000u + 2000000u + 50000000u);
}

TEST(Predictor, ReservedAddsFragmentationAndMemoryOutsideTorch) {
  og::RunDescription r;
  auto s = step(2, 2, 64, 500, 0, 1.0, false);
  s.fragmentation = 3000, s.non_torch = 40000;
  const auto f = og::predict(r, {s});
  EXPECT_EQ(f.prediction.peak_reserved_bytes, f.prediction.peak_allocated_bytes + 43000);
}

TEST(Predictor, ReservedGrowsByWholeSegmentsBeyondThoseHeld) {
  // Note [Reserved bytes grow by segments].
  constexpr std::uint64_t MiB = 1 << 20;
  og::RunDescription r;
  auto s = step(2, 2, 64, 500, 0, 1.0, false);
  const std::uint64_t gap = 25 * MiB;  // reserved beyond allocated at the reserved peak
  s.fragmentation = gap, s.non_torch = 40000;
  const std::uint64_t allocated = og::predict(r, {s}).prediction.peak_allocated_bytes;
  // The need fits in the segments held: the reserved peak already reached stands.
  s.reserved_peak = allocated + gap + 5 * MiB;
  EXPECT_EQ(og::predict(r, {s}).prediction.peak_reserved_bytes, s.reserved_peak + 40000);
  // It exceeds them by a byte, or by a segment and a byte: one, then two new 20 MiB segments.
  s.reserved_peak = allocated + gap - 1;
  EXPECT_EQ(og::predict(r, {s}).prediction.peak_reserved_bytes, s.reserved_peak + 20 * MiB + 40000);
  s.reserved_peak = allocated + gap - 20 * MiB - 1;
  EXPECT_EQ(og::predict(r, {s}).prediction.peak_reserved_bytes, s.reserved_peak + 40 * MiB + 40000);
}

TEST(Predictor, NoObservationIsAClearError) {
  EXPECT_THROW(og::predict({}, {}), oomguard::config_error);
}

TEST(PredictorJson, UnknownKeysAreRejectedWithTheAcceptedOnes) {
  try {
    og::run_description_from_json({{"optimiser", "adamw"}});
    FAIL() << "no error";
  } catch (const oomguard::config_error& e) {
    EXPECT_NE(std::string(e.what()).find("optimiser"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("optimizer"), std::string::npos);
  }
  const auto r = og::run_description_from_json({{"optimizer", "adamw-8bit"}, {"trainable", {{10, 20}}}});
  EXPECT_EQ(r.optimizer, og::Optimizer::adamw_8bit);
  EXPECT_EQ(r.trainable.at(0).numel(), 200);
}
