#include <gtest/gtest.h>

#include <algorithm>

#include "oomguard/guard/static_check.hpp"

namespace og = oomguard::guard;

namespace {

// A full fine-tune of one 1000 x 1000 fp32 matrix with AdamW: 4 MB of
// weights, 4 MB of gradients, 8 MB of state.
og::RunDescription adamw_full_fp32() {
  og::RunDescription run;
  run.activation.method = og::Method::full;
  run.optimizer = og::Optimizer::adamw;
  run.trainable = {{"w", 1000, 1000}};
  run.param_bytes = 4;
  return run;
}

const og::StaticFix* find(const og::StaticFootprint& f, const std::string& kind) {
  const auto it = std::find_if(f.fixes.begin(), f.fixes.end(), [&](const auto& x) { return x.kind == kind; });
  return it == f.fixes.end() ? nullptr : &*it;
}

}  // namespace

TEST(StaticCheck, WeightsGradientsAndAdamWStateWithinTheBudgetFit) {
  const auto f = og::static_footprint(adamw_full_fp32(), 4'000'000, 16'000'000);
  EXPECT_EQ(f.gradients, 4'000'000u);
  EXPECT_EQ(f.optimizer_state, 8'000'000u);
  EXPECT_EQ(f.total(), 16'000'000u);
  EXPECT_TRUE(f.fits());
  EXPECT_TRUE(f.fixes.empty());
  EXPECT_TRUE(f.message.empty());
}

TEST(StaticCheck, OverTheBudgetListsTheFixesThatFitFirst) {
  const auto f = og::static_footprint(adamw_full_fp32(), 4'000'000, 10'000'000);
  ASSERT_FALSE(f.fits());
  const auto* lora = find(f, "lora");
  const auto* bf16 = find(f, "bf16");
  const auto* eight = find(f, "optimizer_8bit");
  const auto* shard = find(f, "shard");
  ASSERT_TRUE(lora && bf16 && eight && shard);
  EXPECT_TRUE(lora->fits);     // the weights and 1% of the rest, twice
  EXPECT_TRUE(bf16->fits);     // 8 MB
  // 4 + 4 MB and two 1-byte moments with their block scales: just over.
  EXPECT_GT(eight->static_bytes, 10'000'000u);
  EXPECT_LT(eight->static_bytes, 10'100'000u);
  EXPECT_FALSE(eight->fits);
  EXPECT_EQ(shard->description, "FSDP or ZeRO-3 over 2 GPUs");  // 8 MB per GPU
  EXPECT_EQ(shard->static_bytes, 8'000'000u);
  for (std::size_t i = 1; i < f.fixes.size(); ++i)
    EXPECT_FALSE(!f.fixes[i - 1].fits && f.fixes[i].fits) << "a fix that fits comes after one that does not";
  EXPECT_NE(f.message.find("exceed the budget"), std::string::npos);
  EXPECT_NE(f.message.find("these would fit"), std::string::npos);
}

TEST(StaticCheck, ShardingProposesTheFewestGpusThatFit) {
  const auto f = og::static_footprint(adamw_full_fp32(), 4'000'000, 3'000'000);
  const auto* shard = find(f, "shard");
  ASSERT_TRUE(shard != nullptr);
  EXPECT_EQ(shard->description, "FSDP or ZeRO-3 over 8 GPUs");  // 16 MB / 8 = 2 MB; 4 GPUs would need 4 MB
  EXPECT_TRUE(shard->fits);
}

TEST(StaticCheck, WithoutAnOptimizerOnlyWeightsAndGradientsCount) {
  auto run = adamw_full_fp32();
  run.optimizer.reset();
  const auto f = og::static_footprint(run, 4'000'000, 6'000'000);
  EXPECT_EQ(f.optimizer_state, 0u);
  EXPECT_FALSE(f.fits());
  EXPECT_EQ(find(f, "optimizer_8bit"), nullptr);
  EXPECT_NE(f.message.find("no optimizer known yet"), std::string::npos);
}
