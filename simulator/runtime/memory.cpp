// Device and host memory, pointer attributes, copies and fills: each a
// driver call with the runtime's argument conventions. The driver decides
// what a copy does from the addresses (unified addressing, as on every
// 64-bit GPU): a copy into host memory writes the fill byte, anything into
// device memory is dropped.
#include <cstring>

#include "runtime.hpp"

using namespace oomguard::sim::runtime;

namespace {

cudaError_t check_kind(cudaMemcpyKind kind) {
  return kind >= cudaMemcpyHostToHost && kind <= cudaMemcpyDefault ? cudaSuccess
                                                                     : fail(cudaErrorInvalidMemcpyDirection);
}

CUDA_MEMCPY2D copy_2d(void* destination, std::size_t destination_pitch, const void* source, std::size_t source_pitch,
                      std::size_t width, std::size_t height) {
  CUDA_MEMCPY2D copy{};
  copy.srcMemoryType = CU_MEMORYTYPE_UNIFIED;
  copy.srcDevice = device_pointer(source);
  copy.srcPitch = source_pitch;
  copy.dstMemoryType = CU_MEMORYTYPE_UNIFIED;
  copy.dstDevice = device_pointer(destination);
  copy.dstPitch = destination_pitch;
  copy.WidthInBytes = width;
  copy.Height = height;
  return copy;
}

cudaError_t symbol_range(const void* symbol, std::size_t count, std::size_t offset, CUdeviceptr& address) {
  std::size_t size = 0;
  if (!find_symbol(symbol, address, size)) return fail(cudaErrorInvalidSymbol);
  if (offset > size || count > size - offset) return fail(cudaErrorInvalidValue);
  address += offset;
  return cudaSuccess;
}

}  // namespace

// ---------------------------------------------------------------- device

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMalloc(void** pointer, std::size_t size) {
  if (!pointer) return fail(cudaErrorInvalidValue);
  *pointer = nullptr;
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (size == 0) return cudaSuccess;  // as the real runtime: success and NULL
  CUdeviceptr address = 0;
  const cudaError_t error = check(cuMemAlloc(&address, size));
  if (error == cudaSuccess) *pointer = reinterpret_cast<void*>(address);
  return error;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMallocPitch(void** pointer, std::size_t* pitch, std::size_t width,
                                                     std::size_t height) {
  if (!pointer || !pitch) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUdeviceptr address = 0;
  const cudaError_t error = check(cuMemAllocPitch(&address, pitch, width, height, 16));
  if (error == cudaSuccess) *pointer = reinterpret_cast<void*>(address);
  return error;
}

// cudaFree(0) is the idiom for "create the context now".
OOMGUARD_SIM_RUNTIME_API cudaError_t cudaFree(void* pointer) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (!pointer) return cudaSuccess;
  return check(cuMemFree(device_pointer(pointer)));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemGetInfo(std::size_t* free, std::size_t* total) {
  if (!free || !total) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuMemGetInfo(free, total));
}

