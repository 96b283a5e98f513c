#include <gtest/gtest.h>

#include <thread>

#include "oomguard/tags.hpp"

using namespace oomguard;

class Tags : public ::testing::Test {
 protected:
  void TearDown() override {
    set_process_phase(Phase::idle);
    set_process_category(std::nullopt);
    set_process_step(0);
  }
};

TEST_F(Tags, PhaseGivesTheDefaultCategory) {
  set_process_phase(Phase::forward);
  EXPECT_EQ(current_tag().category, Category::activations);
  set_process_phase(Phase::backward);
  EXPECT_EQ(current_tag().category, Category::temporary);
  set_process_phase(Phase::save);
  EXPECT_EQ(current_tag().category, Category::checkpoint);
  set_process_phase(Phase::idle);
  EXPECT_EQ(current_tag().category, Category::unknown);
}

TEST_F(Tags, ScopesNestAndRestore) {
  set_process_phase(Phase::forward);
  {
    CategoryScope weights(Category::weights);
    EXPECT_EQ(current_tag().category, Category::weights);
    {
      CategoryScope adapters(Category::adapters);
      PhaseScope save(Phase::save);
      EXPECT_EQ(current_tag().category, Category::adapters);
      EXPECT_EQ(current_tag().phase, Phase::save);
    }
    EXPECT_EQ(current_tag().category, Category::weights);
    EXPECT_EQ(current_tag().phase, Phase::forward);
  }
  EXPECT_EQ(current_tag().category, Category::activations);
}

TEST_F(Tags, ThreadsWithoutAScopeSeeTheProcessPhaseAndStep) {
  set_process_phase(Phase::backward);
  set_process_step(7);
  CategoryScope here(Category::weights);  // this thread only
  Tag seen{};
  std::thread([&] { seen = current_tag(); }).join();
  EXPECT_EQ(seen.phase, Phase::backward);
  EXPECT_EQ(seen.category, Category::temporary);
  EXPECT_EQ(seen.step, 7);
}

TEST_F(Tags, ProcessCategoryOverridesThePhaseDefaultButNotAScope) {
  set_process_phase(Phase::forward);
  set_process_category(Category::weights);
  EXPECT_EQ(current_tag().category, Category::weights);
  {
    CategoryScope adapters(Category::adapters);
    EXPECT_EQ(current_tag().category, Category::adapters);
  }
  set_process_category(std::nullopt);
  EXPECT_EQ(current_tag().category, Category::activations);
}
