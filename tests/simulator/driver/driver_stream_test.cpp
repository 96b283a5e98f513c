// Streams, events, host functions, stream capture and graphs, modules and
// launches of the simulated driver.
#include <cuda.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "driver_test_support.hpp"
#include "oomguard_sim/sim_api.h"

using namespace oomguard::sim::testing;

namespace {

class DriverStreams : public ::testing::Test {
 protected:
  void SetUp() override { use_device(0); }
};

TEST_F(DriverStreams, StreamsKeepFlagsPrioritiesAndDistinctIds) {
  int least = 1;
  int greatest = 1;
  ASSERT_CU_OK(cuCtxGetStreamPriorityRange(&least, &greatest));
  EXPECT_EQ(0, least);
  EXPECT_EQ(-5, greatest);
  CUstream high = nullptr;
  CUstream low = nullptr;
  ASSERT_CU_OK(cuStreamCreateWithPriority(&high, CU_STREAM_NON_BLOCKING, -100));
  ASSERT_CU_OK(cuStreamCreate(&low, CU_STREAM_DEFAULT));
  int priority = 1;
  ASSERT_CU_OK(cuStreamGetPriority(high, &priority));
  EXPECT_EQ(-5, priority);  // clamped to the range, as on a GPU
  unsigned flags = 0;
  ASSERT_CU_OK(cuStreamGetFlags(high, &flags));
  EXPECT_EQ(static_cast<unsigned>(CU_STREAM_NON_BLOCKING), flags);
  unsigned long long id_high = 0;
  unsigned long long id_low = 0;
  ASSERT_CU_OK(cuStreamGetId(high, &id_high));
  ASSERT_CU_OK(cuStreamGetId(low, &id_low));
  EXPECT_NE(id_high, id_low);
  CUdevice device = -1;
  ASSERT_CU_OK(cuStreamGetDevice(low, &device));
  EXPECT_EQ(0, device);
  ASSERT_CU_OK(cuStreamQuery(high));
  ASSERT_CU_OK(cuStreamSynchronize(nullptr));
  ASSERT_CU_OK(cuStreamSynchronize(CU_STREAM_PER_THREAD));
  ASSERT_CU_OK(cuStreamDestroy(high));
  EXPECT_CU(CUDA_ERROR_INVALID_HANDLE, cuStreamQuery(high));  // destroyed
  EXPECT_CU(CUDA_ERROR_INVALID_HANDLE, cuStreamSynchronize(reinterpret_cast<CUstream>(0xdeadbeef)));
  EXPECT_CU(CUDA_ERROR_INVALID_HANDLE, cuStreamDestroy(reinterpret_cast<CUstream>(0xdeadbeef)));
  ASSERT_CU_OK(cuStreamDestroy(low));
}

TEST_F(DriverStreams, EventsTimeWithTheHostClock) {
  CUevent start = nullptr;
  CUevent end = nullptr;
  CUevent untimed = nullptr;
  ASSERT_CU_OK(cuEventCreate(&start, CU_EVENT_DEFAULT));
  ASSERT_CU_OK(cuEventCreate(&end, CU_EVENT_DEFAULT));
  ASSERT_CU_OK(cuEventCreate(&untimed, CU_EVENT_DISABLE_TIMING));
  float milliseconds = 0;
  EXPECT_CU(CUDA_ERROR_INVALID_HANDLE, cuEventElapsedTime(&milliseconds, start, end));  // not recorded
  ASSERT_CU_OK(cuEventRecord(start, nullptr));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_CU_OK(cuEventRecord(end, nullptr));
  ASSERT_CU_OK(cuEventQuery(end));
  ASSERT_CU_OK(cuEventSynchronize(end));
  ASSERT_CU_OK(cuEventElapsedTime(&milliseconds, start, end));
  EXPECT_GE(milliseconds, 19.0f);
  EXPECT_LT(milliseconds, 5000.0f);
  ASSERT_CU_OK(cuEventRecord(untimed, nullptr));
  EXPECT_CU(CUDA_ERROR_INVALID_HANDLE, cuEventElapsedTime(&milliseconds, start, untimed));
  ASSERT_CU_OK(cuEventDestroy(start));
  EXPECT_CU(CUDA_ERROR_INVALID_HANDLE, cuEventQuery(start));
  EXPECT_CU(CUDA_ERROR_INVALID_HANDLE, cuEventRecord(reinterpret_cast<CUevent>(0x10), nullptr));
  ASSERT_CU_OK(cuEventDestroy(end));
  ASSERT_CU_OK(cuEventDestroy(untimed));
}

TEST_F(DriverStreams, HostFunctionsRunByTheTimeTheStreamIsSynchronized) {
  int calls = 0;
  ASSERT_CU_OK(cuLaunchHostFunc(nullptr, [](void* data) { ++*static_cast<int*>(data); }, &calls));
  ASSERT_CU_OK(cuStreamSynchronize(nullptr));
  EXPECT_EQ(1, calls);
}

struct Kernel {
  CUmodule module = nullptr;
  CUfunction function = nullptr;
};

Kernel load_kernel(const char* name) {
  Kernel kernel;
  static const char kImage[] = "not a real cubin";
  EXPECT_EQ(CUDA_SUCCESS, cuModuleLoadData(&kernel.module, kImage));
  EXPECT_EQ(CUDA_SUCCESS, cuModuleGetFunction(&kernel.function, kernel.module, name));
  return kernel;
}

TEST_F(DriverStreams, LaunchesAreCheckedAgainstTheLimits) {
  const Kernel kernel = load_kernel("triton_poi_fused_add_0");
  ASSERT_CU_OK(cuLaunchKernel(kernel.function, 1024, 1, 1, 256, 1, 1, 0, nullptr, nullptr, nullptr));
  EXPECT_EQ(1u, oomguard_sim_kernel_launches("triton_poi_fused_add_0"));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE,
            cuLaunchKernel(kernel.function, 1, 1, 1, 2048, 1, 1, 0, nullptr, nullptr, nullptr));  // > 1024 threads
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE,
            cuLaunchKernel(kernel.function, 1, 1, 1, 32, 1, 1, 64 * 1024, nullptr, nullptr, nullptr));  // > 48 KiB
  ASSERT_CU_OK(cuFuncSetAttribute(kernel.function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 100 * 1024));
  ASSERT_CU_OK(cuLaunchKernel(kernel.function, 1, 1, 1, 32, 1, 1, 64 * 1024, nullptr, nullptr, nullptr));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE,
            cuFuncSetAttribute(kernel.function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 1 << 20));
  EXPECT_CU(CUDA_ERROR_INVALID_HANDLE, cuLaunchKernel(reinterpret_cast<CUfunction>(0x40), 1, 1, 1, 1, 1, 1, 0,
                                                      nullptr, nullptr, nullptr));
  int threads = 0;
  ASSERT_CU_OK(cuFuncGetAttribute(&threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, kernel.function));
  EXPECT_EQ(1024, threads);
  int blocks = 0;
  ASSERT_CU_OK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel.function, 256, 0));
  EXPECT_EQ(8, blocks);  // 2048 resident threads on an A100 SM
  ASSERT_CU_OK(cuModuleUnload(kernel.module));
  EXPECT_CU(CUDA_ERROR_INVALID_HANDLE, cuModuleUnload(kernel.module));
}

