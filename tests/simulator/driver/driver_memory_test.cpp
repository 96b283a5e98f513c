// Linear device memory, copies, host memory and pointer attributes of the
// simulated driver, under OOMGUARD_SIMULATE=A100-80GB,L4.
#include <cuda.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "driver_test_support.hpp"
#include "oomguard_sim/sim_api.h"

using namespace oomguard::sim::testing;

namespace {

constexpr std::uint64_t kA100Total = 81920 * kMiB;
constexpr std::uint64_t kL4Total = 23034 * kMiB;
constexpr std::uint64_t kContext = 384 * kMiB;

class DriverMemory : public ::testing::Test {
 protected:
  void SetUp() override { use_device(0); }
};

TEST_F(DriverMemory, ThePrimaryContextIsChargedAsUsedMemory) {
  size_t free = 0;
  size_t total = 0;
  ASSERT_CU_OK(cuMemGetInfo(&free, &total));
  EXPECT_EQ(kA100Total, total);
  EXPECT_EQ(kContext, total - free);
  unsigned flags = 0;
  int active = 0;
  ASSERT_CU_OK(cuDevicePrimaryCtxGetState(0, &flags, &active));
  EXPECT_EQ(1, active);
}

TEST_F(DriverMemory, AllocationsAreChargedInWholeGranules) {
  const std::uint64_t before = used_bytes();
  CUdeviceptr one_byte = 0;
  CUdeviceptr just_over = 0;
  CUdeviceptr exact = 0;
  ASSERT_CU_OK(cuMemAlloc(&one_byte, 1));
  EXPECT_EQ(before + kGranule, used_bytes());
  ASSERT_CU_OK(cuMemAlloc(&just_over, kGranule + 1));
  EXPECT_EQ(before + 3 * kGranule, used_bytes());
  ASSERT_CU_OK(cuMemAlloc(&exact, 8 * kGranule));
  EXPECT_EQ(before + 11 * kGranule, used_bytes());
  EXPECT_EQ(0u, one_byte % kGranule);
  EXPECT_NE(one_byte, just_over);
  ASSERT_CU_OK(cuMemFree(one_byte));
  ASSERT_CU_OK(cuMemFree(just_over));
  ASSERT_CU_OK(cuMemFree(exact));
  EXPECT_EQ(before, used_bytes());
}

TEST_F(DriverMemory, AllocationPastCapacityIsRefusedWithOutOfMemory) {
  const std::uint64_t free = free_bytes();
  CUdeviceptr all = 0;
  ASSERT_CU_OK(cuMemAlloc(&all, free));
  EXPECT_EQ(0u, free_bytes());
  CUdeviceptr more = 0;
  EXPECT_CU(CUDA_ERROR_OUT_OF_MEMORY, cuMemAlloc(&more, 1));
  ASSERT_CU_OK(cuMemFree(all));
  CUdeviceptr too_big = 0;
  EXPECT_CU(CUDA_ERROR_OUT_OF_MEMORY, cuMemAlloc(&too_big, free + 1));
  EXPECT_EQ(free, free_bytes());
}

TEST_F(DriverMemory, BadFreesAndZeroSizesAreRejected) {
  CUdeviceptr pointer = 0;
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemAlloc(&pointer, 0));
  ASSERT_CU_OK(cuMemAlloc(&pointer, 4096));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemFree(pointer + 256));  // interior pointer
  ASSERT_CU_OK(cuMemFree(pointer));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemFree(pointer));  // double free
  int host = 0;
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemFree(reinterpret_cast<CUdeviceptr>(&host)));
  EXPECT_CU(CUDA_SUCCESS, cuMemFree(0));
}

TEST_F(DriverMemory, AddressRangeOfAnInteriorPointer) {
  CUdeviceptr pointer = 0;
  ASSERT_CU_OK(cuMemAlloc(&pointer, 10000));
  CUdeviceptr base = 0;
  size_t size = 0;
  ASSERT_CU_OK(cuMemGetAddressRange(&base, &size, pointer + 1234));
  EXPECT_EQ(pointer, base);
  EXPECT_EQ(10000u, size);
  ASSERT_CU_OK(cuMemFree(pointer));
  EXPECT_CU(CUDA_ERROR_NOT_FOUND, cuMemGetAddressRange(&base, &size, pointer));
}

