// The simulated driver's configuration (docs/simulator.md,
// "Configuration"). The driver reads its environment once, so each test
// runs its configuration in a child process (gtest's threadsafe death-test
// style re-executes this program) and checks what the child printed and
// how it exited.
#include <cuda.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "driver_test_support.hpp"
#include "oomguard_sim/sim_api.h"

using namespace oomguard::sim::testing;

namespace {

// In the child: exits 0 if every check held, else prints which did not.
#define CHILD_CHECK(condition)                                  \
  do {                                                          \
    if (!(condition)) {                                         \
      std::fprintf(stderr, "child check failed: %s\n", #condition); \
      std::exit(3);                                             \
    }                                                           \
  } while (0)

void child_expects_init(const char* variable, const char* value, CUresult expected) {
  ::setenv(variable, value, 1);
  const CUresult result = cuInit(0);
  CHILD_CHECK(result == expected);
  int count = -1;
  // After a failed cuInit every call says the driver is not initialized.
  if (expected != CUDA_SUCCESS) CHILD_CHECK(cuDeviceGetCount(&count) == CUDA_ERROR_NOT_INITIALIZED);
  std::exit(0);
}

class DriverConfigDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(DriverConfigDeathTest, AnUnknownDeviceNameIsRefusedWithTheAcceptedNames) {
  EXPECT_EXIT(child_expects_init("OOMGUARD_SIMULATE", "Z100", CUDA_ERROR_INVALID_VALUE), ::testing::ExitedWithCode(0),
              "OOMGUARD_SIMULATE='Z100'.*not a device.*N x NAME.*A100-80GB.*H200");
}

TEST_F(DriverConfigDeathTest, ABadCountIsRefused) {
  EXPECT_EXIT(child_expects_init("OOMGUARD_SIMULATE", "0xA100-80GB", CUDA_ERROR_INVALID_VALUE),
              ::testing::ExitedWithCode(0), "OOMGUARD_SIMULATE='0xA100-80GB'.*N from 1 to 64");
}

TEST_F(DriverConfigDeathTest, ABadMemorySizeIsRefusedWithTheAcceptedUnits) {
  EXPECT_EXIT(child_expects_init("OOMGUARD_SIM_MEMORY", "lots", CUDA_ERROR_INVALID_VALUE),
              ::testing::ExitedWithCode(0), "OOMGUARD_SIM_MEMORY='lots'.*MiB, GiB.*8GiB");
}

TEST_F(DriverConfigDeathTest, AMemorySizeBelowTheContextIsRefused) {
  EXPECT_EXIT(child_expects_init("OOMGUARD_SIM_MEMORY", "100MiB", CUDA_ERROR_INVALID_VALUE),
              ::testing::ExitedWithCode(0), "OOMGUARD_SIM_MEMORY='100MiB' is too small.*384 MiB");
}

TEST_F(DriverConfigDeathTest, ABadFillByteIsRefused) {
  EXPECT_EXIT(child_expects_init("OOMGUARD_SIM_FILL", "256", CUDA_ERROR_INVALID_VALUE), ::testing::ExitedWithCode(0),
              "OOMGUARD_SIM_FILL='256'.*0 to 255");
}

TEST_F(DriverConfigDeathTest, ABadLogLevelIsRefused) {
  EXPECT_EXIT(child_expects_init("OOMGUARD_SIM_LOG", "loud", CUDA_ERROR_INVALID_VALUE), ::testing::ExitedWithCode(0),
              "OOMGUARD_SIM_LOG='loud'.*accepted 0");
}

TEST_F(DriverConfigDeathTest, AStatsPathInAMissingFolderIsRefused) {
  EXPECT_EXIT(child_expects_init("OOMGUARD_SIM_STATS", "/nonexistent-folder/stats.json", CUDA_ERROR_INVALID_VALUE),
              ::testing::ExitedWithCode(0), "OOMGUARD_SIM_STATS='/nonexistent-folder/stats.json'.*not writable");
}

TEST_F(DriverConfigDeathTest, CallsBeforeCuInitFail) {
  EXPECT_EXIT(
      {
        int count = -1;
        CHILD_CHECK(cuDeviceGetCount(&count) == CUDA_ERROR_NOT_INITIALIZED);
        CUdeviceptr pointer = 0;
        CHILD_CHECK(cuMemAlloc(&pointer, 1) == CUDA_ERROR_NOT_INITIALIZED);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(DriverConfigDeathTest, CountsAndListsExpandInOrder) {
  EXPECT_EXIT(
      {
        ::setenv("OOMGUARD_SIMULATE", "2 x H100-80GB, t4", 1);
        CHILD_CHECK(cuInit(0) == CUDA_SUCCESS);
        int count = 0;
        CHILD_CHECK(cuDeviceGetCount(&count) == CUDA_SUCCESS && count == 3);
        char name[256];
        CHILD_CHECK(cuDeviceGetName(name, sizeof name, 1) == CUDA_SUCCESS &&
                    std::string(name) == "NVIDIA H100 80GB HBM3");
        CHILD_CHECK(cuDeviceGetName(name, sizeof name, 2) == CUDA_SUCCESS && std::string(name) == "Tesla T4");
        struct oomguard_sim_device_info info{};
        CHILD_CHECK(oomguard_sim_device_info(2, &info) == 0 && std::string(info.table_name) == "T4" &&
                    info.physical_index == 2 && info.total_bytes == 15360 * kMiB);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(DriverConfigDeathTest, MemoryOverrideSetsEveryDevicesCapacity) {
  EXPECT_EXIT(
      {
        ::setenv("OOMGUARD_SIM_MEMORY", "8GiB", 1);
        use_device(1);
        size_t free = 0;
        size_t total = 0;
        CHILD_CHECK(cuMemGetInfo(&free, &total) == CUDA_SUCCESS);
        CHILD_CHECK(total == 8ull << 30 && total - free == 384 * kMiB);
        CUdeviceptr all = 0;
        CUdeviceptr more = 0;
        CHILD_CHECK(cuMemAlloc(&all, free) == CUDA_SUCCESS);
        CHILD_CHECK(cuMemAlloc(&more, 1) == CUDA_ERROR_OUT_OF_MEMORY);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "cuMemAlloc\\(1\\) on device 1 refused");
}

TEST_F(DriverConfigDeathTest, VisibleDevicesSelectAndReorder) {
  EXPECT_EXIT(
      {
        ::setenv("OOMGUARD_SIMULATE", "A100-80GB,L4,T4", 1);
        ::setenv("CUDA_VISIBLE_DEVICES", "2,0", 1);
        CHILD_CHECK(cuInit(0) == CUDA_SUCCESS);
        int count = 0;
        CHILD_CHECK(cuDeviceGetCount(&count) == CUDA_SUCCESS && count == 2);
        char name[256];
        CHILD_CHECK(cuDeviceGetName(name, sizeof name, 0) == CUDA_SUCCESS && std::string(name) == "Tesla T4");
        CHILD_CHECK(cuDeviceGetName(name, sizeof name, 1) == CUDA_SUCCESS &&
                    std::string(name) == "NVIDIA A100-SXM4-80GB");
        struct oomguard_sim_device_info info{};
        CHILD_CHECK(oomguard_sim_device_info(0, &info) == 0 && info.physical_index == 2);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(DriverConfigDeathTest, ThePhysicalListIgnoresVisibleDevicesAndSharesIdentities) {
  EXPECT_EXIT(
      {
        ::setenv("OOMGUARD_SIMULATE", "A100-80GB,L4,T4", 1);
        ::setenv("CUDA_VISIBLE_DEVICES", "1", 1);
        CHILD_CHECK(cuInit(0) == CUDA_SUCCESS);
        CHILD_CHECK(oomguard_sim_device_count() == 1);
        CHILD_CHECK(oomguard_sim_physical_device_count() == 3);
        struct oomguard_sim_device_info visible {};
        struct oomguard_sim_device_info physical {};
        CHILD_CHECK(oomguard_sim_device_info(0, &visible) == 0);
        CHILD_CHECK(oomguard_sim_physical_device_info(1, &physical) == 0);
        CHILD_CHECK(std::string(physical.table_name) == "L4" && physical.physical_index == 1);
        CHILD_CHECK(std::memcmp(visible.uuid, physical.uuid, sizeof visible.uuid) == 0);
        CHILD_CHECK(visible.pci_bus == physical.pci_bus);
        CUuuid uuid{};
        CHILD_CHECK(cuDeviceGetUuid(&uuid, 0) == CUDA_SUCCESS && std::memcmp(uuid.bytes, physical.uuid, 16) == 0);
        CHILD_CHECK(oomguard_sim_physical_device_info(0, &physical) == 0);
        CHILD_CHECK(std::memcmp(visible.uuid, physical.uuid, sizeof visible.uuid) != 0);
        CHILD_CHECK(oomguard_sim_physical_device_info(3, &physical) == -1);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(DriverConfigDeathTest, VisibleDevicesStopAtTheFirstBadEntry) {
  EXPECT_EXIT(
      {
        ::setenv("OOMGUARD_SIMULATE", "A100-80GB,L4,T4", 1);
        ::setenv("CUDA_VISIBLE_DEVICES", "1,7,0", 1);
        CHILD_CHECK(cuInit(0) == CUDA_SUCCESS);
        int count = 0;
        CHILD_CHECK(cuDeviceGetCount(&count) == CUDA_SUCCESS && count == 1);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "entry '7' is not the index");
}

TEST_F(DriverConfigDeathTest, NoVisibleDeviceMeansNoDevice) {
  EXPECT_EXIT(child_expects_init("CUDA_VISIBLE_DEVICES", "", CUDA_ERROR_NO_DEVICE), ::testing::ExitedWithCode(0),
              "CUDA_VISIBLE_DEVICES is empty");
  EXPECT_EXIT(child_expects_init("CUDA_VISIBLE_DEVICES", "5", CUDA_ERROR_NO_DEVICE), ::testing::ExitedWithCode(0),
              "entry '5'");
}

TEST_F(DriverConfigDeathTest, DeviceToHostCopiesWriteTheConfiguredFillByte) {
  EXPECT_EXIT(
      {
        ::setenv("OOMGUARD_SIM_FILL", "0xab", 1);
        use_device(0);
        CUdeviceptr device = 0;
        CHILD_CHECK(cuMemAlloc(&device, 16) == CUDA_SUCCESS);
        unsigned char host[16] = {};
        CHILD_CHECK(cuMemcpyDtoH(host, device, sizeof host) == CUDA_SUCCESS);
        CHILD_CHECK(host[0] == 0xab && host[15] == 0xab);
        CHILD_CHECK(oomguard_sim_fill_byte() == 0xab);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

int kernel_stub_a;
int kernel_stub_b;

TEST_F(DriverConfigDeathTest, ExitStatisticsAreWrittenAsJson) {
  const std::string path = ::testing::TempDir() + "oomguard_sim_driver_stats.json";
  std::remove(path.c_str());
  EXPECT_EXIT(
      {
        ::setenv("OOMGUARD_SIM_STATS", path.c_str(), 1);
        use_device(0);
        CUdeviceptr pointer = 0;
        CHILD_CHECK(cuMemAlloc(&pointer, 10 * kMiB) == CUDA_SUCCESS);
        CUdeviceptr too_big = 0;
        CHILD_CHECK(cuMemAlloc(&too_big, 1ull << 40) == CUDA_ERROR_OUT_OF_MEMORY);
        oomguard_sim_register_kernel(&kernel_stub_a, "void gemm_kernel<float>()");
        oomguard_sim_register_kernel(&kernel_stub_b, "elementwise\"quoted\"");
        for (int i = 0; i < 3; ++i) CHILD_CHECK(oomguard_sim_launch(&kernel_stub_a, 1, 1, 1, 128, 1, 1, 0, nullptr) == 0);
        oomguard_sim_count_launch(&kernel_stub_b);
        oomguard_sim_count_call("cublas", "cublasGemmEx");
        oomguard_sim_count_call("cublas", "cublasGemmEx");
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
  std::ifstream file(path);
  ASSERT_TRUE(file.good()) << path;
  std::stringstream text;
  text << file.rdbuf();
  const std::string json = text.str();
  EXPECT_NE(std::string::npos, json.find("\"simulated\": true")) << json;
  EXPECT_NE(std::string::npos, json.find("\"table_name\": \"A100-80GB\"")) << json;
  EXPECT_NE(std::string::npos, json.find("\"current_bytes\": " + std::to_string(384 * kMiB + 10 * kMiB))) << json;
  EXPECT_NE(std::string::npos, json.find("\"peak_bytes\": " + std::to_string(384 * kMiB + 10 * kMiB))) << json;
  EXPECT_NE(std::string::npos, json.find("\"allocations\": 1,")) << json;
  EXPECT_NE(std::string::npos, json.find("\"refusals\": 1}")) << json;
  EXPECT_NE(std::string::npos, json.find("\"void gemm_kernel<float>()\": 3")) << json;
  EXPECT_NE(std::string::npos, json.find("\"elementwise\\\"quoted\\\"\": 1")) << json;
  EXPECT_NE(std::string::npos, json.find("\"cublas:cublasGemmEx\": 2")) << json;
}

}  // namespace
