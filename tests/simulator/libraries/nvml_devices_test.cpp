// NVML on two simulated devices (an A100-80GB and an H100-80GB): what each
// is, how it is found, and its memory as the driver charges it.
#include <cuda.h>
#include <gtest/gtest.h>
#include <oomguard_sim/sim_api.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "nvml_abi.h"

extern "C" {
// The entry points under test, declared as callers see them (nvml.h).
nvmlReturn_t nvmlInit_v2();
nvmlReturn_t nvmlInit();
nvmlReturn_t nvmlShutdown();
const char* nvmlErrorString(nvmlReturn_t);
nvmlReturn_t nvmlSystemGetDriverVersion(char*, unsigned int);
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int*);
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int*);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int, nvmlDevice_t*);
nvmlReturn_t nvmlDeviceGetHandleByUUID(const char*, nvmlDevice_t*);
nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char*, nvmlDevice_t*);
nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t, unsigned int*);
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t, char*, unsigned int);
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t, char*, unsigned int);
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t, nvmlPciInfo_t*);
nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t, int*, int*);
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t, nvmlMemory_t*);
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t, nvmlMemory_v2_t*);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t, unsigned int*, nvmlProcessInfo_v1_t*);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t, unsigned int*, nvmlProcessInfo_t*);
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t, nvmlTemperatureSensors_t, unsigned int*);
nvmlReturn_t nvmlDeviceGetGpuFabricInfoV(nvmlDevice_t, nvmlGpuFabricInfoV_t*);
nvmlReturn_t nvmlDeviceGetNvLinkRemoteDeviceType(nvmlDevice_t, unsigned int, nvmlIntNvLinkDeviceType_t*);
}

namespace {

constexpr unsigned long long kMiB = 1ULL << 20;

class NvmlTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS); }
  void TearDown() override { EXPECT_EQ(nvmlShutdown(), NVML_SUCCESS); }

  static nvmlDevice_t device(unsigned int index) {
    nvmlDevice_t handle = nullptr;
    EXPECT_EQ(nvmlDeviceGetHandleByIndex_v2(index, &handle), NVML_SUCCESS);
    return handle;
  }
};

TEST(NvmlLifetime, CallsBeforeInitAndAfterShutdownAreUninitialized) {
  unsigned int count = 0;
  EXPECT_EQ(nvmlDeviceGetCount_v2(&count), NVML_ERROR_UNINITIALIZED);
  EXPECT_EQ(nvmlShutdown(), NVML_ERROR_UNINITIALIZED);
  ASSERT_EQ(nvmlInit(), NVML_SUCCESS);  // v1, what torch's ctypes path calls
  ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);
  EXPECT_EQ(nvmlShutdown(), NVML_SUCCESS);
  EXPECT_EQ(nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);  // one init still outstanding
  EXPECT_EQ(nvmlShutdown(), NVML_SUCCESS);
  EXPECT_EQ(nvmlDeviceGetCount_v2(&count), NVML_ERROR_UNINITIALIZED);
  EXPECT_STREQ(nvmlErrorString(NVML_ERROR_UNINITIALIZED), "Uninitialized");
}