TEST_F(DriverStreams, CaptureRecordsLaunchesThatEachGraphLaunchCounts) {
  static int host_stub;
  oomguard_sim_register_kernel(&host_stub, "captured_kernel");
  const Kernel kernel = load_kernel("captured_driver_kernel");
  CUstream stream = nullptr;
  ASSERT_CU_OK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  ASSERT_CU_OK(cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
  ASSERT_CU_OK(cuStreamIsCapturing(stream, &status));
  EXPECT_EQ(CU_STREAM_CAPTURE_STATUS_ACTIVE, status);
  cuuint64_t id = 0;
  ASSERT_CU_OK(cuStreamGetCaptureInfo(stream, &status, &id, nullptr, nullptr, nullptr, nullptr));
  EXPECT_NE(0u, id);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(0, oomguard_sim_launch(&host_stub, 1, 1, 1, 64, 1, 1, 0, stream));
  ASSERT_CU_OK(cuLaunchKernel(kernel.function, 1, 1, 1, 64, 1, 1, 0, stream, nullptr, nullptr));
  CUgraph graph = nullptr;
  ASSERT_CU_OK(cuStreamEndCapture(stream, &graph));
  ASSERT_CU_OK(cuStreamIsCapturing(stream, &status));
  EXPECT_EQ(CU_STREAM_CAPTURE_STATUS_NONE, status);
  size_t nodes = 0;
  ASSERT_CU_OK(cuGraphGetNodes(graph, nullptr, &nodes));
  EXPECT_EQ(4u, nodes);
  // Nothing captured was counted as launched.
  EXPECT_EQ(0u, oomguard_sim_kernel_launches("captured_kernel"));
  EXPECT_EQ(0u, oomguard_sim_kernel_launches("captured_driver_kernel"));
  CUgraphExec exec = nullptr;
  ASSERT_CU_OK(cuGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < 5; ++i) ASSERT_CU_OK(cuGraphLaunch(exec, stream));
  EXPECT_EQ(15u, oomguard_sim_kernel_launches("captured_kernel"));
  EXPECT_EQ(5u, oomguard_sim_kernel_launches("captured_driver_kernel"));
  ASSERT_CU_OK(cuGraphExecDestroy(exec));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuGraphLaunch(exec, stream));
  ASSERT_CU_OK(cuGraphDestroy(graph));
  ASSERT_EQ(0, oomguard_sim_launch(&host_stub, 1, 1, 1, 64, 1, 1, 0, stream));  // not capturing: counted
  EXPECT_EQ(16u, oomguard_sim_kernel_launches("captured_kernel"));
  ASSERT_CU_OK(cuStreamDestroy(stream));
}

