// The VMM API (as torch's expandable segments use it) and stream-ordered
// pools (as torch's cudaMallocAsync backend uses them).
#include <cuda.h>
#include <gtest/gtest.h>

#include "driver_test_support.hpp"

using namespace oomguard::sim::testing;

namespace {

CUmemAllocationProp device_prop(int ordinal) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = ordinal;
  return prop;
}

class DriverVmm : public ::testing::Test {
 protected:
  void SetUp() override { use_device(0); }
};

TEST_F(DriverVmm, GranularityIsTwoMiB) {
  const CUmemAllocationProp prop = device_prop(0);
  size_t granularity = 0;
  ASSERT_CU_OK(cuMemGetAllocationGranularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
  EXPECT_EQ(kGranule, granularity);
  CUmemAllocationProp bad = prop;
  bad.location.id = 7;
  EXPECT_CU(CUDA_ERROR_INVALID_DEVICE, cuMemGetAllocationGranularity(&granularity, &bad,
                                                                     CU_MEM_ALLOC_GRANULARITY_MINIMUM));
}

// The expandable-segment sequence: reserve, then create/map/set-access
// chunks; unmap and release give the bytes back only once both are done.
TEST_F(DriverVmm, MapUnmapAndReleaseAccounting) {
  const std::uint64_t before = used_bytes();
  const CUmemAllocationProp prop = device_prop(0);
  CUdeviceptr base = 0;
  const size_t reserved = 64 * kGranule;
  ASSERT_CU_OK(cuMemAddressReserve(&base, reserved, 0, 0, 0));
  EXPECT_EQ(before, used_bytes());  // addresses cost nothing

  CUmemGenericAllocationHandle chunks[3] = {};
  for (int i = 0; i < 3; ++i) {
    ASSERT_CU_OK(cuMemCreate(&chunks[i], 10 * kGranule, &prop, 0));
    ASSERT_CU_OK(cuMemMap(base + i * 10 * kGranule, 10 * kGranule, 0, chunks[i], 0));
  }
  EXPECT_EQ(before + 30 * kGranule, used_bytes());
  CUmemAccessDesc access{};
  access.location = prop.location;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  ASSERT_CU_OK(cuMemSetAccess(base, 30 * kGranule, &access, 1));
  EXPECT_CU(CUDA_ERROR_ALREADY_MAPPED, cuMemMap(base + kGranule, 10 * kGranule, 0, chunks[0], 0));

  CUmemGenericAllocationHandle retained = 0;
  ASSERT_CU_OK(cuMemRetainAllocationHandle(&retained, reinterpret_cast<void*>(base + 15 * kGranule)));
  EXPECT_EQ(chunks[1], retained);
  CUmemAllocationProp read_back{};
  ASSERT_CU_OK(cuMemGetAllocationPropertiesFromHandle(&read_back, retained));
  EXPECT_EQ(0, read_back.location.id);
  ASSERT_CU_OK(cuMemRelease(retained));

  CUdeviceptr range_base = 0;
  size_t range_size = 0;
  ASSERT_CU_OK(cuMemGetAddressRange(&range_base, &range_size, base + 15 * kGranule));
  EXPECT_EQ(base + 10 * kGranule, range_base);
  EXPECT_EQ(10 * kGranule, range_size);

  // Released but still mapped: still charged.
  ASSERT_CU_OK(cuMemRelease(chunks[0]));
  EXPECT_EQ(before + 30 * kGranule, used_bytes());
  ASSERT_CU_OK(cuMemUnmap(base, 10 * kGranule));
  EXPECT_EQ(before + 20 * kGranule, used_bytes());
  // Unmapped but not released: still charged.
  ASSERT_CU_OK(cuMemUnmap(base + 10 * kGranule, 10 * kGranule));
  EXPECT_EQ(before + 20 * kGranule, used_bytes());
  ASSERT_CU_OK(cuMemRelease(chunks[1]));
  EXPECT_EQ(before + 10 * kGranule, used_bytes());
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemRelease(chunks[1]));  // gone
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemUnmap(base + 20 * kGranule, kGranule));  // part of a mapping
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemAddressFree(base, reserved));  // still mapped inside
  ASSERT_CU_OK(cuMemUnmap(base + 20 * kGranule, 10 * kGranule));
  ASSERT_CU_OK(cuMemRelease(chunks[2]));
  EXPECT_EQ(before, used_bytes());
  ASSERT_CU_OK(cuMemAddressFree(base, reserved));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemAddressFree(base, reserved));
}

TEST_F(DriverVmm, CreatePastCapacityIsRefusedWithOutOfMemory) {
  const CUmemAllocationProp prop = device_prop(0);
  const std::uint64_t free = free_bytes();
  CUmemGenericAllocationHandle all = 0;
  ASSERT_CU_OK(cuMemCreate(&all, free / kGranule * kGranule, &prop, 0));
  CUmemGenericAllocationHandle more = 0;
  EXPECT_CU(CUDA_ERROR_OUT_OF_MEMORY, cuMemCreate(&more, 2 * kGranule, &prop, 0));
  ASSERT_CU_OK(cuMemRelease(all));
  EXPECT_EQ(free, free_bytes());
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemCreate(&more, kGranule + 1, &prop, 0));  // not a granularity multiple
}

TEST_F(DriverVmm, BadHandlesAreRejected) {
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemRelease(0x1234));
  CUmemAllocationProp prop{};
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemGetAllocationPropertiesFromHandle(&prop, 0x1234));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemMap(0x1000, kGranule, 0, 0x1234, 0));
}

class DriverPools : public ::testing::Test {
 protected:
  void SetUp() override {
    use_device(0);
    ASSERT_CU_OK(cuDeviceGetDefaultMemPool(&pool_, 0));
  }
  cuuint64_t attribute(CUmemPool_attribute which) {
    cuuint64_t value = 0;
    EXPECT_EQ(CUDA_SUCCESS, cuMemPoolGetAttribute(pool_, which, &value));
    return value;
  }
  CUmemoryPool pool_ = nullptr;
};

// Note [Pools]: a freed block stays reserved and is reused before anything
// new is charged; synchronization or a trim releases it.
TEST_F(DriverPools, ReservedStaysUntilTrimmedAndIsReusedFirst) {
  CUstream stream = nullptr;
  ASSERT_CU_OK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  cuuint64_t keep_all = ~0ull;
  ASSERT_CU_OK(cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep_all));
  const std::uint64_t before = used_bytes();

  CUdeviceptr a = 0;
  ASSERT_CU_OK(cuMemAllocAsync(&a, 5 * kMiB, stream));
  EXPECT_EQ(6 * kMiB, attribute(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT));
  EXPECT_EQ(5 * kMiB, attribute(CU_MEMPOOL_ATTR_USED_MEM_CURRENT));
  EXPECT_EQ(before + 6 * kMiB, used_bytes());

  ASSERT_CU_OK(cuMemFreeAsync(a, stream));
  EXPECT_EQ(6 * kMiB, attribute(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT));
  EXPECT_EQ(0u, attribute(CU_MEMPOOL_ATTR_USED_MEM_CURRENT));
  EXPECT_EQ(5 * kMiB, attribute(CU_MEMPOOL_ATTR_USED_MEM_HIGH));

  CUdeviceptr b = 0;
  ASSERT_CU_OK(cuMemAllocAsync(&b, 4 * kMiB, stream));  // served from the freed block
  EXPECT_EQ(a, b);
  EXPECT_EQ(before + 6 * kMiB, used_bytes());
  ASSERT_CU_OK(cuStreamSynchronize(stream));  // the threshold keeps it
  EXPECT_EQ(6 * kMiB, attribute(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT));

  ASSERT_CU_OK(cuMemPoolTrimTo(pool_, 0));  // in use: not released
  EXPECT_EQ(6 * kMiB, attribute(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT));
  ASSERT_CU_OK(cuMemFreeAsync(b, stream));
  ASSERT_CU_OK(cuMemPoolTrimTo(pool_, 0));
  EXPECT_EQ(0u, attribute(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT));
  EXPECT_EQ(before, used_bytes());

  cuuint64_t zero = 0;
  ASSERT_CU_OK(cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_USED_MEM_HIGH, &zero));
  EXPECT_EQ(0u, attribute(CU_MEMPOOL_ATTR_USED_MEM_HIGH));
  cuuint64_t not_zero = 5;
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_USED_MEM_HIGH, &not_zero));
  ASSERT_CU_OK(cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &zero));
  ASSERT_CU_OK(cuStreamDestroy(stream));
}

TEST_F(DriverPools, ADefaultThresholdReleasesAtSynchronize) {
  cuuint64_t threshold = 1;
  ASSERT_CU_OK(cuMemPoolGetAttribute(pool_, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &threshold));
  ASSERT_EQ(0u, threshold);
  const std::uint64_t before = used_bytes();
  CUdeviceptr a = 0;
  ASSERT_CU_OK(cuMemAllocAsync(&a, 3 * kMiB, nullptr));
  ASSERT_CU_OK(cuMemFreeAsync(a, nullptr));
  EXPECT_EQ(before + 4 * kMiB, used_bytes());
  ASSERT_CU_OK(cuCtxSynchronize());
  EXPECT_EQ(before, used_bytes());
}

TEST_F(DriverPools, BlocksShareAChunkAndCoalesce) {
  cuuint64_t keep_all = ~0ull;
  ASSERT_CU_OK(cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep_all));
  CUdeviceptr a = 0;
  CUdeviceptr b = 0;
  ASSERT_CU_OK(cuMemAllocAsync(&a, 1000, nullptr));
  ASSERT_CU_OK(cuMemAllocAsync(&b, 1000, nullptr));
  EXPECT_EQ(kGranule, attribute(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT));
  EXPECT_EQ(2048u, attribute(CU_MEMPOOL_ATTR_USED_MEM_CURRENT));  // 512-byte blocks
  ASSERT_CU_OK(cuMemFreeAsync(a, nullptr));
  ASSERT_CU_OK(cuMemFreeAsync(b, nullptr));
  ASSERT_CU_OK(cuMemPoolTrimTo(pool_, 0));  // the chunk is whole again
  EXPECT_EQ(0u, attribute(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT));
  cuuint64_t zero = 0;
  ASSERT_CU_OK(cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &zero));
}

TEST_F(DriverPools, PoolAllocationPastCapacityIsRefusedWithOutOfMemory) {
  const std::uint64_t free = free_bytes();
  CUdeviceptr a = 0;
  EXPECT_CU(CUDA_ERROR_OUT_OF_MEMORY, cuMemAllocAsync(&a, free + 1, nullptr));
  ASSERT_CU_OK(cuMemAllocAsync(&a, free, nullptr));
  CUdeviceptr b = 0;
  EXPECT_CU(CUDA_ERROR_OUT_OF_MEMORY, cuMemAllocAsync(&b, 1, nullptr));
  ASSERT_CU_OK(cuMemFreeAsync(a, nullptr));
  ASSERT_CU_OK(cuMemPoolTrimTo(pool_, 0));
  EXPECT_EQ(free, free_bytes());
}

TEST_F(DriverPools, CreatedPoolsAreSeparateAndValidated) {
  CUmemPoolProps props{};
  props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  props.location.id = 0;
  CUmemoryPool mine = nullptr;
  ASSERT_CU_OK(cuMemPoolCreate(&mine, &props));
  CUdeviceptr a = 0;
  ASSERT_CU_OK(cuMemAllocFromPoolAsync(&a, kMiB, mine, nullptr));
  cuuint64_t reserved = 0;
  ASSERT_CU_OK(cuMemPoolGetAttribute(mine, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved));
  EXPECT_EQ(kGranule, reserved);
  EXPECT_EQ(0u, attribute(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT));
  ASSERT_CU_OK(cuMemFreeAsync(a, nullptr));
  ASSERT_CU_OK(cuMemPoolDestroy(mine));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemAllocFromPoolAsync(&a, kMiB, mine, nullptr));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemPoolDestroy(pool_));  // the default pool stays
}

}  // namespace
