// End to end: CUDA C++ compiled by nvcc. Its static constructors register
// the fat binary and `scale` with the stand-in runtime before main, and
// `<<<>>>` goes through __cudaPushCallConfiguration, __cudaPopCallConfiguration,
// __cudaGetKernel and __cudaLaunchKernel. The kernel never runs.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstring>

__global__ void scale(float* values, float factor, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) values[i] *= factor;
}

__device__ float g_bias[32];

namespace {

TEST(RuntimeNvcc, ARegisteredKernelLaunchesAndIsChecked) {
  float* values = nullptr;
  ASSERT_EQ(cudaMalloc(&values, 4096 * sizeof(float)), cudaSuccess);
  scale<<<16, 256>>>(values, 2.0f, 4096);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  scale<<<1, 4096>>>(values, 2.0f, 4096);  // more threads than a block holds
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaFree(values), cudaSuccess);
}

TEST(RuntimeNvcc, TheKernelIsKnownByItsMangledName) {
  cudaFuncAttributes attributes{};
  ASSERT_EQ(cudaFuncGetAttributes(&attributes, scale), cudaSuccess);
  EXPECT_EQ(attributes.maxThreadsPerBlock, 1024);
  const char* name = nullptr;
  ASSERT_EQ(cudaFuncGetName(&name, reinterpret_cast<const void*>(scale)), cudaSuccess);
  EXPECT_STREQ(name, "_Z5scalePffi");
}

TEST(RuntimeNvcc, ACapturedLaunchIsAKernelNode) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  float* values = nullptr;
  ASSERT_EQ(cudaMalloc(&values, 1024 * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  scale<<<4, 256, 0, stream>>>(values, 0.5f, 1024);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  cudaGraphNode_t node = nullptr;
  std::size_t count = 1;
  ASSERT_EQ(cudaGraphGetNodes(graph, &node, &count), cudaSuccess);
  ASSERT_EQ(count, 1u);
  cudaGraphNodeType type = cudaGraphNodeTypeEmpty;
  ASSERT_EQ(cudaGraphNodeGetType(node, &type), cudaSuccess);
  EXPECT_EQ(type, cudaGraphNodeTypeKernel);
  EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  EXPECT_EQ(cudaFree(values), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

TEST(RuntimeNvcc, DeviceVariablesAreSymbols) {
  void* address = nullptr;
  ASSERT_EQ(cudaGetSymbolAddress(&address, g_bias), cudaSuccess);
  EXPECT_NE(address, nullptr);
  std::size_t size = 0;
  ASSERT_EQ(cudaGetSymbolSize(&size, g_bias), cudaSuccess);
  EXPECT_EQ(size, sizeof(float) * 32);
  float host[32];
  std::memset(host, 0xff, sizeof host);
  ASSERT_EQ(cudaMemcpyFromSymbol(host, g_bias, sizeof host), cudaSuccess);
  EXPECT_EQ(host[0], 0.0f);  // the fill byte
}

}  // namespace