// ------------------------------------------------------------------ host

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaHostAlloc(void** pointer, std::size_t size, unsigned int flags) {
  if (!pointer) return fail(cudaErrorInvalidValue);
  *pointer = nullptr;
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (size == 0) return cudaSuccess;
  // cudaHostAlloc* and CU_MEMHOSTALLOC_* share their bits.
  return check(cuMemHostAlloc(pointer, size, flags));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMallocHost(void** pointer, std::size_t size) {
  return cudaHostAlloc(pointer, size, cudaHostAllocDefault);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaFreeHost(void* pointer) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (!pointer) return cudaSuccess;
  return check(cuMemFreeHost(pointer));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaHostRegister(void* pointer, std::size_t size, unsigned int flags) {
  if (!pointer || size == 0) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  // cudaHostRegister* and CU_MEMHOSTREGISTER_* share their bits.
  return check(cuMemHostRegister(pointer, size, flags));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaHostUnregister(void* pointer) {
  if (!pointer) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuMemHostUnregister(pointer));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaHostGetDevicePointer(void** device, void* host, unsigned int flags) {
  if (!device || !host) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUdeviceptr address = 0;
  const cudaError_t error = check(cuMemHostGetDevicePointer(&address, host, flags));
  if (error == cudaSuccess) *device = reinterpret_cast<void*>(address);
  return error;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaHostGetFlags(unsigned int* flags, void* host) {
  if (!flags || !host) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuMemHostGetFlags(flags, host));
}

// As since CUDA 11: memory the driver does not know is no error, it is
// cudaMemoryTypeUnregistered.
OOMGUARD_SIM_RUNTIME_API cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes,
                                                              const void* pointer) {
  if (!attributes) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUmemorytype type = static_cast<CUmemorytype>(0);
  int ordinal = -2;
  CUdeviceptr device = 0;
  void* host = nullptr;
  int managed = 0;
  CUpointer_attribute which[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                                 CU_POINTER_ATTRIBUTE_DEVICE_POINTER, CU_POINTER_ATTRIBUTE_HOST_POINTER,
                                 CU_POINTER_ATTRIBUTE_IS_MANAGED};
  void* values[] = {&type, &ordinal, &device, &host, &managed};
  if (const cudaError_t error = check(cuPointerGetAttributes(5, which, values, device_pointer(pointer)));
      error != cudaSuccess) {
    return error;
  }
  std::memset(attributes, 0, sizeof *attributes);
  switch (type) {
    case CU_MEMORYTYPE_DEVICE:
      attributes->type = managed ? cudaMemoryTypeManaged : cudaMemoryTypeDevice;
      break;
    case CU_MEMORYTYPE_HOST:
      attributes->type = cudaMemoryTypeHost;
      break;
    default:
      attributes->type = cudaMemoryTypeUnregistered;
      attributes->device = -2;  // what the real runtime reports for memory it does not know
      return cudaSuccess;
  }
  attributes->device = ordinal;
  attributes->devicePointer = reinterpret_cast<void*>(device);
  attributes->hostPointer = host;
  return cudaSuccess;
}

// ---------------------------------------------------------------- copies

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemcpy(void* destination, const void* source, std::size_t count,
                                                cudaMemcpyKind kind) {
  if (const cudaError_t error = check_kind(kind); error != cudaSuccess) return error;
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (count == 0) return cudaSuccess;
  return check(cuMemcpy(device_pointer(destination), device_pointer(source), count));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemcpyAsync(void* destination, const void* source, std::size_t count,
                                                     cudaMemcpyKind kind, cudaStream_t stream) {
  if (const cudaError_t error = check_kind(kind); error != cudaSuccess) return error;
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (count == 0) return cudaSuccess;
  return check(cuMemcpyAsync(device_pointer(destination), device_pointer(source), count, stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemcpy2D(void* destination, std::size_t destination_pitch,
                                                  const void* source, std::size_t source_pitch, std::size_t width,
                                                  std::size_t height, cudaMemcpyKind kind) {
  if (const cudaError_t error = check_kind(kind); error != cudaSuccess) return error;
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (width == 0 || height == 0) return cudaSuccess;
  const CUDA_MEMCPY2D copy = copy_2d(destination, destination_pitch, source, source_pitch, width, height);
  return check(cuMemcpy2D(&copy));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemcpy2DAsync(void* destination, std::size_t destination_pitch,
                                                       const void* source, std::size_t source_pitch,
                                                       std::size_t width, std::size_t height, cudaMemcpyKind kind,
                                                       cudaStream_t stream) {
  if (const cudaError_t error = check_kind(kind); error != cudaSuccess) return error;
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (width == 0 || height == 0) return cudaSuccess;
  const CUDA_MEMCPY2D copy = copy_2d(destination, destination_pitch, source, source_pitch, width, height);
  return check(cuMemcpy2DAsync(&copy, stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemcpyPeerAsync(void* destination, int destination_device,
                                                         const void* source, int source_device, std::size_t count,
                                                         cudaStream_t stream) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUresult error = CUDA_SUCCESS;
  CUcontext destination_context = primary_context(destination_device, error);
  if (!destination_context) return check(error);
  CUcontext source_context = primary_context(source_device, error);
  if (!source_context) return check(error);
  if (count == 0) return cudaSuccess;
  return check(cuMemcpyPeerAsync(device_pointer(destination), destination_context, device_pointer(source),
                                 source_context, count, stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemcpyPeer(void* destination, int destination_device, const void* source,
                                                    int source_device, std::size_t count) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUresult error = CUDA_SUCCESS;
  CUcontext destination_context = primary_context(destination_device, error);
  if (!destination_context) return check(error);
  CUcontext source_context = primary_context(source_device, error);
  if (!source_context) return check(error);
  if (count == 0) return cudaSuccess;
  return check(cuMemcpyPeer(device_pointer(destination), destination_context, device_pointer(source),
                            source_context, count));
}

// --------------------------------------------------------------- symbols

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemcpyToSymbol(const void* symbol, const void* source, std::size_t count,
                                                        std::size_t offset, cudaMemcpyKind kind) {
  if (const cudaError_t error = check_kind(kind); error != cudaSuccess) return error;
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUdeviceptr address = 0;
  if (const cudaError_t error = symbol_range(symbol, count, offset, address); error != cudaSuccess) return error;
  return count == 0 ? cudaSuccess : check(cuMemcpy(address, device_pointer(source), count));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemcpyToSymbolAsync(const void* symbol, const void* source,
                                                             std::size_t count, std::size_t offset,
                                                             cudaMemcpyKind kind, cudaStream_t stream) {
  if (const cudaError_t error = check_kind(kind); error != cudaSuccess) return error;
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUdeviceptr address = 0;
  if (const cudaError_t error = symbol_range(symbol, count, offset, address); error != cudaSuccess) return error;
  return count == 0 ? cudaSuccess : check(cuMemcpyAsync(address, device_pointer(source), count, stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemcpyFromSymbol(void* destination, const void* symbol, std::size_t count,
                                                          std::size_t offset, cudaMemcpyKind kind) {
  if (const cudaError_t error = check_kind(kind); error != cudaSuccess) return error;
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUdeviceptr address = 0;
  if (const cudaError_t error = symbol_range(symbol, count, offset, address); error != cudaSuccess) return error;
  return count == 0 ? cudaSuccess : check(cuMemcpy(device_pointer(destination), address, count));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemcpyFromSymbolAsync(void* destination, const void* symbol,
                                                               std::size_t count, std::size_t offset,
                                                               cudaMemcpyKind kind, cudaStream_t stream) {
  if (const cudaError_t error = check_kind(kind); error != cudaSuccess) return error;
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUdeviceptr address = 0;
  if (const cudaError_t error = symbol_range(symbol, count, offset, address); error != cudaSuccess) return error;
  return count == 0 ? cudaSuccess : check(cuMemcpyAsync(device_pointer(destination), address, count, stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGetSymbolAddress(void** device, const void* symbol) {
  if (!device) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUdeviceptr address = 0;
  std::size_t size = 0;
  if (!find_symbol(symbol, address, size)) return fail(cudaErrorInvalidSymbol);
  *device = reinterpret_cast<void*>(address);
  return cudaSuccess;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGetSymbolSize(std::size_t* size, const void* symbol) {
  if (!size) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUdeviceptr address = 0;
  if (!find_symbol(symbol, address, *size)) return fail(cudaErrorInvalidSymbol);
  return cudaSuccess;
}

// ----------------------------------------------------------------- fills

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemset(void* pointer, int value, std::size_t count) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (count == 0) return cudaSuccess;
  return check(cuMemsetD8(device_pointer(pointer), static_cast<unsigned char>(value), count));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemsetAsync(void* pointer, int value, std::size_t count,
                                                     cudaStream_t stream) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (count == 0) return cudaSuccess;
  return check(cuMemsetD8Async(device_pointer(pointer), static_cast<unsigned char>(value), count, stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemset2D(void* pointer, std::size_t pitch, int value, std::size_t width,
                                                  std::size_t height) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (width == 0 || height == 0) return cudaSuccess;
  return check(cuMemsetD2D8(device_pointer(pointer), pitch, static_cast<unsigned char>(value), width, height));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemset2DAsync(void* pointer, std::size_t pitch, int value,
                                                       std::size_t width, std::size_t height, cudaStream_t stream) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (width == 0 || height == 0) return cudaSuccess;
  return check(cuMemsetD2D8Async(device_pointer(pointer), pitch, static_cast<unsigned char>(value), width, height,
                                 stream));
}
