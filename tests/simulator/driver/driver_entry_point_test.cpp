// cuGetProcAddress, the unsupported entry points, cuGetExportTable and the
// error names.
#include <cuda.h>
#include <gtest/gtest.h>

#include <string>

#include "driver_test_support.hpp"

using namespace oomguard::sim::testing;

namespace {

class DriverEntryPoints : public ::testing::Test {
 protected:
  void SetUp() override { use_device(0); }
};

// What torch 2.11's c10::cuda::DriverAPI and LazyNVRTC ask for, by base name.
TEST_F(DriverEntryPoints, TheNamesTorchAsksForResolveToImplementations) {
  const char* names[] = {"cuDevicePrimaryCtxGetState", "cuMemAddressReserve", "cuMemRelease", "cuMemMap",
                         "cuMemAddressFree", "cuMemSetAccess", "cuMemUnmap", "cuMemCreate",
                         "cuMemGetAllocationGranularity", "cuMemsetD32Async", "cuStreamWriteValue32",
                         "cuGetErrorString", "cuCtxGetCurrent", "cuCtxSetCurrent", "cuModuleLoadData",
                         "cuModuleGetFunction", "cuLaunchKernel", "cuFuncGetAttribute", "cuFuncSetAttribute",
                         "cuOccupancyMaxActiveBlocksPerMultiprocessor", "cuPointerGetAttribute",
                         "cuMemRetainAllocationHandle", "cuMemGetAllocationPropertiesFromHandle", "cuLinkCreate",
                         "cuLinkAddData", "cuLinkComplete", "cuMemAlloc", "cuStreamGetCaptureInfo",
                         "cuDeviceGetUuid", "cuGraphInstantiate", "cuMemAllocAsync", "cuMemPoolTrimTo"};
  for (const char* name : names) {
    void* function = nullptr;
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    ASSERT_CU_OK(cuGetProcAddress(name, &function, 12080, CU_GET_PROC_ADDRESS_DEFAULT, &status)) << name;
    EXPECT_EQ(CU_GET_PROC_ADDRESS_SUCCESS, status) << name;
    ASSERT_NE(nullptr, function) << name;
  }
  void* function = nullptr;
  ASSERT_CU_OK(cuGetProcAddress("cuMemAlloc", &function, 13000, 0, nullptr));
  EXPECT_EQ(reinterpret_cast<void*>(&cuMemAlloc_v2), function);
  ASSERT_CU_OK(cuGetProcAddress("cuStreamGetCaptureInfo", &function, 13000, 0, nullptr));
  EXPECT_EQ(reinterpret_cast<void*>(&cuStreamGetCaptureInfo_v3), function);
  ASSERT_CU_OK(cuGetProcAddress("cuGraphInstantiate", &function, 13000, 0, nullptr));
  EXPECT_EQ(reinterpret_cast<void*>(&cuGraphInstantiateWithFlags), function);
  // An older caller gets the older signature.
  void* older = nullptr;
  ASSERT_CU_OK(cuGetProcAddress("cuStreamGetCaptureInfo", &older, 12000, 0, nullptr));
  EXPECT_NE(function, older);
  // Through the returned pointer, the call works.
  CUresult (*allocate)(CUdeviceptr*, size_t) = nullptr;
  ASSERT_CU_OK(cuGetProcAddress("cuMemAlloc", reinterpret_cast<void**>(&allocate), 13000, 0, nullptr));
  CUdeviceptr pointer = 0;
  ASSERT_CU_OK(allocate(&pointer, 100));
  ASSERT_CU_OK(cuMemFree(pointer));
}

TEST_F(DriverEntryPoints, UnknownNamesAreNotFound) {
  void* function = reinterpret_cast<void*>(1);
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SUCCESS;
  EXPECT_CU(CUDA_ERROR_NOT_FOUND, cuGetProcAddress("cuNoSuchFunction", &function, 13000, 0, &status));
  EXPECT_EQ(nullptr, function);
  EXPECT_EQ(CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND, status);
}

TEST_F(DriverEntryPoints, UnsupportedEntryPointsReturnNotSupportedAndSaySo) {
  void* function = nullptr;
  ASSERT_CU_OK(cuGetProcAddress("cuArrayCreate", &function, 13000, 0, nullptr));
  ASSERT_NE(nullptr, function);
  ::testing::internal::CaptureStderr();
  const auto stub = reinterpret_cast<CUresult (*)()>(function);
  EXPECT_CU(CUDA_ERROR_NOT_SUPPORTED, stub());
  EXPECT_CU(CUDA_ERROR_NOT_SUPPORTED, stub());
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, log.find("driver: cuArrayCreate_v2 is not simulated")) << log;
  EXPECT_EQ(log.find("cuArrayCreate_v2"), log.rfind("cuArrayCreate_v2")) << "logged once: " << log;
  CUarray array = nullptr;
  CUDA_ARRAY_DESCRIPTOR descriptor{};
  EXPECT_CU(CUDA_ERROR_NOT_SUPPORTED, cuArrayCreate(&array, &descriptor));  // the direct call too
}

TEST_F(DriverEntryPoints, ExportTablesAreRefusedWithAnExplanation) {
  ::testing::internal::CaptureStderr();
  const void* table = reinterpret_cast<const void*>(1);
  CUuuid id{};
  EXPECT_CU(CUDA_ERROR_NOT_SUPPORTED, cuGetExportTable(&table, &id));
  EXPECT_EQ(nullptr, table);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, log.find("links the CUDA runtime statically")) << log;
  EXPECT_NE(std::string::npos, log.find("cuDNN")) << log;
}

TEST(DriverErrors, NamesAndStringsOfTheRealCodes) {
  const char* text = nullptr;
  ASSERT_CU_OK(cuGetErrorName(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, &text));
  EXPECT_STREQ("CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", text);
  ASSERT_CU_OK(cuGetErrorString(CUDA_ERROR_OUT_OF_MEMORY, &text));
  EXPECT_STREQ("out of memory", text);
  ASSERT_CU_OK(cuGetErrorString(CUDA_ERROR_INVALID_VALUE, &text));
  EXPECT_STREQ("invalid argument", text);
  ASSERT_CU_OK(cuGetErrorName(CUDA_ERROR_UNKNOWN, &text));
  EXPECT_STREQ("CUDA_ERROR_UNKNOWN", text);
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuGetErrorName(static_cast<CUresult>(777), &text));
  EXPECT_EQ(nullptr, text);
}

}  // namespace
