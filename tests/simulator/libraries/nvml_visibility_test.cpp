// NVML enumerates every simulated device, also those CUDA_VISIBLE_DEVICES
// hides (Note [NVML sees every device]): run with OOMGUARD_SIMULATE=
// A100-80GB,H100-80GB and CUDA_VISIBLE_DEVICES=1, so CUDA sees the H100
// alone, as ordinal 0, and NVML sees both, the H100 at index 1.
#include <cuda.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "nvml_abi.h"

extern "C" {
nvmlReturn_t nvmlInit_v2();
nvmlReturn_t nvmlShutdown();
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int*);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int, nvmlDevice_t*);
nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char*, nvmlDevice_t*);
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t, char*, unsigned int);
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t, nvmlMemory_t*);
}

namespace {

TEST(NvmlVisibility, NvmlSeesTheDevicesCudaVisibleDevicesHides) {
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  int cuda_count = 0;
  ASSERT_EQ(cuDeviceGetCount(&cuda_count), CUDA_SUCCESS);
  ASSERT_EQ(cuda_count, 1);

  ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);
  unsigned int count = 0;
  ASSERT_EQ(nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
  EXPECT_EQ(count, 2u);
  nvmlDevice_t hidden = nullptr, visible = nullptr;
  ASSERT_EQ(nvmlDeviceGetHandleByIndex_v2(0, &hidden), NVML_SUCCESS);
  ASSERT_EQ(nvmlDeviceGetHandleByIndex_v2(1, &visible), NVML_SUCCESS);
  char name[96];
  ASSERT_EQ(nvmlDeviceGetName(hidden, name, sizeof name), NVML_SUCCESS);
  EXPECT_STREQ(name, "NVIDIA A100-SXM4-80GB");
  ASSERT_EQ(nvmlDeviceGetName(visible, name, sizeof name), NVML_SUCCESS);
  EXPECT_STREQ(name, "NVIDIA H100 80GB HBM3");

  // CUDA ordinal 0 is NVML's device 1: by its PCI address, as c10 looks it up.
  CUdevice cu = 0;
  ASSERT_EQ(cuDeviceGet(&cu, 0), CUDA_SUCCESS);
  int bus = -1;
  ASSERT_EQ(cuDeviceGetAttribute(&bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, cu), CUDA_SUCCESS);
  char bus_id[32];
  std::snprintf(bus_id, sizeof bus_id, NVML_DEVICE_PCI_BUS_ID_FMT, 0u, static_cast<unsigned>(bus), 0u);
  nvmlDevice_t found = nullptr;
  ASSERT_EQ(nvmlDeviceGetHandleByPciBusId_v2(bus_id, &found), NVML_SUCCESS);
  EXPECT_EQ(found, visible);

  // Memory charged through CUDA ordinal 0 shows on NVML's device 1.
  CUcontext context = nullptr;
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&context, cu), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSetCurrent(context), CUDA_SUCCESS);
  CUdeviceptr block = 0;
  ASSERT_EQ(cuMemAlloc(&block, 512u << 20), CUDA_SUCCESS);
  nvmlMemory_t memory;
  ASSERT_EQ(nvmlDeviceGetMemoryInfo(visible, &memory), NVML_SUCCESS);
  EXPECT_GE(memory.used, 512ull << 20);
  ASSERT_EQ(nvmlDeviceGetMemoryInfo(hidden, &memory), NVML_SUCCESS);
  EXPECT_EQ(memory.used, 0u);
  ASSERT_EQ(cuMemFree(block), CUDA_SUCCESS);
  cuDevicePrimaryCtxRelease(cu);
  EXPECT_EQ(nvmlShutdown(), NVML_SUCCESS);
}

}  // namespace