TEST_F(DriverStreams, UnsafeCallsInvalidateAGlobalCaptureUnlessTheThreadIsRelaxed) {
  CUstream stream = nullptr;
  ASSERT_CU_OK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  ASSERT_CU_OK(cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL));
  // The caching allocator's pattern: relax this thread around cudaMalloc.
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
  ASSERT_CU_OK(cuThreadExchangeStreamCaptureMode(&mode));
  EXPECT_EQ(CU_STREAM_CAPTURE_MODE_GLOBAL, mode);
  CUdeviceptr pointer = 0;
  ASSERT_CU_OK(cuMemAlloc(&pointer, kMiB));
  ASSERT_CU_OK(cuThreadExchangeStreamCaptureMode(&mode));
  EXPECT_EQ(CU_STREAM_CAPTURE_MODE_RELAXED, mode);
  CUgraph graph = nullptr;
  ASSERT_CU_OK(cuStreamEndCapture(stream, &graph));
  ASSERT_CU_OK(cuGraphDestroy(graph));

  ASSERT_CU_OK(cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL));
  EXPECT_CU(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, cuMemFree(pointer));
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
  ASSERT_CU_OK(cuStreamIsCapturing(stream, &status));
  EXPECT_EQ(CU_STREAM_CAPTURE_STATUS_INVALIDATED, status);
  EXPECT_CU(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, cuStreamEndCapture(stream, &graph));
  EXPECT_EQ(nullptr, graph);
  ASSERT_CU_OK(cuMemFree(pointer));  // no capture now
  ASSERT_CU_OK(cuStreamDestroy(stream));
}

TEST_F(DriverStreams, TheLegacyStreamCannotBeCaptured) {
  EXPECT_CU(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, cuStreamBeginCapture(nullptr, CU_STREAM_CAPTURE_MODE_GLOBAL));
}

