// The runtime's error codes: driver results translated, the per-thread
// last error (Note [Last error]), names and descriptions, and the
// unsupported calls.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "oomguard_sim/sim_api.h"

namespace {

constexpr std::size_t kGiB = 1ull << 30;

TEST(RuntimeErrors, MallocPastCapacityIsMemoryAllocationAndNotSticky) {
  ASSERT_EQ(cudaFree(nullptr), cudaSuccess);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  void* too_big = reinterpret_cast<void*>(1);
  EXPECT_EQ(cudaMalloc(&too_big, 9 * kGiB), cudaErrorMemoryAllocation);  // the devices hold 8 GiB
  EXPECT_EQ(too_big, nullptr);
  // Peek reads the last error and leaves it; Get reads and clears it.
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorMemoryAllocation);
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorMemoryAllocation);
  EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  // Not sticky: the next allocation that fits succeeds.
  void* fits = nullptr;
  ASSERT_EQ(cudaMalloc(&fits, 64 << 20), cudaSuccess);
  EXPECT_NE(fits, nullptr);
  EXPECT_EQ(cudaFree(fits), cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST(RuntimeErrors, FillingTheDeviceEndsInMemoryAllocation) {
  std::vector<void*> blocks;
  cudaError_t last = cudaSuccess;
  for (int i = 0; i < 16 && last == cudaSuccess; ++i) {
    void* block = nullptr;
    last = cudaMalloc(&block, 1 * kGiB);
    if (last == cudaSuccess) blocks.push_back(block);
  }
  EXPECT_EQ(last, cudaErrorMemoryAllocation);
  // What the device holds less the context's charge, in whole blocks.
  struct oomguard_sim_device_info info {};
  ASSERT_EQ(oomguard_sim_device_info(0, &info), 0);
  EXPECT_EQ(blocks.size(), (info.total_bytes - info.context_bytes) / kGiB);
  for (void* block : blocks) EXPECT_EQ(cudaFree(block), cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation);
}

TEST(RuntimeErrors, LastErrorIsPerThread) {
  void* pointer = nullptr;
  ASSERT_EQ(cudaMalloc(&pointer, 100 * kGiB), cudaErrorMemoryAllocation);
  cudaError_t seen_by_other_thread = cudaErrorUnknown;
  std::thread([&] { seen_by_other_thread = cudaPeekAtLastError(); }).join();
  EXPECT_EQ(seen_by_other_thread, cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation);
}

TEST(RuntimeErrors, FreeOfAForeignPointerIsInvalidValue) {
  int host = 0;
  EXPECT_EQ(cudaFree(&host), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
}

TEST(RuntimeErrors, EveryCodeHasANameAndADescription) {
  std::set<std::string> names;
  for (int code = 0; code <= 1000; ++code) {
    const std::string name = cudaGetErrorName(static_cast<cudaError_t>(code));
    const std::string description = cudaGetErrorString(static_cast<cudaError_t>(code));
    EXPECT_EQ(name.rfind("cuda", 0), 0u) << code;
    EXPECT_FALSE(description.empty()) << code;
    if (name != "cudaErrorUnknown") {
      EXPECT_TRUE(names.insert(name).second) << name << " twice";
    }
  }
  EXPECT_GT(names.size(), 120u);
  EXPECT_STREQ(cudaGetErrorName(cudaErrorMemoryAllocation), "cudaErrorMemoryAllocation");
  EXPECT_STREQ(cudaGetErrorString(cudaErrorMemoryAllocation), "out of memory");
  EXPECT_STREQ(cudaGetErrorString(cudaSuccess), "no error");
  EXPECT_STREQ(cudaGetErrorName(cudaErrorNotSupported), "cudaErrorNotSupported");
  EXPECT_STREQ(cudaGetErrorName(static_cast<cudaError_t>(9999)), "cudaErrorUnknown");
  EXPECT_STREQ(cudaGetErrorString(static_cast<cudaError_t>(9999)), "unknown error");
}

TEST(RuntimeErrors, UnsupportedCallIsNotSupportedAndLoggedOnce) {
  void* device = nullptr;
  ASSERT_EQ(cudaMalloc(&device, 1 << 20), cudaSuccess);
  cudaIpcMemHandle_t handle{};
  testing::internal::CaptureStderr();
  EXPECT_EQ(cudaIpcGetMemHandle(&handle, device), cudaErrorNotSupported);
  EXPECT_EQ(cudaIpcGetMemHandle(&handle, device), cudaErrorNotSupported);
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(cudaGetLastError(), cudaErrorNotSupported);
  std::size_t lines = 0;
  for (std::size_t at = log.find("cudaIpcGetMemHandle"); at != std::string::npos;
       at = log.find("cudaIpcGetMemHandle", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 1u) << log;
  EXPECT_NE(log.find("cudart"), std::string::npos) << log;
  EXPECT_NE(log.find("not simulated"), std::string::npos) << log;
  EXPECT_EQ(cudaFree(device), cudaSuccess);
}

}  // namespace