TEST_F(DriverMemory, DeviceToHostCopiesWriteTheFillByteAndOtherCopiesBehave) {
  // Larger than a kept copy (Note [Copied values]): dropped.
  constexpr std::size_t kLarge = 128 * 1024;
  CUdeviceptr device = 0;
  ASSERT_CU_OK(cuMemAlloc(&device, kLarge));
  std::vector<unsigned char> host(kLarge, 0x5a);
  ASSERT_CU_OK(cuMemcpyHtoD(device, host.data(), host.size()));
  ASSERT_CU_OK(cuMemcpyDtoH(host.data(), device, host.size()));
  for (unsigned char byte : host) ASSERT_EQ(0, byte);  // OOMGUARD_SIM_FILL defaults to 0
  std::vector<unsigned char> source(64, 0x11);
  std::vector<unsigned char> destination(64, 0);
  ASSERT_CU_OK(cuMemcpy(reinterpret_cast<CUdeviceptr>(destination.data()),
                        reinterpret_cast<CUdeviceptr>(source.data()), 64));  // host to host: real
  EXPECT_EQ(source, destination);
  std::fill(destination.begin(), destination.end(), 0x77);
  ASSERT_CU_OK(cuMemcpy(reinterpret_cast<CUdeviceptr>(destination.data()), device, 32));  // unified: D2H
  EXPECT_EQ(0, destination[0]);
  EXPECT_EQ(0, destination[31]);
  EXPECT_EQ(0x77, destination[32]);
  ASSERT_CU_OK(cuMemcpyDtoD(device, device, 64));
  ASSERT_CU_OK(cuMemsetD8(device, 0xff, 64));  // dropped, and no fault
  ASSERT_CU_OK(cuMemsetD32Async(device, 7, 16, nullptr));
  ASSERT_CU_OK(cuMemcpyDtoHAsync(host.data(), device, 8, nullptr));
  EXPECT_EQ(0, host[0]);
  ASSERT_CU_OK(cuMemFree(device));
}

TEST_F(DriverMemory, SmallCopiesInAreKeptUntilTheNextKernel) {
  CUdeviceptr device = 0;
  ASSERT_CU_OK(cuMemAlloc(&device, 4096));
  const std::vector<unsigned char> shapes{1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_CU_OK(cuMemcpyHtoD(device + 100, shapes.data(), shapes.size()));
  std::vector<unsigned char> back(16, 0x77);
  ASSERT_CU_OK(cuMemcpyDtoH(back.data(), device + 96, back.size()));
  // The fill byte around the kept bytes, the kept bytes where they were put.
  EXPECT_EQ(std::vector<unsigned char>({0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0}), back);

  // A device-to-device copy carries them; a memset over part of them forgets that part.
  ASSERT_CU_OK(cuMemcpyDtoD(device + 1000, device + 100, 8));
  ASSERT_CU_OK(cuMemsetD8(device + 1002, 0xff, 2));
  ASSERT_CU_OK(cuMemcpyDtoH(back.data(), device + 1000, 8));
  EXPECT_EQ(std::vector<unsigned char>({1, 2, 0, 0, 5, 6, 7, 8}), std::vector<unsigned char>(back.begin(), back.begin() + 8));

  // A kernel may have written anything: after one, every kept byte reads as the fill byte.
  CUmodule module = nullptr;
  CUfunction function = nullptr;
  static const char kImage[] = "not a real cubin";
  ASSERT_CU_OK(cuModuleLoadData(&module, kImage));
  ASSERT_CU_OK(cuModuleGetFunction(&function, module, "writes_anything"));
  ASSERT_CU_OK(cuLaunchKernel(function, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr));
  ASSERT_CU_OK(cuMemcpyDtoH(back.data(), device + 96, back.size()));
  EXPECT_EQ(std::vector<unsigned char>(16, 0), back);
  ASSERT_CU_OK(cuMemFree(device));
}

TEST_F(DriverMemory, TwoDimensionalCopiesFillRowByRow) {
  CUdeviceptr device = 0;
  ASSERT_CU_OK(cuMemAlloc(&device, 4096));
  std::vector<unsigned char> host(4 * 16, 0x33);
  CUDA_MEMCPY2D copy{};
  copy.srcMemoryType = CU_MEMORYTYPE_DEVICE;
  copy.srcDevice = device;
  copy.srcPitch = 512;
  copy.dstMemoryType = CU_MEMORYTYPE_HOST;
  copy.dstHost = host.data();
  copy.dstPitch = 16;
  copy.WidthInBytes = 8;
  copy.Height = 4;
  ASSERT_CU_OK(cuMemcpy2D(&copy));
  for (int row = 0; row < 4; ++row) {
    EXPECT_EQ(0, host[row * 16 + 7]);
    EXPECT_EQ(0x33, host[row * 16 + 8]);  // beyond the width: untouched
  }
  ASSERT_CU_OK(cuMemFree(device));
}

using DriverMemoryDeathTest = DriverMemory;

TEST_F(DriverMemoryDeathTest, AHostDereferenceOfDeviceMemoryFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  CUdeviceptr device = 0;
  ASSERT_CU_OK(cuMemAlloc(&device, 4096));
  EXPECT_DEATH(
      {
        volatile char* bytes = reinterpret_cast<volatile char*>(device);
        bytes[0] = 1;
      },
      "");
  ASSERT_CU_OK(cuMemFree(device));
}

TEST_F(DriverMemory, PinnedHostMemoryIsRealAndKnownToPointerAttributes) {
  void* pinned = nullptr;
  ASSERT_CU_OK(cuMemHostAlloc(&pinned, 1 << 20, CU_MEMHOSTALLOC_PORTABLE));
  std::memset(pinned, 0x42, 1 << 20);  // real, writable memory
  unsigned type = 0;
  ASSERT_CU_OK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                     reinterpret_cast<CUdeviceptr>(pinned) + 100));
  EXPECT_EQ(CU_MEMORYTYPE_HOST, type);
  CUdeviceptr mapped = 0;
  ASSERT_CU_OK(cuMemHostGetDevicePointer(&mapped, pinned, 0));
  EXPECT_EQ(reinterpret_cast<CUdeviceptr>(pinned), mapped);
  ASSERT_CU_OK(cuMemFreeHost(pinned));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE,
            cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, reinterpret_cast<CUdeviceptr>(pinned)));
}

