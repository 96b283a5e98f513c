#include <gtest/gtest.h>

#include "oomguard/error.hpp"
#include "oomguard/guard/policy.hpp"

namespace og = oomguard::guard;

namespace {

og::Prediction predicted(std::uint64_t bytes) {
  og::Prediction p;
  p.made_at_step = 2, p.peak_allocated_bytes = bytes, p.peak_reserved_bytes = bytes;
  p.phase = oomguard::Phase::backward, p.step = 7;
  p.low_bytes = bytes - bytes / 50, p.high_bytes = bytes + bytes / 50;
  p.reason = "training step";
  return p;
}

const std::vector<og::Suggestion> kFixes = {{"checkpointing", "enable checkpointing", 300},
                                            {"micro_batch", "halve the micro-batch", 200},
                                            {"lora", "train LoRA", 900}};
const std::vector<std::string> kAll = {"checkpoint", "micro_batch", "save_guard"};

std::vector<std::string> kinds(const og::Decision& d) {
  std::vector<std::string> out;
  for (const auto& a : d.actions) out.push_back(a.kind);
  return out;
}

}  // namespace

TEST(Policy, FitsTakesNoAction) {
  og::PolicyConfig c;
  c.budget = 2000;
  EXPECT_TRUE(og::decide(predicted(1000), kFixes, c, kAll).actions.empty());
}

TEST(Policy, AboveTheWarningThresholdWarnsOnly) {
  og::PolicyConfig c;
  c.budget = 1000;
  EXPECT_EQ(kinds(og::decide(predicted(950), kFixes, c, kAll)), std::vector<std::string>{"warn"});
  c.warn_at = 0.97;
  EXPECT_TRUE(og::decide(predicted(950), kFixes, c, kAll).actions.empty());
}

TEST(Policy, RemediationsInConfiguredOrderUntilItFits) {
  og::PolicyConfig c;
  c.budget = 1000;
  auto d = og::decide(predicted(1250), kFixes, c, kAll);  // 250 over: checkpointing (300) is enough
  EXPECT_EQ(kinds(d), (std::vector<std::string>{"warn", "checkpoint"}));
  EXPECT_EQ(d.after_actions, 950u);
  d = og::decide(predicted(1450), kFixes, c, kAll);  // 450 over: both
  EXPECT_EQ(kinds(d), (std::vector<std::string>{"warn", "checkpoint", "micro_batch"}));
  c.actions = {"warn", "micro_batch", "checkpoint", "abort"};
  d = og::decide(predicted(1150), kFixes, c, kAll);
  EXPECT_EQ(kinds(d), (std::vector<std::string>{"warn", "micro_batch"}));
}

TEST(Policy, NothingFitsAborts) {
  og::PolicyConfig c;
  c.budget = 1000;
  auto d = og::decide(predicted(2000), kFixes, c, kAll);
  EXPECT_EQ(kinds(d), (std::vector<std::string>{"warn", "abort"}));
  // Remediations without an actuator are not counted.
  d = og::decide(predicted(1250), kFixes, c, {});
  EXPECT_EQ(kinds(d), (std::vector<std::string>{"warn", "abort"}));
  // Without abort configured, the guard does what it can.
  c.actions = {"warn", "checkpoint"};
  d = og::decide(predicted(2000), kFixes, c, kAll);
  EXPECT_EQ(kinds(d), (std::vector<std::string>{"warn", "checkpoint"}));
}

TEST(Policy, TheWorstRanksRatioDecidesForEveryRank) {
  og::PolicyConfig c;
  c.budget = 1000;
  EXPECT_TRUE(og::decide(predicted(500), kFixes, c, kAll).actions.empty());
  EXPECT_EQ(kinds(og::decide_with_ratio(3.0, predicted(500), kFixes, c, kAll)),
            (std::vector<std::string>{"warn", "abort"}));
}

TEST(Policy, ActionListParsing) {
  EXPECT_EQ(og::parse_actions("warn+abort"), (std::vector<std::string>{"warn", "abort"}));
  EXPECT_THROW(og::parse_actions("warn+explode"), oomguard::config_error);
  EXPECT_THROW(og::parse_actions("warn+warn"), oomguard::config_error);
  EXPECT_THROW(og::parse_actions(""), oomguard::config_error);
  EXPECT_DOUBLE_EQ(og::parse_warn_at("0.8"), 0.8);
  EXPECT_THROW(og::parse_warn_at("1.5"), oomguard::config_error);
  EXPECT_THROW(og::parse_warn_at("x"), oomguard::config_error);
  EXPECT_EQ(og::parse_predict_after("3"), 3);
  EXPECT_THROW(og::parse_predict_after("0"), oomguard::config_error);
  for (const char* bad : {"inf", "nan", "-inf", "1e300", "2.5"})  // inf once became INT64_MIN
    EXPECT_THROW(og::parse_predict_after(bad), oomguard::config_error) << bad;
  EXPECT_EQ(og::parse_max_seq_len("4096"), 4096);
  for (const char* bad : {"-1", "0", "1GiB", "4k", "2147483648", ""})
    EXPECT_THROW(og::parse_max_seq_len(bad), oomguard::config_error) << bad;
}

