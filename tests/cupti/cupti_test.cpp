#include <gtest/gtest.h>

#include "oomguard/cupti_memory.hpp"

namespace oomguard::cupti {
namespace {

// Whatever the machine, starting gives one of the three states with a message
// saying which, and stopping afterwards is clean. It cannot tell "no GPU"
// from "profiler present" on its own; it checks the message matches the state.
TEST(CuptiMemoryTracking, StartsOrStepsAsideWithOneClearMessage) {
  const TrackingStatus status = start_memory_tracking();
  ASSERT_FALSE(status.message.empty());
  switch (status.state) {
    case TrackingState::active:
      EXPECT_NE(status.message.find("active"), std::string::npos);
      break;
    case TrackingState::another_subscriber:
      EXPECT_NE(status.message.find("steps aside"), std::string::npos) << status.message;
      break;
    case TrackingState::unavailable:
      EXPECT_NE(status.message.find("unavailable"), std::string::npos) << status.message;
      break;
  }
  EXPECT_EQ(tracking_status().state, status.state);
  stop_memory_tracking();
  stop_memory_tracking();  // twice is fine
  EXPECT_NE(tracking_status().state, TrackingState::active);
}

}  // namespace
}  // namespace oomguard::cupti
