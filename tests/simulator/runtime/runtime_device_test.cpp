// Devices: the per-thread current device and its primary context (Note
// [Current device]), properties from the driver's attributes, versions and
// driver entry points.
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "oomguard_sim/sim_api.h"

namespace {

TEST(RuntimeDevices, TwoDevicesAreVisible) {
  int count = 0;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  EXPECT_EQ(count, 2);
  EXPECT_EQ(cudaSetDevice(2), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaSetDevice(-1), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidDevice);
}

TEST(RuntimeDevices, CurrentDeviceIsPerThreadAndStartsAtZero) {
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  int in_thread_before = -1;
  int in_thread_after = -1;
  int in_fresh_thread = -1;
  int device_of_thread_allocation = -1;
  std::thread([&] {
    cudaGetDevice(&in_thread_before);
    cudaSetDevice(1);
    cudaGetDevice(&in_thread_after);
    void* pointer = nullptr;
    if (cudaMalloc(&pointer, 1 << 20) == cudaSuccess) {
      cudaPointerAttributes attributes{};
      if (cudaPointerGetAttributes(&attributes, pointer) == cudaSuccess) {
        device_of_thread_allocation = attributes.device;
      }
      cudaFree(pointer);
    }
  }).join();
  std::thread([&] { cudaGetDevice(&in_fresh_thread); }).join();
  int here = -1;
  ASSERT_EQ(cudaGetDevice(&here), cudaSuccess);
  EXPECT_EQ(in_thread_before, 0);
  EXPECT_EQ(in_thread_after, 1);
  EXPECT_EQ(device_of_thread_allocation, 1);
  EXPECT_EQ(in_fresh_thread, 0);
  EXPECT_EQ(here, 0);  // the other thread's cudaSetDevice did not move this one
}

TEST(RuntimeDevices, MemGetInfoShowsTheContextChargeAfterCudaFreeZero) {
  struct oomguard_sim_device_info info {};
  ASSERT_EQ(oomguard_sim_device_info(0, &info), 0);
  ASSERT_GT(info.context_bytes, 0u);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  ASSERT_EQ(cudaFree(nullptr), cudaSuccess);
  std::size_t free = 0;
  std::size_t total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free, &total), cudaSuccess);
  EXPECT_EQ(total, 8ull << 30);
  EXPECT_EQ(total - free, info.context_bytes);
  std::uint64_t used = 0;
  ASSERT_EQ(oomguard_sim_memory(0, &used, nullptr, nullptr), 0);
  EXPECT_EQ(used, info.context_bytes);
}

TEST(RuntimeDevices, PropertiesComeFromTheSimulatedModel) {
  struct oomguard_sim_device_info info {};
  ASSERT_EQ(oomguard_sim_device_info(1, &info), 0);
  cudaDeviceProp properties{};
  ASSERT_EQ(cudaGetDeviceProperties(&properties, 1), cudaSuccess);
  EXPECT_STREQ(properties.name, info.name);
  EXPECT_STREQ(properties.name, "NVIDIA A100-SXM4-80GB");
  EXPECT_EQ(properties.totalGlobalMem, info.total_bytes);
  EXPECT_EQ(properties.major, 8);
  EXPECT_EQ(properties.minor, 0);
  EXPECT_EQ(properties.multiProcessorCount, info.sm_count);
  EXPECT_EQ(properties.maxThreadsPerBlock, 1024);
  EXPECT_EQ(properties.warpSize, 32);
  EXPECT_EQ(std::memcmp(&properties.uuid, info.uuid, sizeof info.uuid), 0);
  EXPECT_EQ(properties.pciBusID, info.pci_bus);
  int sms = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 1), cudaSuccess);
  EXPECT_EQ(sms, info.sm_count);
  EXPECT_EQ(cudaGetDeviceProperties(&properties, 7), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidDevice);
}

TEST(RuntimeDevices, VersionsAre13) {
  int runtime = 0;
  int driver = 0;
  ASSERT_EQ(cudaRuntimeGetVersion(&runtime), cudaSuccess);
  ASSERT_EQ(cudaDriverGetVersion(&driver), cudaSuccess);
  EXPECT_EQ(runtime, 13000);
  EXPECT_GE(driver, 13000);
}

TEST(RuntimeDevices, DriverEntryPointsAreTheDriversFunctions) {
  void* function = nullptr;
  cudaDriverEntryPointQueryResult status = cudaDriverEntryPointSymbolNotFound;
  ASSERT_EQ(cudaGetDriverEntryPointByVersion("cuMemCreate", &function, 12000, cudaEnableDefault, &status),
            cudaSuccess);
  EXPECT_EQ(status, cudaDriverEntryPointSuccess);
  EXPECT_EQ(function, reinterpret_cast<void*>(&cuMemCreate));
  // Names torch's c10::cuda::DriverAPI asks for, for expandable segments.
  for (const char* name : {"cuMemAddressReserve", "cuMemMap", "cuMemSetAccess", "cuMemUnmap", "cuMemRelease",
                           "cuMemAddressFree", "cuMemGetAllocationGranularity", "cuDevicePrimaryCtxGetState"}) {
    function = nullptr;
    ASSERT_EQ(cudaGetDriverEntryPointByVersion(name, &function, 12000, cudaEnableDefault, &status), cudaSuccess);
    EXPECT_EQ(status, cudaDriverEntryPointSuccess) << name;
    EXPECT_NE(function, nullptr) << name;
  }
  function = reinterpret_cast<void*>(1);
  ASSERT_EQ(cudaGetDriverEntryPointByVersion("cuNoSuchFunction", &function, 12000, cudaEnableDefault, &status),
            cudaSuccess);
  EXPECT_EQ(status, cudaDriverEntryPointSymbolNotFound);
  EXPECT_EQ(function, nullptr);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace
