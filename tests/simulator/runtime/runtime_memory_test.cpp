// Memory through the runtime: stream-ordered allocation and pools, host
// memory, pointer attributes, copies (a device-to-host copy writes the fill
// byte) and symbols.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "oomguard_sim/sim_api.h"

namespace {

constexpr std::size_t kMiB = 1ull << 20;

std::uint64_t charged(int device) {
  std::uint64_t used = 0;
  EXPECT_EQ(oomguard_sim_memory(device, &used, nullptr, nullptr), 0);
  return used;
}

TEST(RuntimeMemory, MallocAsyncServesFromTheDefaultPoolAndFreeAsyncReturnsToIt) {
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  cudaMemPool_t pool = nullptr;
  ASSERT_EQ(cudaDeviceGetDefaultMemPool(&pool, 0), cudaSuccess);
  ASSERT_NE(pool, nullptr);
  std::uint64_t keep_everything = UINT64_MAX;
  ASSERT_EQ(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_everything), cudaSuccess);

  const std::uint64_t before = charged(0);
  void* block = nullptr;
  ASSERT_EQ(cudaMallocAsync(&block, 10 * kMiB, stream), cudaSuccess);
  ASSERT_NE(block, nullptr);
  std::uint64_t used = 0;
  std::uint64_t reserved = 0;
  ASSERT_EQ(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used), cudaSuccess);
  ASSERT_EQ(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved), cudaSuccess);
  EXPECT_GE(used, 10 * kMiB);
  EXPECT_GE(reserved, used);
  EXPECT_EQ(charged(0) - before, reserved);

  ASSERT_EQ(cudaFreeAsync(block, stream), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  ASSERT_EQ(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used), cudaSuccess);
  EXPECT_EQ(used, 0u);
  ASSERT_EQ(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved), cudaSuccess);
  EXPECT_GT(reserved, 0u);  // kept: the threshold says so

  ASSERT_EQ(cudaMemPoolTrimTo(pool, 0), cudaSuccess);
  ASSERT_EQ(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved), cudaSuccess);
  EXPECT_EQ(reserved, 0u);
  EXPECT_EQ(charged(0), before);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

TEST(RuntimeMemory, MallocAsyncPastCapacityIsMemoryAllocation) {
  void* block = nullptr;
  EXPECT_EQ(cudaMallocAsync(&block, 64ull << 30, nullptr), cudaErrorMemoryAllocation);
  EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation);
}

TEST(RuntimeMemory, PointerAttributesTellDeviceHostAndUnregistered) {
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  void* device = nullptr;
  ASSERT_EQ(cudaMalloc(&device, kMiB), cudaSuccess);
  void* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(&pinned, kMiB), cudaSuccess);
  int pageable = 0;

  cudaPointerAttributes attributes{};
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, device), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeDevice);
  EXPECT_EQ(attributes.device, 1);
  EXPECT_EQ(attributes.devicePointer, device);
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, pinned), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeHost);
  EXPECT_EQ(attributes.hostPointer, pinned);
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, &pageable), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeUnregistered);

  ASSERT_EQ(cudaHostRegister(&pageable, sizeof pageable, cudaHostRegisterDefault), cudaSuccess);
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, &pageable), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeHost);
  EXPECT_EQ(cudaHostUnregister(&pageable), cudaSuccess);

  EXPECT_EQ(cudaFreeHost(pinned), cudaSuccess);
  EXPECT_EQ(cudaFree(device), cudaSuccess);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
}

TEST(RuntimeMemory, DeviceToHostCopiesWriteTheFillByteAndHostCopiesAreReal) {
  void* device = nullptr;
  ASSERT_EQ(cudaMalloc(&device, 4096), cudaSuccess);
  std::vector<unsigned char> host(4096, 0xAB);
  ASSERT_EQ(cudaMemcpy(device, host.data(), host.size(), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemset(device, 7, host.size()), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(host.data(), device, host.size(), cudaMemcpyDeviceToHost), cudaSuccess);
  const auto fill = static_cast<unsigned char>(oomguard_sim_fill_byte());
  for (unsigned char byte : host) ASSERT_EQ(byte, fill);

  std::vector<unsigned char> source(64, 0x5A);
  std::vector<unsigned char> destination(64, 0);
  ASSERT_EQ(cudaMemcpy(destination.data(), source.data(), 64, cudaMemcpyHostToHost), cudaSuccess);
  EXPECT_EQ(destination, source);

  EXPECT_EQ(cudaMemcpy(host.data(), device, 16, static_cast<cudaMemcpyKind>(7)), cudaErrorInvalidMemcpyDirection);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidMemcpyDirection);
  EXPECT_EQ(cudaFree(device), cudaSuccess);
}

TEST(RuntimeMemory, ZeroByteMallocIsSuccessAndNull) {
  void* pointer = reinterpret_cast<void*>(1);
  EXPECT_EQ(cudaMalloc(&pointer, 0), cudaSuccess);
  EXPECT_EQ(pointer, nullptr);
  EXPECT_EQ(cudaFree(pointer), cudaSuccess);
}

}  // namespace

extern "C" void __cudaRegisterVar(void**, char*, char*, const char*, int, std::size_t, int, int);

namespace {

// What nvcc's registration code does for `__device__ float table[64];`.
float g_table_shadow[64];

TEST(RuntimeMemory, RegisteredVariablesHaveADeviceAddressAndSize) {
  __cudaRegisterVar(nullptr, reinterpret_cast<char*>(g_table_shadow), nullptr, "table", 0, sizeof g_table_shadow, 0,
                    0);
  void* address = nullptr;
  ASSERT_EQ(cudaGetSymbolAddress(&address, g_table_shadow), cudaSuccess);
  cudaPointerAttributes attributes{};
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, address), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeDevice);
  std::size_t size = 0;
  ASSERT_EQ(cudaGetSymbolSize(&size, g_table_shadow), cudaSuccess);
  EXPECT_EQ(size, sizeof g_table_shadow);
  float values[64] = {};
  EXPECT_EQ(cudaMemcpyToSymbol(g_table_shadow, values, sizeof values, 0, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemcpyToSymbol(g_table_shadow, values, sizeof values, 4, cudaMemcpyHostToDevice),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  int unregistered = 0;
  EXPECT_EQ(cudaGetSymbolAddress(&address, &unregistered), cudaErrorInvalidSymbol);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidSymbol);
}

}  // namespace
