// The C ABI, as torch's CUDAPluggableAllocator and C programs use it. One
// process-wide allocator, so the tests run in order in one process.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "oomguard/c_api.h"

namespace {
std::string stats_json(int device) {
  const size_t needed = oomguard_stats_json(device, nullptr, 0);
  std::string text(needed + 1, '\0');
  oomguard_stats_json(device, text.data(), text.size());
  text.resize(needed);
  return text;
}
}  // namespace

TEST(CApi, ConfigureRejectsUnknownKeysAndNamesThem) {
  EXPECT_EQ(oomguard_configure("upstream:simulated,budgett:1GiB"), -1);
  const std::string error = oomguard_last_error();
  EXPECT_NE(error.find("'budgett'"), std::string::npos) << error;
  EXPECT_NE(error.find("budget"), std::string::npos) << error;
  EXPECT_EQ(oomguard_configure("upstream:simulated,budget:lots"), -1);
  EXPECT_NE(std::string(oomguard_last_error()).find("'lots'"), std::string::npos);
}

TEST(CApi, MallocFreeAndStats) {
  ASSERT_EQ(oomguard_configure("upstream:simulated,capacity:256MiB,devices:2,budget:128MiB"), 0)
      << oomguard_last_error();
  auto* stream = reinterpret_cast<cudaStream_t>(0x10);
  ASSERT_EQ(oomguard_push_category("weights"), 0);
  void* p = oomguard_malloc(3 << 20, 1, stream);
  oomguard_pop_category();
  ASSERT_NE(p, nullptr) << oomguard_last_error();
  const auto stats = nlohmann::json::parse(stats_json(1));
  EXPECT_EQ(stats["allocator"]["requested_bytes"], 3 << 20);
  EXPECT_EQ(stats["allocator"]["budget_bytes"], 128 << 20);
  EXPECT_EQ(stats["ledger"]["current_by_category"]["weights"], 3 << 20);
  oomguard_free(p, 3 << 20, 1, stream);
  EXPECT_EQ(nlohmann::json::parse(stats_json(1))["ledger"]["allocated_bytes"], 0);
}

TEST(CApi, ConfigureAfterUseIsRefused) {
  EXPECT_EQ(oomguard_configure("upstream:simulated"), -1);
  EXPECT_NE(std::string(oomguard_last_error()).find("already in use"), std::string::npos);
}

TEST(CApi, FailuresReturnNullWithAReason) {
  EXPECT_EQ(oomguard_malloc(0, 0, nullptr), nullptr);
  EXPECT_NE(std::string(oomguard_last_error()).find("zero-byte"), std::string::npos);
  EXPECT_EQ(oomguard_malloc(200 << 20, 0, nullptr), nullptr);  // over the 128 MiB budget
  EXPECT_NE(std::string(oomguard_last_error()).find("out of memory"), std::string::npos);
  EXPECT_EQ(oomguard_malloc(16, 7, nullptr), nullptr);
  EXPECT_NE(std::string(oomguard_last_error()).find("device 7"), std::string::npos);
  // The error is the latest call's: a success clears it.
  void* fine = oomguard_malloc(64, 0, nullptr);
  ASSERT_NE(fine, nullptr);
  EXPECT_STREQ(oomguard_last_error(), "");
  oomguard_free(fine, 64, 0, nullptr);
  (void)oomguard_malloc(16, 7, nullptr);
  // Sizes whose rounding once wrapped to a tiny block.
  for (std::size_t size : {SIZE_MAX, SIZE_MAX - 511, SIZE_MAX - (std::size_t{1} << 20)}) {
    EXPECT_EQ(oomguard_malloc(size, 0, nullptr), nullptr) << size;
    EXPECT_NE(std::string(oomguard_last_error()).find("larger than the most one request may ask"), std::string::npos)
        << oomguard_last_error();
  }
}

TEST(CApi, BadFreesAreRefusedWithoutCorruption) {
  void* p = oomguard_malloc(1000, 0, nullptr);
  ASSERT_NE(p, nullptr);
  oomguard_free(p, 1000, 1, nullptr);  // wrong device
  EXPECT_NE(std::string(oomguard_last_error()).find("allocated on device 0"), std::string::npos);
  oomguard_free(p, 1000, 0, nullptr);
  oomguard_free(p, 1000, 0, nullptr);  // double free
  EXPECT_NE(std::string(oomguard_last_error()).find("double free"), std::string::npos);
  const auto stats = nlohmann::json::parse(stats_json(0));
  EXPECT_EQ(stats["allocator"]["invalid_frees"], 1);  // the double free; the wrong-device one counts on device 1
  EXPECT_EQ(nlohmann::json::parse(stats_json(1))["allocator"]["invalid_frees"], 1);
  EXPECT_EQ(stats["allocator"]["allocated_bytes"], 0);
}

TEST(CApi, SnapshotAndTags) {
  EXPECT_EQ(oomguard_set_phase("forward"), 0);
  EXPECT_EQ(oomguard_set_phase("sideways"), -1);
  EXPECT_NE(std::string(oomguard_last_error()).find("sideways"), std::string::npos);
  EXPECT_EQ(oomguard_push_category("nonsense"), -1);
  oomguard_begin_step(3);
  void* p = oomguard_malloc(5000, 0, nullptr);
  const size_t needed = oomguard_snapshot_json(nullptr, 0);
  std::string text(needed + 1, '\0');
  oomguard_snapshot_json(text.data(), text.size());
  text.resize(needed);
  const auto snapshot = nlohmann::json::parse(text);
  ASSERT_EQ(snapshot["live_allocations"].size(), 1u);
  EXPECT_EQ(snapshot["live_allocations"][0]["category"], "activations");
  EXPECT_EQ(snapshot["live_allocations"][0]["step"], 3);
  EXPECT_EQ(snapshot["devices"].size(), 2u);
  EXPECT_FALSE(snapshot["events"].empty());
  oomguard_free(p, 5000, 0, nullptr);
  oomguard_set_phase("idle");
  oomguard_empty_cache();
  EXPECT_EQ(nlohmann::json::parse(stats_json(0))["allocator"]["reserved_bytes"], 0);
}
