// libcublas.so.13's own calls: handles and their settings (Note [cuBLAS
// handles]), versions and status names, and the host <-> device matrix and
// vector transfers, which are copies through the simulated driver (so a
// device-to-host transfer writes the fill byte, like every copy).
#include <cublas_api.h>

#include <new>

#include "blas_calls.hpp"
#include "blas_handle.hpp"
#include "oomguard_sim/sim_api.h"

#define OOMGUARD_SIM_BLAS_API extern "C" __attribute__((visibility("default")))

using oomguard::sim::blas::BlasHandle;
using oomguard::sim::blas::live_handle;

namespace oomguard::sim::blas {

int no_op_call(const char* function, const void* handle) {
  if (!live_handle(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  oomguard_sim_count_call("cublas", function);
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace oomguard::sim::blas

namespace {

// A strided 2-D copy of `rows` elements of `element_bytes` in each of
// `columns` columns, as cuBLAS's column-major transfers are; the driver
// tells host from device by the addresses.
cublasStatus_t transfer(long long rows, long long columns, long long element_bytes, const void* source,
                        long long source_pitch, void* destination, long long destination_pitch, CUstream stream,
                        bool asynchronous) {
  if (rows < 0 || columns < 0 || element_bytes <= 0 || source_pitch < rows || destination_pitch < rows) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (rows == 0 || columns == 0) return CUBLAS_STATUS_SUCCESS;
  CUDA_MEMCPY2D copy{};
  copy.srcMemoryType = CU_MEMORYTYPE_UNIFIED;
  copy.srcDevice = reinterpret_cast<CUdeviceptr>(source);
  copy.srcPitch = static_cast<std::size_t>(source_pitch * element_bytes);
  copy.dstMemoryType = CU_MEMORYTYPE_UNIFIED;
  copy.dstDevice = reinterpret_cast<CUdeviceptr>(destination);
  copy.dstPitch = static_cast<std::size_t>(destination_pitch * element_bytes);
  copy.WidthInBytes = static_cast<std::size_t>(rows * element_bytes);
  copy.Height = static_cast<std::size_t>(columns);
  const CUresult result = asynchronous ? cuMemcpy2DAsync(&copy, stream) : cuMemcpy2D(&copy);
  return result == CUDA_SUCCESS ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_MAPPING_ERROR;
}

// A vector with stride `increment` is a matrix of one-element columns.
cublasStatus_t transfer_vector(long long n, long long element_bytes, const void* source, long long source_increment,
                               void* destination, long long destination_increment, CUstream stream,
                               bool asynchronous) {
  if (source_increment <= 0 || destination_increment <= 0) return CUBLAS_STATUS_INVALID_VALUE;
  return transfer(1, n, element_bytes, source, source_increment, destination, destination_increment, stream,
                  asynchronous);
}

}  // namespace

// ------------------------------------------------------------------ handles

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  auto* blas = new (std::nothrow) BlasHandle();
  if (!blas) return CUBLAS_STATUS_ALLOC_FAILED;
  *handle = reinterpret_cast<cublasHandle_t>(blas);
  return CUBLAS_STATUS_SUCCESS;
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  return oomguard::sim::blas::retire_handle(handle) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

// As the real library: setting the stream drops a workspace set with
// cublasSetWorkspace (torch sets its workspace again after each
// cublasSetStream).
OOMGUARD_SIM_BLAS_API cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
  BlasHandle* blas = live_handle(handle);
  if (!blas) return CUBLAS_STATUS_NOT_INITIALIZED;
  blas->stream = reinterpret_cast<CUstream>(stream);
  blas->workspace = nullptr;
  blas->workspace_bytes = 0;
  return CUBLAS_STATUS_SUCCESS;
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t* stream) {
  BlasHandle* blas = live_handle(handle);
  if (!blas) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
  *stream = reinterpret_cast<cudaStream_t>(blas->stream);
  return CUBLAS_STATUS_SUCCESS;
}

// A workspace must be 256-byte aligned, as the real library requires.
OOMGUARD_SIM_BLAS_API cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t bytes) {
  BlasHandle* blas = live_handle(handle);
  if (!blas) return CUBLAS_STATUS_NOT_INITIALIZED;
  if ((reinterpret_cast<std::uintptr_t>(workspace) % 256) != 0 || (workspace == nullptr && bytes != 0)) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  blas->workspace = workspace;
  blas->workspace_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  BlasHandle* blas = live_handle(handle);
  if (!blas) return CUBLAS_STATUS_NOT_INITIALIZED;
  blas->math_mode = static_cast<int>(mode);
  return CUBLAS_STATUS_SUCCESS;
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  BlasHandle* blas = live_handle(handle);
  if (!blas) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = static_cast<cublasMath_t>(blas->math_mode);
  return CUBLAS_STATUS_SUCCESS;
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode) {
  BlasHandle* blas = live_handle(handle);
  if (!blas) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_INVALID_VALUE;
  blas->pointer_mode = static_cast<int>(mode);
  return CUBLAS_STATUS_SUCCESS;
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t* mode) {
  BlasHandle* blas = live_handle(handle);
  if (!blas) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = static_cast<cublasPointerMode_t>(blas->pointer_mode);
  return CUBLAS_STATUS_SUCCESS;
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasSetAtomicsMode(cublasHandle_t handle, cublasAtomicsMode_t mode) {
  BlasHandle* blas = live_handle(handle);
  if (!blas) return CUBLAS_STATUS_NOT_INITIALIZED;
  blas->atomics_mode = static_cast<int>(mode);
  return CUBLAS_STATUS_SUCCESS;
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasGetAtomicsMode(cublasHandle_t handle, cublasAtomicsMode_t* mode) {
  BlasHandle* blas = live_handle(handle);
  if (!blas) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = static_cast<cublasAtomicsMode_t>(blas->atomics_mode);
  return CUBLAS_STATUS_SUCCESS;
}

// ------------------------------------------------------ versions and names

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int* version) {
  if (!live_handle(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!version) return CUBLAS_STATUS_INVALID_VALUE;
  *version = CUBLAS_VERSION;
  return CUBLAS_STATUS_SUCCESS;
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasGetProperty(libraryPropertyType type, int* value) {
  if (!value) return CUBLAS_STATUS_INVALID_VALUE;
  switch (type) {
    case MAJOR_VERSION: *value = CUBLAS_VER_MAJOR; return CUBLAS_STATUS_SUCCESS;
    case MINOR_VERSION: *value = CUBLAS_VER_MINOR; return CUBLAS_STATUS_SUCCESS;
    case PATCH_LEVEL: *value = CUBLAS_VER_PATCH; return CUBLAS_STATUS_SUCCESS;
  }
  return CUBLAS_STATUS_INVALID_VALUE;
}

OOMGUARD_SIM_BLAS_API size_t cublasGetCudartVersion(void) { return 13000; }

OOMGUARD_SIM_BLAS_API const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
#define OOMGUARD_SIM_STATUS(name) \
  case name:                      \
    return #name;
    OOMGUARD_SIM_STATUS(CUBLAS_STATUS_SUCCESS)
    OOMGUARD_SIM_STATUS(CUBLAS_STATUS_NOT_INITIALIZED)
    OOMGUARD_SIM_STATUS(CUBLAS_STATUS_ALLOC_FAILED)
    OOMGUARD_SIM_STATUS(CUBLAS_STATUS_INVALID_VALUE)
    OOMGUARD_SIM_STATUS(CUBLAS_STATUS_ARCH_MISMATCH)
    OOMGUARD_SIM_STATUS(CUBLAS_STATUS_MAPPING_ERROR)
    OOMGUARD_SIM_STATUS(CUBLAS_STATUS_EXECUTION_FAILED)
    OOMGUARD_SIM_STATUS(CUBLAS_STATUS_INTERNAL_ERROR)
    OOMGUARD_SIM_STATUS(CUBLAS_STATUS_NOT_SUPPORTED)
    OOMGUARD_SIM_STATUS(CUBLAS_STATUS_LICENSE_ERROR)
#undef OOMGUARD_SIM_STATUS
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

OOMGUARD_SIM_BLAS_API const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
  }
  return "unknown error";
}

// ---------------------------------------------------------------- transfers

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasSetMatrix(int rows, int cols, int element_bytes, const void* a, int lda,
                                                     void* b, int ldb) {
  return transfer(rows, cols, element_bytes, a, lda, b, ldb, nullptr, false);
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasGetMatrix(int rows, int cols, int element_bytes, const void* a, int lda,
                                                     void* b, int ldb) {
  return transfer(rows, cols, element_bytes, a, lda, b, ldb, nullptr, false);
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasSetMatrixAsync(int rows, int cols, int element_bytes, const void* a,
                                                          int lda, void* b, int ldb, cudaStream_t stream) {
  return transfer(rows, cols, element_bytes, a, lda, b, ldb, reinterpret_cast<CUstream>(stream), true);
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasGetMatrixAsync(int rows, int cols, int element_bytes, const void* a,
                                                          int lda, void* b, int ldb, cudaStream_t stream) {
  return transfer(rows, cols, element_bytes, a, lda, b, ldb, reinterpret_cast<CUstream>(stream), true);
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasSetVector(int n, int element_bytes, const void* x, int incx, void* y,
                                                     int incy) {
  return transfer_vector(n, element_bytes, x, incx, y, incy, nullptr, false);
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasGetVector(int n, int element_bytes, const void* x, int incx, void* y,
                                                     int incy) {
  return transfer_vector(n, element_bytes, x, incx, y, incy, nullptr, false);
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasSetVectorAsync(int n, int element_bytes, const void* x, int incx, void* y,
                                                          int incy, cudaStream_t stream) {
  return transfer_vector(n, element_bytes, x, incx, y, incy, reinterpret_cast<CUstream>(stream), true);
}

OOMGUARD_SIM_BLAS_API cublasStatus_t cublasGetVectorAsync(int n, int element_bytes, const void* x, int incx, void* y,
                                                          int incy, cudaStream_t stream) {
  return transfer_vector(n, element_bytes, x, incx, y, incy, reinterpret_cast<CUstream>(stream), true);
}

// ------------------------------------------------------------ private calls

// Imported by libcusolver.so.12 but declared in no public header, so its
// arguments are unknown: accepted and ignored.
extern "C" __attribute__((visibility("default"))) int cublasSetEnvironmentMode() { return CUBLAS_STATUS_SUCCESS; }