TEST_F(DriverStreams, WaitingOnACapturedEventJoinsTheCapture) {
  CUstream origin = nullptr;
  CUstream side = nullptr;
  CUevent fork = nullptr;
  CUevent join = nullptr;
  ASSERT_CU_OK(cuStreamCreate(&origin, CU_STREAM_NON_BLOCKING));
  ASSERT_CU_OK(cuStreamCreate(&side, CU_STREAM_NON_BLOCKING));
  ASSERT_CU_OK(cuEventCreate(&fork, CU_EVENT_DISABLE_TIMING));
  ASSERT_CU_OK(cuEventCreate(&join, CU_EVENT_DISABLE_TIMING));
  const Kernel kernel = load_kernel("side_kernel");
  ASSERT_CU_OK(cuStreamBeginCapture(origin, CU_STREAM_CAPTURE_MODE_RELAXED));
  ASSERT_CU_OK(cuEventRecord(fork, origin));
  ASSERT_CU_OK(cuStreamWaitEvent(side, fork, 0));
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
  cuuint64_t origin_id = 0;
  cuuint64_t side_id = 0;
  ASSERT_CU_OK(cuStreamGetCaptureInfo(origin, &status, &origin_id, nullptr, nullptr, nullptr, nullptr));
  ASSERT_CU_OK(cuStreamGetCaptureInfo(side, &status, &side_id, nullptr, nullptr, nullptr, nullptr));
  EXPECT_EQ(CU_STREAM_CAPTURE_STATUS_ACTIVE, status);
  EXPECT_EQ(origin_id, side_id);
  ASSERT_CU_OK(cuLaunchKernel(kernel.function, 1, 1, 1, 1, 1, 1, 0, side, nullptr, nullptr));
  ASSERT_CU_OK(cuEventRecord(join, side));
  ASSERT_CU_OK(cuStreamWaitEvent(origin, join, 0));
  const CUgraphNode* dependencies = nullptr;
  size_t count = 0;
  ASSERT_CU_OK(cuStreamGetCaptureInfo(origin, &status, nullptr, nullptr, &dependencies, nullptr, &count));
  EXPECT_EQ(1u, count);
  CUgraph graph = nullptr;
  ASSERT_CU_OK(cuStreamEndCapture(origin, &graph));
  ASSERT_CU_OK(cuStreamIsCapturing(side, &status));
  EXPECT_EQ(CU_STREAM_CAPTURE_STATUS_NONE, status);
  size_t nodes = 0;
  ASSERT_CU_OK(cuGraphGetNodes(graph, nullptr, &nodes));
  EXPECT_EQ(1u, nodes);
  ASSERT_CU_OK(cuGraphDestroy(graph));
  ASSERT_CU_OK(cuStreamDestroy(origin));
  ASSERT_CU_OK(cuStreamDestroy(side));
}

TEST_F(DriverStreams, PoolAllocationsInACaptureBecomeGraphNodes) {
  CUstream stream = nullptr;
  ASSERT_CU_OK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  ASSERT_CU_OK(cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_RELAXED));
  CUdeviceptr pointer = 0;
  ASSERT_CU_OK(cuMemAllocAsync(&pointer, kMiB, stream));
  EXPECT_NE(0u, pointer);
  ASSERT_CU_OK(cuMemFreeAsync(pointer, stream));
  CUgraph graph = nullptr;
  ASSERT_CU_OK(cuStreamEndCapture(stream, &graph));
  CUgraphNode nodes[2] = {};
  size_t count = 2;
  ASSERT_CU_OK(cuGraphGetNodes(graph, nodes, &count));
  ASSERT_EQ(2u, count);
  CUgraphNodeType type{};
  ASSERT_CU_OK(cuGraphNodeGetType(nodes[0], &type));
  EXPECT_EQ(CU_GRAPH_NODE_TYPE_MEM_ALLOC, type);
  ASSERT_CU_OK(cuGraphNodeGetType(nodes[1], &type));
  EXPECT_EQ(CU_GRAPH_NODE_TYPE_MEM_FREE, type);
  ASSERT_CU_OK(cuGraphDestroy(graph));
  ASSERT_CU_OK(cuStreamDestroy(stream));
}

TEST_F(DriverStreams, ContextsStackPerThread) {
  CUcontext primary = nullptr;
  ASSERT_CU_OK(cuCtxGetCurrent(&primary));
  CUcontext other = nullptr;
  ASSERT_CU_OK(cuDevicePrimaryCtxRetain(&other, 1));
  ASSERT_CU_OK(cuCtxPushCurrent(other));
  CUdevice device = -1;
  ASSERT_CU_OK(cuCtxGetDevice(&device));
  EXPECT_EQ(1, device);
  std::thread([] {
    CUcontext none = reinterpret_cast<CUcontext>(1);
    EXPECT_EQ(CUDA_SUCCESS, cuCtxGetCurrent(&none));
    EXPECT_EQ(nullptr, none);  // a new thread has no current context
    CUdeviceptr pointer = 0;
    EXPECT_EQ(CUDA_ERROR_INVALID_CONTEXT, cuMemAlloc(&pointer, 1));
  }).join();
  CUcontext popped = nullptr;
  ASSERT_CU_OK(cuCtxPopCurrent(&popped));
  EXPECT_EQ(other, popped);
  ASSERT_CU_OK(cuCtxGetDevice(&device));
  EXPECT_EQ(0, device);
  EXPECT_CU(CUDA_ERROR_INVALID_CONTEXT, cuCtxSetCurrent(reinterpret_cast<CUcontext>(0x99)));
}

}  // namespace