TEST_F(NvmlTest, CountsNamesAndCapabilities) {
  unsigned int count = 0;
  ASSERT_EQ(nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
  ASSERT_EQ(count, 2u);
  char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
  ASSERT_EQ(nvmlDeviceGetName(device(0), name, sizeof name), NVML_SUCCESS);
  EXPECT_STREQ(name, "NVIDIA A100-SXM4-80GB");
  ASSERT_EQ(nvmlDeviceGetName(device(1), name, sizeof name), NVML_SUCCESS);
  EXPECT_STREQ(name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(nvmlDeviceGetName(device(1), name, 4), NVML_ERROR_INSUFFICIENT_SIZE);
  int major = 0, minor = 0;
  ASSERT_EQ(nvmlDeviceGetCudaComputeCapability(device(1), &major, &minor), NVML_SUCCESS);
  EXPECT_EQ(major, 9);
  EXPECT_EQ(minor, 0);
  nvmlDevice_t none = nullptr;
  EXPECT_EQ(nvmlDeviceGetHandleByIndex_v2(2, &none), NVML_ERROR_INVALID_ARGUMENT);
  unsigned int index = 9;
  ASSERT_EQ(nvmlDeviceGetIndex(device(1), &index), NVML_SUCCESS);
  EXPECT_EQ(index, 1u);
  int stray = 0;
  EXPECT_EQ(nvmlDeviceGetName(reinterpret_cast<nvmlDevice_t>(&stray), name, sizeof name), NVML_ERROR_INVALID_ARGUMENT);
}

TEST_F(NvmlTest, UuidsAreTheDriversAndFindTheirDevice) {
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  for (unsigned int i = 0; i < 2; ++i) {
    CUdevice cu = 0;
    ASSERT_EQ(cuDeviceGet(&cu, static_cast<int>(i)), CUDA_SUCCESS);
    CUuuid uuid;
    ASSERT_EQ(cuDeviceGetUuid(&uuid, cu), CUDA_SUCCESS);
    const auto* b = reinterpret_cast<const unsigned char*>(uuid.bytes);
    char expected[64];
    std::snprintf(expected, sizeof expected,
                  "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
                  b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    char text[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    ASSERT_EQ(nvmlDeviceGetUUID(device(i), text, sizeof text), NVML_SUCCESS);
    EXPECT_STREQ(text, expected);
    nvmlDevice_t found = nullptr;
    ASSERT_EQ(nvmlDeviceGetHandleByUUID(text, &found), NVML_SUCCESS);
    EXPECT_EQ(found, device(i));
  }
  nvmlDevice_t found = nullptr;
  EXPECT_EQ(nvmlDeviceGetHandleByUUID("GPU-00000000-0000-0000-0000-000000000000", &found), NVML_ERROR_NOT_FOUND);
}

// c10 finds a CUDA device's NVML handle by the PCI bus id it formats from
// cudaGetDeviceProperties (pciDomainID, pciBusID, pciDeviceID).
TEST_F(NvmlTest, PciBusIdsAreTheDriversAndFindTheirDevice) {
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  for (unsigned int i = 0; i < 2; ++i) {
    CUdevice cu = 0;
    ASSERT_EQ(cuDeviceGet(&cu, static_cast<int>(i)), CUDA_SUCCESS);
    int domain = -1, bus = -1, dev = -1;
    ASSERT_EQ(cuDeviceGetAttribute(&domain, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, cu), CUDA_SUCCESS);
    ASSERT_EQ(cuDeviceGetAttribute(&bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, cu), CUDA_SUCCESS);
    ASSERT_EQ(cuDeviceGetAttribute(&dev, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, cu), CUDA_SUCCESS);
    char c10_form[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
    std::snprintf(c10_form, sizeof c10_form, NVML_DEVICE_PCI_BUS_ID_FMT, static_cast<unsigned>(domain),
                  static_cast<unsigned>(bus), static_cast<unsigned>(dev));
    nvmlDevice_t found = nullptr;
    ASSERT_EQ(nvmlDeviceGetHandleByPciBusId_v2(c10_form, &found), NVML_SUCCESS) << c10_form;
    EXPECT_EQ(found, device(i));
    nvmlPciInfo_t pci;
    ASSERT_EQ(nvmlDeviceGetPciInfo_v3(device(i), &pci), NVML_SUCCESS);
    EXPECT_STREQ(pci.busId, c10_form);
    EXPECT_EQ(pci.bus, static_cast<unsigned>(bus));
    EXPECT_EQ(pci.pciDeviceId & 0xffffu, 0x10deu);
    char legacy[32];
    std::snprintf(legacy, sizeof legacy, "%04x:%02x:%02x.0", static_cast<unsigned>(domain),
                  static_cast<unsigned>(bus), static_cast<unsigned>(dev));
    ASSERT_EQ(nvmlDeviceGetHandleByPciBusId_v2(legacy, &found), NVML_SUCCESS) << legacy;
    EXPECT_EQ(found, device(i));
  }
  nvmlDevice_t found = nullptr;
  EXPECT_EQ(nvmlDeviceGetHandleByPciBusId_v2("00000000:FE:00.0", &found), NVML_ERROR_NOT_FOUND);
  EXPECT_EQ(nvmlDeviceGetHandleByPciBusId_v2("not a bus id", &found), NVML_ERROR_INVALID_ARGUMENT);
}

TEST_F(NvmlTest, MemoryIsWhatTheDriverCharged) {
  nvmlMemory_t before;
  ASSERT_EQ(nvmlDeviceGetMemoryInfo(device(0), &before), NVML_SUCCESS);
  EXPECT_EQ(before.total, 81920 * kMiB);
  EXPECT_EQ(before.free + before.used, before.total);

  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  CUdevice cu = 0;
  ASSERT_EQ(cuDeviceGet(&cu, 0), CUDA_SUCCESS);
  CUcontext context = nullptr;
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&context, cu), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSetCurrent(context), CUDA_SUCCESS);
  std::uint64_t charged = 0, peak = 0, total = 0;
  ASSERT_EQ(oomguard_sim_memory(0, &charged, &peak, &total), 0);
  CUdeviceptr block = 0;
  ASSERT_EQ(cuMemAlloc(&block, 256 * kMiB), CUDA_SUCCESS);

  nvmlMemory_t after;
  ASSERT_EQ(nvmlDeviceGetMemoryInfo(device(0), &after), NVML_SUCCESS);
  EXPECT_EQ(after.used, charged + 256 * kMiB);  // the context's charge and the block
  EXPECT_GT(after.used, 256 * kMiB);
  EXPECT_EQ(after.free, after.total - after.used);
  nvmlMemory_v2_t v2{};
  v2.version = nvmlMemory_v2;
  ASSERT_EQ(nvmlDeviceGetMemoryInfo_v2(device(0), &v2), NVML_SUCCESS);
  EXPECT_EQ(v2.used, after.used);
  EXPECT_EQ(v2.reserved, 0u);
  v2.version = 1;
  EXPECT_EQ(nvmlDeviceGetMemoryInfo_v2(device(0), &v2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  nvmlMemory_t other;
  ASSERT_EQ(nvmlDeviceGetMemoryInfo(device(1), &other), NVML_SUCCESS);
  EXPECT_EQ(other.used, 0u);  // nothing of this process's is on the H100
  EXPECT_EQ(other.total, 81559 * kMiB);

  // This process is the one using device 0, with what NVML reports as used.
  unsigned int count = 0;
  EXPECT_EQ(nvmlDeviceGetComputeRunningProcesses(device(0), &count, nullptr), NVML_ERROR_INSUFFICIENT_SIZE);
  EXPECT_EQ(count, 1u);
  nvmlProcessInfo_v1_t v1[4];
  count = 4;
  ASSERT_EQ(nvmlDeviceGetComputeRunningProcesses(device(0), &count, v1), NVML_SUCCESS);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(v1[0].pid, static_cast<unsigned>(getpid()));
  EXPECT_EQ(v1[0].usedGpuMemory, after.used);
  nvmlProcessInfo_t v3[4];
  count = 4;
  ASSERT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(device(0), &count, v3), NVML_SUCCESS);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(v3[0].usedGpuMemory, after.used);
  count = 4;
  ASSERT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(device(1), &count, v3), NVML_SUCCESS);
  EXPECT_EQ(count, 0u);

  ASSERT_EQ(cuMemFree(block), CUDA_SUCCESS);
  ASSERT_EQ(nvmlDeviceGetMemoryInfo(device(0), &after), NVML_SUCCESS);
  EXPECT_EQ(after.used, charged);
  cuDevicePrimaryCtxRelease(cu);
}

TEST_F(NvmlTest, DriverVersionsAgreeWithTheDriver) {
  char version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
  ASSERT_EQ(nvmlSystemGetDriverVersion(version, sizeof version), NVML_SUCCESS);
  EXPECT_NE(std::string(version).find('.'), std::string::npos);
  int nvml_cuda = 0, driver_cuda = 0;
  ASSERT_EQ(nvmlSystemGetCudaDriverVersion_v2(&nvml_cuda), NVML_SUCCESS);
  ASSERT_EQ(cuDriverGetVersion(&driver_cuda), CUDA_SUCCESS);
  EXPECT_EQ(nvml_cuda, driver_cuda);
  EXPECT_GE(nvml_cuda, 13000);
}

TEST_F(NvmlTest, NoSensorsNoNvLinkNoFabric) {
  unsigned int temperature = 0;
  EXPECT_EQ(nvmlDeviceGetTemperature(device(0), 0, &temperature), NVML_ERROR_NOT_SUPPORTED);
  nvmlIntNvLinkDeviceType_t type = 0;
  EXPECT_EQ(nvmlDeviceGetNvLinkRemoteDeviceType(device(0), 0, &type), NVML_ERROR_NOT_SUPPORTED);
  nvmlGpuFabricInfoV_t fabric{};
  fabric.version = nvmlGpuFabricInfo_v2;
  fabric.state = 3;
  ASSERT_EQ(nvmlDeviceGetGpuFabricInfoV(device(0), &fabric), NVML_SUCCESS);  // c10 requires success
  EXPECT_EQ(fabric.state, NVML_GPU_FABRIC_STATE_NOT_SUPPORTED);
  EXPECT_EQ(fabric.version, nvmlGpuFabricInfo_v2);
}

}  // namespace
