// The cuBLAS and cuBLASLt stand-ins: handles and their settings (Note
// [cuBLAS handles]), computations as counted no-ops, cuBLASLt descriptors,
// the heuristic and cublasLtMatmul.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>

namespace {

TEST(Cublas, HandleSettingsRoundTrip) {
  cublasHandle_t handle = nullptr;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  ASSERT_EQ(cublasSetStream(handle, stream), CUBLAS_STATUS_SUCCESS);
  cudaStream_t got = nullptr;
  ASSERT_EQ(cublasGetStream(handle, &got), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(got, stream);

  ASSERT_EQ(cublasSetMathMode(handle, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS);
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
  ASSERT_EQ(cublasGetMathMode(handle, &math), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(math, CUBLAS_TF32_TENSOR_OP_MATH);

  ASSERT_EQ(cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_DEVICE), CUBLAS_STATUS_SUCCESS);
  cublasPointerMode_t mode = CUBLAS_POINTER_MODE_HOST;
  ASSERT_EQ(cublasGetPointerMode(handle, &mode), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(mode, CUBLAS_POINTER_MODE_DEVICE);

  int version = 0;
  ASSERT_EQ(cublasGetVersion(handle, &version), CUBLAS_STATUS_SUCCESS);
  EXPECT_GE(version, 130000);
  EXPECT_EQ(cublasDestroy(handle), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

TEST(Cublas, WorkspaceIsCheckedAndDroppedBySetStream) {
  cublasHandle_t handle = nullptr;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  void* workspace = nullptr;
  ASSERT_EQ(cudaMalloc(&workspace, 4 << 20), cudaSuccess);
  EXPECT_EQ(cublasSetWorkspace(handle, workspace, 4 << 20), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasSetWorkspace(handle, static_cast<char*>(workspace) + 8, 1024), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasSetWorkspace(handle, nullptr, 1024), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasSetStream(handle, nullptr), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasSetWorkspace(handle, workspace, 4 << 20), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasDestroy(handle), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cudaFree(workspace), cudaSuccess);
}

TEST(Cublas, ComputationsSucceedOnALiveHandleOnly) {
  cublasHandle_t handle = nullptr;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  const float one = 1.0f;
  void* a = nullptr;
  ASSERT_EQ(cudaMalloc(&a, 64 * 64 * sizeof(float)), cudaSuccess);
  auto* m = static_cast<float*>(a);
  EXPECT_EQ(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 64, 64, 64, &one, m, 64, m, 64, &one, m, 64),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_T, 64, 64, 64, &one, m, CUDA_R_32F, 64, m, CUDA_R_32F, 64,
                         &one, m, CUDA_R_32F, 64, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasSgemm(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 64, 64, 64, &one, m, 64, m, 64, &one, m, 64),
            CUBLAS_STATUS_NOT_INITIALIZED);
  ASSERT_EQ(cublasDestroy(handle), CUBLAS_STATUS_SUCCESS);
  // A destroyed handle is refused, by computations and settings alike.
  EXPECT_EQ(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 64, 64, 64, &one, m, 64, m, 64, &one, m, 64),
            CUBLAS_STATUS_NOT_INITIALIZED);
  EXPECT_EQ(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH), CUBLAS_STATUS_NOT_INITIALIZED);
  EXPECT_EQ(cublasDestroy(handle), CUBLAS_STATUS_NOT_INITIALIZED);
  EXPECT_EQ(cudaFree(a), cudaSuccess);
}

TEST(Cublas, GetVectorIsADeviceToHostCopy) {
  void* device = nullptr;
  ASSERT_EQ(cudaMalloc(&device, 256 * sizeof(float)), cudaSuccess);
  float host[256];
  for (float& value : host) value = 3.0f;
  ASSERT_EQ(cublasGetVector(256, sizeof(float), device, 1, host, 1), CUBLAS_STATUS_SUCCESS);
  for (float value : host) ASSERT_EQ(value, 0.0f);  // the default fill byte is 0
  EXPECT_EQ(cublasSetVector(256, sizeof(float), host, 0, device, 1), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cudaFree(device), cudaSuccess);
}

TEST(CublasLt, DescriptorsRoundTripAndTheHeuristicGivesOneAlgorithm) {
  // torch passes its cuBLAS handle to cuBLASLt.
  cublasHandle_t blas = nullptr;
  ASSERT_EQ(cublasCreate(&blas), CUBLAS_STATUS_SUCCESS);
  auto lt = reinterpret_cast<cublasLtHandle_t>(blas);

  cublasLtMatmulDesc_t description = nullptr;
  ASSERT_EQ(cublasLtMatmulDescCreate(&description, CUBLAS_COMPUTE_32F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
  const cublasOperation_t transpose = CUBLAS_OP_T;
  ASSERT_EQ(cublasLtMatmulDescSetAttribute(description, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof transpose),
            CUBLAS_STATUS_SUCCESS);
  cublasOperation_t read_back = CUBLAS_OP_N;
  std::size_t written = 0;
  ASSERT_EQ(cublasLtMatmulDescGetAttribute(description, CUBLASLT_MATMUL_DESC_TRANSA, &read_back, sizeof read_back,
                                           &written),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(read_back, CUBLAS_OP_T);
  EXPECT_EQ(written, sizeof read_back);
  int32_t compute = 0;
  ASSERT_EQ(cublasLtMatmulDescGetAttribute(description, CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, &compute, sizeof compute,
                                           &written),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(compute, CUBLAS_COMPUTE_32F);

  cublasLtMatrixLayout_t layout = nullptr;
  ASSERT_EQ(cublasLtMatrixLayoutCreate(&layout, CUDA_R_16BF, 128, 64, 128), CUBLAS_STATUS_SUCCESS);
  uint64_t rows = 0;
  ASSERT_EQ(cublasLtMatrixLayoutGetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_ROWS, &rows, sizeof rows, &written),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(rows, 128u);

  cublasLtMatmulPreference_t preference = nullptr;
  ASSERT_EQ(cublasLtMatmulPreferenceCreate(&preference), CUBLAS_STATUS_SUCCESS);
  const uint64_t max_workspace = 1 << 22;
  ASSERT_EQ(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                 &max_workspace, sizeof max_workspace),
            CUBLAS_STATUS_SUCCESS);

  cublasLtMatmulHeuristicResult_t results[4] = {};
  int returned = 0;
  ASSERT_EQ(cublasLtMatmulAlgoGetHeuristic(lt, description, layout, layout, layout, layout, preference, 4, results,
                                           &returned),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(returned, 1);
  EXPECT_EQ(results[0].state, CUBLAS_STATUS_SUCCESS);
  EXPECT_LE(results[0].workspaceSize, max_workspace);
  EXPECT_EQ(cublasLtMatmulAlgoGetHeuristic(lt, description, layout, layout, layout, layout, preference, 0, results,
                                           &returned),
            CUBLAS_STATUS_INVALID_VALUE);

  const float one = 1.0f;
  EXPECT_EQ(cublasLtMatmul(lt, description, &one, nullptr, layout, nullptr, layout, &one, nullptr, layout, nullptr,
                           layout, &results[0].algo, nullptr, 0, nullptr),
            CUBLAS_STATUS_SUCCESS);

  ASSERT_EQ(cublasLtMatrixLayoutDestroy(layout), CUBLAS_STATUS_SUCCESS);
  // A destroyed layout is refused.
  EXPECT_EQ(cublasLtMatmul(lt, description, &one, nullptr, layout, nullptr, layout, &one, nullptr, layout, nullptr,
                           layout, &results[0].algo, nullptr, 0, nullptr),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasLtMatmulPreferenceDestroy(preference), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasLtMatmulDescDestroy(description), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasDestroy(blas), CUBLAS_STATUS_SUCCESS);
}

TEST(CublasLt, OwnHandlesAndVersions) {
  cublasLtHandle_t lt = nullptr;
  ASSERT_EQ(cublasLtCreate(&lt), CUBLAS_STATUS_SUCCESS);
  EXPECT_GE(cublasLtGetVersion(), 130000u);
  EXPECT_EQ(cublasLtDestroy(lt), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasLtDestroy(lt), CUBLAS_STATUS_NOT_INITIALIZED);
}

}  // namespace
