#include "device_query.hpp"

#include <cuda.h>
#include <cuda_runtime_api.h>

#include "real_symbol.hpp"

namespace oomguard::preload {
namespace {

using CudaGetDeviceFn = cudaError_t (*)(int*);
using CuCtxGetDeviceFn = CUresult (*)(CUdevice*);
using CudaMemGetInfoFn = cudaError_t (*)(size_t*, size_t*);
using CuMemGetInfoFn = CUresult (*)(size_t*, size_t*);

RealSymbol<CudaGetDeviceFn> g_cuda_get_device{"cudaGetDevice"};
RealSymbol<CuCtxGetDeviceFn> g_cu_ctx_get_device{"cuCtxGetDevice"};
RealSymbol<CudaMemGetInfoFn> g_cuda_mem_get_info{"cudaMemGetInfo"};
RealSymbol<CuMemGetInfoFn> g_cu_mem_get_info{"cuMemGetInfo_v2"};

bool runtime_device(int& device) noexcept {
  CudaGetDeviceFn fn = g_cuda_get_device.get();
  return fn != nullptr && fn(&device) == cudaSuccess;
}

bool driver_device(int& device) noexcept {
  CuCtxGetDeviceFn fn = g_cu_ctx_get_device.get();
  CUdevice d = 0;
  if (fn == nullptr || fn(&d) != CUDA_SUCCESS) return false;
  device = d;
  return true;
}

}  // namespace

int current_runtime_device() noexcept {
  int device = 0;
  if (runtime_device(device) || driver_device(device)) return device;
  return 0;
}

int current_driver_device() noexcept {
  int device = 0;
  if (driver_device(device) || runtime_device(device)) return device;
  return 0;
}

std::uint64_t current_device_total_bytes() noexcept {
  size_t free_bytes = 0;
  size_t total_bytes = 0;
  if (CudaMemGetInfoFn fn = g_cuda_mem_get_info.get(); fn != nullptr && fn(&free_bytes, &total_bytes) == cudaSuccess) {
    return total_bytes;
  }
  if (CuMemGetInfoFn fn = g_cu_mem_get_info.get(); fn != nullptr && fn(&free_bytes, &total_bytes) == CUDA_SUCCESS) {
    return total_bytes;
  }
  return 0;
}

}  // namespace oomguard::preload
