// Kernel launches through the runtime: registration as nvcc's code does it,
// the checks of Note [Launch validation], capture into graphs, function
// attributes and occupancy.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <string>

extern "C" {
void** __cudaRegisterFatBinary(void*);
void __cudaRegisterFatBinaryEnd(void**);
void __cudaRegisterFunction(void**, const char*, char*, const char*, int, uint3*, uint3*, dim3*, dim3*, int*);
unsigned __cudaPushCallConfiguration(dim3, dim3, std::size_t, cudaStream_t);
cudaError_t __cudaPopCallConfiguration(dim3*, dim3*, std::size_t*, void*);
cudaError_t __cudaLaunchKernel(const void*, dim3, dim3, void**, std::size_t, cudaStream_t);
}

namespace {

// Host stubs: only their (distinct) addresses matter; distinct bodies keep
// the compiler from folding them into one.
volatile int g_stub_calls = 0;
void kernel_stub() { g_stub_calls = 1; }
void big_shared_stub() { g_stub_calls = 2; }
void unregistered_stub() { g_stub_calls = 3; }

class RuntimeLaunch : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    static char image[16];
    void** binary = __cudaRegisterFatBinary(image);
    __cudaRegisterFunction(binary, reinterpret_cast<const char*>(&kernel_stub), nullptr, "kernel_stub", -1, nullptr,
                           nullptr, nullptr, nullptr, nullptr);
    __cudaRegisterFunction(binary, reinterpret_cast<const char*>(&big_shared_stub), nullptr, "big_shared_stub", -1,
                           nullptr, nullptr, nullptr, nullptr, nullptr);
    __cudaRegisterFatBinaryEnd(binary);
  }
  void SetUp() override { ASSERT_EQ(cudaGetLastError(), cudaSuccess); }
};

