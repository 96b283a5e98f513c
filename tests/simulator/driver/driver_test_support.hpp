// Helpers shared by the simulated driver's tests.
#pragma once

#include <cuda.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace oomguard::sim::testing {

inline std::string error_name(CUresult result) {
  const char* name = nullptr;
  cuGetErrorName(result, &name);
  return name ? name : std::to_string(static_cast<int>(result));
}

#define EXPECT_CU(expected, call) EXPECT_EQ(error_name(expected), error_name(call))
#define ASSERT_CU_OK(call) ASSERT_EQ("CUDA_SUCCESS", error_name(call))

inline constexpr std::uint64_t kMiB = 1ull << 20;
inline constexpr std::uint64_t kGranule = 2 * kMiB;

// cuInit, then the primary context of `ordinal` made current on this
// thread, as the runtime does at a thread's first call.
inline CUcontext use_device(int ordinal) {
  EXPECT_EQ(CUDA_SUCCESS, cuInit(0));
  CUcontext context = nullptr;
  EXPECT_EQ(CUDA_SUCCESS, cuDevicePrimaryCtxRetain(&context, ordinal));
  EXPECT_EQ(CUDA_SUCCESS, cuCtxSetCurrent(context));
  return context;
}

// Bytes charged on the current device, as cuMemGetInfo reports them.
inline std::uint64_t used_bytes() {
  size_t free = 0;
  size_t total = 0;
  EXPECT_EQ(CUDA_SUCCESS, cuMemGetInfo(&free, &total));
  return total - free;
}

inline std::uint64_t free_bytes() {
  size_t free = 0;
  size_t total = 0;
  EXPECT_EQ(CUDA_SUCCESS, cuMemGetInfo(&free, &total));
  return free;
}

}  // namespace oomguard::sim::testing