TEST_F(DriverMemory, PointerAttributesTellDeviceRegisteredAndUnregisteredMemoryApart) {
  CUdeviceptr device = 0;
  ASSERT_CU_OK(cuMemAlloc(&device, 3 * kMiB));
  unsigned type = 0;
  int ordinal = -1;
  CUdeviceptr start = 0;
  size_t size = 0;
  ASSERT_CU_OK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, device + 5));
  ASSERT_CU_OK(cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, device + 5));
  ASSERT_CU_OK(cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, device + 5));
  ASSERT_CU_OK(cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, device + 5));
  EXPECT_EQ(CU_MEMORYTYPE_DEVICE, type);
  EXPECT_EQ(0, ordinal);
  EXPECT_EQ(device, start);
  EXPECT_EQ(3 * kMiB, size);

  std::vector<char> pageable(8192);
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                                            reinterpret_cast<CUdeviceptr>(pageable.data())));
  // The plural query succeeds and reports memory type 0 (unregistered).
  CUpointer_attribute attributes[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_DEVICE_POINTER};
  unsigned plural_type = 99;
  CUdeviceptr device_pointer = 1;
  void* values[] = {&plural_type, &device_pointer};
  ASSERT_CU_OK(cuPointerGetAttributes(2, attributes, values, reinterpret_cast<CUdeviceptr>(pageable.data())));
  EXPECT_EQ(0u, plural_type);
  EXPECT_EQ(0u, device_pointer);

  ASSERT_CU_OK(cuMemHostRegister(pageable.data(), pageable.size(), 0));
  ASSERT_CU_OK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                     reinterpret_cast<CUdeviceptr>(pageable.data()) + 10));
  EXPECT_EQ(CU_MEMORYTYPE_HOST, type);
  EXPECT_CU(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, cuMemHostRegister(pageable.data(), 16, 0));
  ASSERT_CU_OK(cuMemHostUnregister(pageable.data()));
  EXPECT_CU(CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, cuMemHostUnregister(pageable.data()));
  ASSERT_CU_OK(cuMemFree(device));
}

TEST_F(DriverMemory, EachDeviceHasItsOwnPropertiesAndCharges) {
  int count = 0;
  ASSERT_CU_OK(cuDeviceGetCount(&count));
  ASSERT_EQ(2, count);
  char name[256];
  ASSERT_CU_OK(cuDeviceGetName(name, sizeof name, 1));
  EXPECT_STREQ("NVIDIA L4", name);
  size_t total = 0;
  ASSERT_CU_OK(cuDeviceTotalMem(&total, 1));
  EXPECT_EQ(kL4Total, total);
  int major = 0;
  int minor = 0;
  int sms = 0;
  ASSERT_CU_OK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 1));
  ASSERT_CU_OK(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 1));
  ASSERT_CU_OK(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 1));
  EXPECT_EQ(8, major);
  EXPECT_EQ(9, minor);
  EXPECT_EQ(58, sms);
  CUuuid a{};
  CUuuid b{};
  ASSERT_CU_OK(cuDeviceGetUuid(&a, 0));
  ASSERT_CU_OK(cuDeviceGetUuid(&b, 1));
  EXPECT_NE(0, std::memcmp(a.bytes, b.bytes, sizeof a.bytes));
  char bus0[32];
  char bus1[32];
  ASSERT_CU_OK(cuDeviceGetPCIBusId(bus0, sizeof bus0, 0));
  ASSERT_CU_OK(cuDeviceGetPCIBusId(bus1, sizeof bus1, 1));
  EXPECT_STRNE(bus0, bus1);
  CUdevice by_bus = -1;
  ASSERT_CU_OK(cuDeviceGetByPCIBusId(&by_bus, bus1));
  EXPECT_EQ(1, by_bus);

  const std::uint64_t used_on_0 = used_bytes();
  use_device(1);
  EXPECT_EQ(kContext, used_bytes());
  CUdeviceptr on_1 = 0;
  ASSERT_CU_OK(cuMemAlloc(&on_1, 100 * kMiB));
  int ordinal = -1;
  ASSERT_CU_OK(cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, on_1));
  EXPECT_EQ(1, ordinal);
  EXPECT_EQ(kContext + 100 * kMiB, used_bytes());
  std::uint64_t used = 0;
  std::uint64_t peak = 0;
  std::uint64_t sim_total = 0;
  ASSERT_EQ(0, oomguard_sim_memory(1, &used, &peak, &sim_total));
  EXPECT_EQ(kContext + 100 * kMiB, used);
  EXPECT_EQ(kL4Total, sim_total);
  ASSERT_CU_OK(cuMemFree(on_1));
  use_device(0);
  EXPECT_EQ(used_on_0, used_bytes());
}