TEST_F(RuntimeLaunch, AValidLaunchSucceeds) {
  void* args[] = {nullptr};
  EXPECT_EQ(cudaLaunchKernel(reinterpret_cast<const void*>(&kernel_stub), dim3(1024), dim3(256), args, 0, nullptr),
            cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST_F(RuntimeLaunch, BadBlockOrGridIsInvalidConfiguration) {
  const void* kernel = reinterpret_cast<const void*>(&kernel_stub);
  EXPECT_EQ(cudaLaunchKernel(kernel, dim3(1), dim3(2048), nullptr, 0, nullptr), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaLaunchKernel(kernel, dim3(1), dim3(32, 32, 2), nullptr, 0, nullptr), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaLaunchKernel(kernel, dim3(1), dim3(1, 1, 65), nullptr, 0, nullptr), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaLaunchKernel(kernel, dim3(0), dim3(32), nullptr, 0, nullptr), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaLaunchKernel(kernel, dim3(1, 70000), dim3(32), nullptr, 0, nullptr), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
}

TEST_F(RuntimeLaunch, TheTripleAngleBracketPathPopsWhatWasPushed) {
  ASSERT_EQ(__cudaPushCallConfiguration(dim3(4), dim3(2048), 0, nullptr), 0u);
  dim3 grid;
  dim3 block;
  std::size_t shared = 1;
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(1);
  ASSERT_EQ(__cudaPopCallConfiguration(&grid, &block, &shared, &stream), cudaSuccess);
  EXPECT_EQ(grid.x, 4u);
  EXPECT_EQ(block.x, 2048u);
  EXPECT_EQ(shared, 0u);
  EXPECT_EQ(stream, nullptr);
  // nvcc's stub discards the launch's return; the error is found later.
  (void)__cudaLaunchKernel(reinterpret_cast<const void*>(&kernel_stub), grid, block, nullptr, shared, stream);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(__cudaPopCallConfiguration(&grid, &block, &shared, &stream), cudaErrorMissingConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaErrorMissingConfiguration);
}

TEST_F(RuntimeLaunch, DynamicSharedMemoryAboveTheDefaultNeedsTheAttribute) {
  const void* kernel = reinterpret_cast<const void*>(&big_shared_stub);
  constexpr int kBytes = 96 << 10;
  EXPECT_EQ(cudaLaunchKernel(kernel, dim3(1), dim3(128), nullptr, kBytes, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  ASSERT_EQ(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes), cudaSuccess);
  EXPECT_EQ(cudaLaunchKernel(kernel, dim3(1), dim3(128), nullptr, kBytes, nullptr), cudaSuccess);
  cudaFuncAttributes attributes{};
  ASSERT_EQ(cudaFuncGetAttributes(&attributes, kernel), cudaSuccess);
  EXPECT_EQ(attributes.maxDynamicSharedSizeBytes, kBytes);
  EXPECT_EQ(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 1 << 30),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
}

TEST_F(RuntimeLaunch, AnInvalidStreamIsInvalidResourceHandle) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  EXPECT_EQ(cudaLaunchKernel(reinterpret_cast<const void*>(&kernel_stub), dim3(1), dim3(1), nullptr, 0, stream),
            cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidResourceHandle);
}

TEST_F(RuntimeLaunch, ALaunchOnACapturingStreamBecomesAKernelNode) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  const void* kernel = reinterpret_cast<const void*>(&kernel_stub);
  ASSERT_EQ(cudaLaunchKernel(kernel, dim3(8), dim3(128), nullptr, 0, stream), cudaSuccess);
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(8);
  config.blockDim = dim3(64);
  config.stream = stream;
  ASSERT_EQ(cudaLaunchKernelExC(&config, kernel, nullptr), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  cudaGraphNode_t nodes[4] = {};
  std::size_t count = 4;
  ASSERT_EQ(cudaGraphGetNodes(graph, nodes, &count), cudaSuccess);
  ASSERT_EQ(count, 2u);
  for (std::size_t i = 0; i < count; ++i) {
    cudaGraphNodeType type = cudaGraphNodeTypeEmpty;
    ASSERT_EQ(cudaGraphNodeGetType(nodes[i], &type), cudaSuccess);
    EXPECT_EQ(type, cudaGraphNodeTypeKernel);
  }
  std::size_t dependencies = 0;
  ASSERT_EQ(cudaGraphNodeGetDependencies(nodes[1], nullptr, nullptr, &dependencies), cudaSuccess);
  EXPECT_EQ(dependencies, 1u);  // the second launch follows the first
  EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

TEST_F(RuntimeLaunch, CooperativeGridsMustBeCoResident) {
  const void* kernel = reinterpret_cast<const void*>(&kernel_stub);
  int per_sm = 0;
  ASSERT_EQ(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, 1024, 0), cudaSuccess);
  EXPECT_EQ(per_sm, 2);  // 2048 threads per SM on an A100
  ASSERT_EQ(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, 128, 0), cudaSuccess);
  EXPECT_EQ(per_sm, 16);
  int sms = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  EXPECT_EQ(cudaLaunchCooperativeKernel(kernel, dim3(static_cast<unsigned>(2 * sms)), dim3(1024), nullptr, 0, nullptr),
            cudaSuccess);
  EXPECT_EQ(cudaLaunchCooperativeKernel(kernel, dim3(static_cast<unsigned>(2 * sms + 1)), dim3(1024), nullptr, 0,
                                        nullptr),
            cudaErrorCooperativeLaunchTooLarge);
  EXPECT_EQ(cudaGetLastError(), cudaErrorCooperativeLaunchTooLarge);
}

TEST_F(RuntimeLaunch, AttributesAndNamesOfRegisteredKernelsOnly) {
  cudaFuncAttributes attributes{};
  ASSERT_EQ(cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(&kernel_stub)), cudaSuccess);
  EXPECT_EQ(attributes.maxThreadsPerBlock, 1024);
  EXPECT_EQ(attributes.binaryVersion, 80);
  const char* name = nullptr;
  ASSERT_EQ(cudaFuncGetName(&name, reinterpret_cast<const void*>(&kernel_stub)), cudaSuccess);
  EXPECT_STREQ(name, "kernel_stub");
  EXPECT_EQ(cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(&unregistered_stub)),
            cudaErrorInvalidDeviceFunction);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidDeviceFunction);
}

}  // namespace