TEST(Policy, TheGuardsValuesAreCheckedBeforeARunStarts) {
  EXPECT_NO_THROW(og::check_guard_conf(oomguard::parse_conf("warn_at:0.9,mode:cpu,actions:warn+abort,budget:1GiB")));
  for (const char* bad : {"warn_at:2", "predict_after:0", "actions:warn+nuke", "max_seq_len:-1", "budget:lots"}) {
    try {
      og::check_guard_conf(oomguard::parse_conf(bad));
      ADD_FAILURE() << bad << " was accepted";
    } catch (const oomguard::config_error& e) {
      const std::string key(bad, std::string_view(bad).find(':'));
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

TEST(Policy, WarnMessageNamesPeakPhaseStepBudgetAndRankedFixes) {
  const std::string text = og::warn_message(predicted(1ull << 30), 1ull << 30, kFixes);
  for (const char* needle : {"1.00 GiB", "backward", "step 7", "100%", "1. enable checkpointing", "training step"})
    EXPECT_NE(text.find(needle), std::string::npos) << needle << " in:\n" << text;
}

TEST(Policy, FixesAreRankedByBytesSavedAndApplyToTheRun) {
  og::RunDescription run;
  run.model = og::parse_model_spec({{"model_type", "llama"}, {"hidden_size", 64}, {"intermediate_size", 128},
                                    {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                                    {"vocab_size", 1000}, {"max_position_embeddings", 1024}});
  run.optimizer = og::Optimizer::adamw;
  run.trainable = {{"w", 1000, 1000}};
  og::StepObservation s;
  s.step = 2, s.batch = 4, s.seq = 128, s.activations_peak = 8000000, s.peak_allocated = 30000000;
  s.weights_bytes = 4000000, s.optimizer_bytes = 8000000, s.gradient_bytes = 4000000;
  s.persistent_at_start = 12000000;
  const auto f = og::predict(run, {s});
  const auto fixes = og::rank_fixes(run, f);
  ASSERT_GE(fixes.size(), 4u);
  for (std::size_t i = 1; i < fixes.size(); ++i) EXPECT_GE(fixes[i - 1].saves_bytes, fixes[i].saves_bytes);
  std::vector<std::string> found;
  for (const auto& x : fixes) found.push_back(x.kind);
  for (const char* kind : {"checkpointing", "micro_batch", "max_length", "lora", "optimizer_8bit"})
    EXPECT_NE(std::find(found.begin(), found.end(), kind), found.end()) << kind;
}

TEST(Policy, AModelOfItsOwnGetsCheckpointingCostedByItsBlockProfile) {
  og::RunDescription run;  // no transformers config
  run.optimizer = og::Optimizer::adamw;
  run.trainable = {{"w", 1000, 1000}};
  run.longest_batch = 8, run.longest_seq = 128;
  og::StepObservation s;
  s.step = 2, s.batch = 8, s.seq = 16, s.activations_peak = 2000000, s.peak_allocated = 20000000;
  s.weights_bytes = 4000000, s.optimizer_bytes = 8000000, s.gradient_bytes = 4000000;
  s.persistent_at_start = 12000000;
  const auto checkpointing = [&](const og::RunDescription& r) -> const og::Suggestion* {
    static std::vector<og::Suggestion> fixes;
    fixes = og::rank_fixes(r, og::predict(r, {s}));
    for (const auto& x : fixes)
      if (x.kind == "checkpointing") return &x;
    return nullptr;
  };
  EXPECT_EQ(checkpointing(run), nullptr);  // nothing to cost it with
  run.blocks = 4, run.block_kept_per_token = 100;
  const og::Suggestion* fix = checkpointing(run);
  ASSERT_NE(fix, nullptr);
  EXPECT_EQ(fix->saves_bytes, 4u * 100 * 8 * 128);  // 4 blocks x 100 bytes per token x 1024 tokens
  EXPECT_NE(fix->description.find("4 blocks"), std::string::npos);
}