TEST_F(DriverMemory, DeviceAttributesArePlausibleForTheArchitecture) {
  auto attribute = [](CUdevice_attribute which, int ordinal = 0) {
    int value = -1;
    EXPECT_EQ(CUDA_SUCCESS, cuDeviceGetAttribute(&value, which, ordinal));
    return value;
  };
  EXPECT_EQ(32, attribute(CU_DEVICE_ATTRIBUTE_WARP_SIZE));
  EXPECT_EQ(1024, attribute(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK));
  EXPECT_EQ(108, attribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT));
  EXPECT_EQ(40 * 1024 * 1024, attribute(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE));
  EXPECT_EQ(163 * 1024, attribute(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN));
  EXPECT_EQ(2048, attribute(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR));
  EXPECT_EQ(1536, attribute(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, 1));  // Ada
  EXPECT_EQ(1, attribute(CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING));
  EXPECT_EQ(1, attribute(CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED));
  EXPECT_EQ(1, attribute(CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED));
  int value = 0;
  EXPECT_CU(CUDA_ERROR_INVALID_DEVICE, cuDeviceGetAttribute(&value, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 2));
}

// Note [Device locking]: threads allocating and freeing on one device at
// once leave exact totals.
TEST_F(DriverMemory, ConcurrentAllocationsAndFreesLeaveExactTotals) {
  const std::uint64_t before = used_bytes();
  CUcontext context = nullptr;
  ASSERT_CU_OK(cuCtxGetCurrent(&context));
  std::uint64_t peak_before = 0;
  ASSERT_EQ(0, oomguard_sim_memory(0, nullptr, &peak_before, nullptr));
  constexpr int kThreads = 4;
  constexpr int kRounds = 2000;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  std::vector<std::uint64_t> kept(kThreads, 0);
  std::vector<std::vector<CUdeviceptr>> survivors(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      cuCtxSetCurrent(context);
      std::mt19937 random(static_cast<unsigned>(t));
      std::vector<CUdeviceptr> live;
      for (int i = 0; i < kRounds; ++i) {
        if (live.empty() || random() % 3 != 0) {
          CUdeviceptr pointer = 0;
          const std::size_t size = 1 + random() % (6 * kMiB);
          if (cuMemAlloc(&pointer, size) != CUDA_SUCCESS) ++failures[t];
          live.push_back(pointer);
        } else {
          const std::size_t index = random() % live.size();
          if (cuMemFree(live[index]) != CUDA_SUCCESS) ++failures[t];
          live.erase(live.begin() + static_cast<std::ptrdiff_t>(index));
        }
      }
      // Keep a known amount: one 2 MiB granule per thread.
      for (CUdeviceptr pointer : live) {
        if (cuMemFree(pointer) != CUDA_SUCCESS) ++failures[t];
      }
      CUdeviceptr keep = 0;
      if (cuMemAlloc(&keep, 1) != CUDA_SUCCESS) ++failures[t];
      survivors[t].push_back(keep);
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(0, failures[t]) << "thread " << t;
  EXPECT_EQ(before + kThreads * kGranule, used_bytes());
  for (auto& list : survivors) {
    for (CUdeviceptr pointer : list) ASSERT_CU_OK(cuMemFree(pointer));
  }
  EXPECT_EQ(before, used_bytes());
  std::uint64_t peak_after = 0;
  ASSERT_EQ(0, oomguard_sim_memory(0, nullptr, &peak_after, nullptr));
  EXPECT_GE(peak_after, before + kGranule);
}

}  // namespace
