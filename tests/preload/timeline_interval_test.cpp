// The preload timeline's rate limit grows with the run (timeline.hpp), so a
// long run's file grows with the logarithm of its length.
#include <gtest/gtest.h>

#include <cmath>

#include "timeline.hpp"

using namespace oomguard::preload;

TEST(PreloadTimelineInterval, AMillisecondEarlyThenAFixedShareOfTheRunsAge) {
  constexpr std::int64_t kSecond = 1'000'000'000;
  EXPECT_EQ(row_interval_ns(0), kMinRowIntervalNs);
  EXPECT_EQ(row_interval_ns(kSecond), kMinRowIntervalNs);
  EXPECT_EQ(row_interval_ns(100 * kSecond), 100 * kSecond / kRowsPerElapsed);
  // Rows a day of steady churn writes at most: one per interval.
  double rows = 0;
  for (std::int64_t t = 0; t < 86400 * kSecond; t += row_interval_ns(t)) ++rows;
  EXPECT_LT(rows, 50000);
  EXPECT_GT(rows, 4000 * (1 + std::log(86400.0 / 4)) * 0.9);
}
