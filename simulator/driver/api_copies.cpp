// Copies and memsets. Device memory has no bytes (Note [Device memory]):
// a copy into device memory and a memset of it are dropped; a copy out of
// it fills the host destination with OOMGUARD_SIM_FILL (default 0); a copy
// between host buffers is done. Small copies in are the exception, until
// the next kernel (Note [Copied values]). cuMemcpy and the other unified-addressing
// calls decide each side by its address, as the real driver does.
#include <cstring>

#include "api.hpp"

using namespace oomguard::sim;

namespace {

bool on_device(const Driver& driver, CUdeviceptr address) { return driver.device_of(address) != nullptr; }

void copy(Driver& driver, CUdeviceptr destination, CUdeviceptr source, std::size_t bytes) {
  if (bytes == 0) return;
  const bool to_device = on_device(driver, destination);
  const bool from_device = on_device(driver, source);
  if (to_device && from_device) {
    driver.copied_values.copy_within(destination, source, bytes);
    return;
  }
  if (to_device) {
    driver.copied_values.copy_in(destination, reinterpret_cast<const void*>(source), bytes);
    return;
  }
  if (from_device) {
    std::memset(reinterpret_cast<void*>(destination), driver.config.fill_byte, bytes);
    driver.copied_values.copy_out(reinterpret_cast<void*>(destination), source, bytes);
    return;
  }
  std::memmove(reinterpret_cast<void*>(destination), reinterpret_cast<const void*>(source), bytes);
}

CUresult synchronous_copy(CUdeviceptr destination, CUdeviceptr source, std::size_t bytes) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = nullptr;
  if (CUresult r = current_device(device); r != CUDA_SUCCESS) return r;
  if (CUresult r = check_capture_safe(*driver); r != CUDA_SUCCESS) return r;
  if ((bytes != 0) && (destination == 0 || source == 0)) return CUDA_ERROR_INVALID_VALUE;
  copy(*driver, destination, source, bytes);
  return CUDA_SUCCESS;
}

CUresult asynchronous_copy(CUdeviceptr destination, CUdeviceptr source, std::size_t bytes, CUstream stream) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  bool captured = false;
  if (CUresult r = stream_operation(*driver, stream, CU_GRAPH_NODE_TYPE_MEMCPY, captured); r != CUDA_SUCCESS) return r;
  if ((bytes != 0) && (destination == 0 || source == 0)) return CUDA_ERROR_INVALID_VALUE;
  if (!captured) copy(*driver, destination, source, bytes);
  return CUDA_SUCCESS;
}

CUresult copy_2d(const CUDA_MEMCPY2D* copy_description, CUstream stream, bool asynchronous) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!copy_description) return CUDA_ERROR_INVALID_VALUE;
  const CUDA_MEMCPY2D& c = *copy_description;
  auto address_of = [](CUmemorytype type, const void* host, CUdeviceptr device, std::size_t x, std::size_t y,
                       std::size_t pitch) -> CUdeviceptr {
    const CUdeviceptr base = type == CU_MEMORYTYPE_HOST ? reinterpret_cast<CUdeviceptr>(host) : device;
    return base + y * pitch + x;
  };
  bool captured = false;
  if (asynchronous) {
    if (CUresult r = stream_operation(*driver, stream, CU_GRAPH_NODE_TYPE_MEMCPY, captured); r != CUDA_SUCCESS) return r;
  } else if (CUresult r = check_capture_safe(*driver); r != CUDA_SUCCESS) {
    return r;
  }
  if (c.srcMemoryType == CU_MEMORYTYPE_ARRAY || c.dstMemoryType == CU_MEMORYTYPE_ARRAY) {
    oomguard_sim_unsupported("driver", "cuMemcpy2D with CUDA arrays");
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  if (captured) return CUDA_SUCCESS;
  for (std::size_t row = 0; row < c.Height; ++row) {
    copy(*driver, address_of(c.dstMemoryType, c.dstHost, c.dstDevice, c.dstXInBytes, c.dstY + row, c.dstPitch),
         address_of(c.srcMemoryType, c.srcHost, c.srcDevice, c.srcXInBytes, c.srcY + row, c.srcPitch),
         c.WidthInBytes);
  }
  return CUDA_SUCCESS;
}

// A memset: dropped on device memory, done on pinned host memory.
CUresult set(Driver& driver, CUdeviceptr destination, unsigned value, std::size_t element_size,
             std::size_t count, std::size_t pitch, std::size_t height) {
  if (count == 0 || height == 0) return CUDA_SUCCESS;
  if (on_device(driver, destination)) {
    driver.copied_values.forget(destination, (height - 1) * pitch + count * element_size);
    return CUDA_SUCCESS;
  }
  if (!driver.host_memory.find(destination)) return CUDA_ERROR_INVALID_VALUE;
  for (std::size_t row = 0; row < height; ++row) {
    auto* bytes = reinterpret_cast<unsigned char*>(destination + row * pitch);
    for (std::size_t i = 0; i < count; ++i) std::memcpy(bytes + i * element_size, &value, element_size);
  }
  return CUDA_SUCCESS;
}

CUresult synchronous_set(CUdeviceptr destination, unsigned value, std::size_t element_size, std::size_t count,
                         std::size_t pitch = 0, std::size_t height = 1) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = nullptr;
  if (CUresult r = current_device(device); r != CUDA_SUCCESS) return r;
  return set(*driver, destination, value, element_size, count, pitch, height);
}

CUresult asynchronous_set(CUdeviceptr destination, unsigned value, std::size_t element_size, std::size_t count,
                          CUstream stream, std::size_t pitch = 0, std::size_t height = 1) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  bool captured = false;
  if (CUresult r = stream_operation(*driver, stream, CU_GRAPH_NODE_TYPE_MEMSET, captured); r != CUDA_SUCCESS) return r;
  return captured ? CUDA_SUCCESS : set(*driver, destination, value, element_size, count, pitch, height);
}

}  // namespace

OOMGUARD_SIM_DRIVER_API CUresult cuMemcpy(CUdeviceptr destination, CUdeviceptr source, size_t bytes) {
  return synchronous_copy(destination, source, bytes);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemcpyAsync(CUdeviceptr destination, CUdeviceptr source, size_t bytes,
                                               CUstream stream) {
  return asynchronous_copy(destination, source, bytes, stream);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemcpyPeer(CUdeviceptr destination, CUcontext, CUdeviceptr source, CUcontext,
                                              size_t bytes) {
  return synchronous_copy(destination, source, bytes);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemcpyPeerAsync(CUdeviceptr destination, CUcontext, CUdeviceptr source, CUcontext,
                                                   size_t bytes, CUstream stream) {
  return asynchronous_copy(destination, source, bytes, stream);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemcpyHtoD_v2(CUdeviceptr destination, const void* source, size_t bytes) {
  return synchronous_copy(destination, reinterpret_cast<CUdeviceptr>(source), bytes);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemcpyDtoH_v2(void* destination, CUdeviceptr source, size_t bytes) {
  return synchronous_copy(reinterpret_cast<CUdeviceptr>(destination), source, bytes);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemcpyDtoD_v2(CUdeviceptr destination, CUdeviceptr source, size_t bytes) {
  return synchronous_copy(destination, source, bytes);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr destination, const void* source, size_t bytes,
                                                      CUstream stream) {
  return asynchronous_copy(destination, reinterpret_cast<CUdeviceptr>(source), bytes, stream);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemcpyDtoHAsync_v2(void* destination, CUdeviceptr source, size_t bytes,
                                                      CUstream stream) {
  return asynchronous_copy(reinterpret_cast<CUdeviceptr>(destination), source, bytes, stream);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr destination, CUdeviceptr source, size_t bytes,
                                                      CUstream stream) {
  return asynchronous_copy(destination, source, bytes, stream);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D* copy_description) {
  return copy_2d(copy_description, nullptr, false);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D* copy_description) {
  return copy_2d(copy_description, nullptr, false);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D* copy_description, CUstream stream) {
  return copy_2d(copy_description, stream, true);
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemsetD8_v2(CUdeviceptr destination, unsigned char value, size_t count) {
  return synchronous_set(destination, value, 1, count);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemsetD16_v2(CUdeviceptr destination, unsigned short value, size_t count) {
  return synchronous_set(destination, value, 2, count);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemsetD32_v2(CUdeviceptr destination, unsigned int value, size_t count) {
  return synchronous_set(destination, value, 4, count);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemsetD2D8_v2(CUdeviceptr destination, size_t pitch, unsigned char value,
                                                 size_t width, size_t height) {
  return synchronous_set(destination, value, 1, width, pitch, height);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemsetD2D16_v2(CUdeviceptr destination, size_t pitch, unsigned short value,
                                                  size_t width, size_t height) {
  return synchronous_set(destination, value, 2, width, pitch, height);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemsetD2D32_v2(CUdeviceptr destination, size_t pitch, unsigned int value,
                                                  size_t width, size_t height) {
  return synchronous_set(destination, value, 4, width, pitch, height);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemsetD8Async(CUdeviceptr destination, unsigned char value, size_t count,
                                                 CUstream stream) {
  return asynchronous_set(destination, value, 1, count, stream);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemsetD16Async(CUdeviceptr destination, unsigned short value, size_t count,
                                                  CUstream stream) {
  return asynchronous_set(destination, value, 2, count, stream);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemsetD32Async(CUdeviceptr destination, unsigned int value, size_t count,
                                                  CUstream stream) {
  return asynchronous_set(destination, value, 4, count, stream);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemsetD2D8Async(CUdeviceptr destination, size_t pitch, unsigned char value,
                                                   size_t width, size_t height, CUstream stream) {
  return asynchronous_set(destination, value, 1, width, stream, pitch, height);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemsetD2D16Async(CUdeviceptr destination, size_t pitch, unsigned short value,
                                                    size_t width, size_t height, CUstream stream) {
  return asynchronous_set(destination, value, 2, width, stream, pitch, height);
}
OOMGUARD_SIM_DRIVER_API CUresult cuMemsetD2D32Async(CUdeviceptr destination, size_t pitch, unsigned int value,
                                                    size_t width, size_t height, CUstream stream) {
  return asynchronous_set(destination, value, 4, width, stream, pitch, height);
}

// The per-thread-default-stream variants: the simulator's per-thread and
// legacy default streams behave alike (nothing is ever queued).
OOMGUARD_SIM_ALIAS(cuMemcpy_ptds, cuMemcpy)
OOMGUARD_SIM_ALIAS(cuMemcpyAsync_ptsz, cuMemcpyAsync)
OOMGUARD_SIM_ALIAS(cuMemcpyPeer_ptds, cuMemcpyPeer)
OOMGUARD_SIM_ALIAS(cuMemcpyPeerAsync_ptsz, cuMemcpyPeerAsync)
OOMGUARD_SIM_ALIAS(cuMemcpyHtoD_v2_ptds, cuMemcpyHtoD_v2)
OOMGUARD_SIM_ALIAS(cuMemcpyDtoH_v2_ptds, cuMemcpyDtoH_v2)
OOMGUARD_SIM_ALIAS(cuMemcpyDtoD_v2_ptds, cuMemcpyDtoD_v2)
OOMGUARD_SIM_ALIAS(cuMemcpyHtoDAsync_v2_ptsz, cuMemcpyHtoDAsync_v2)
OOMGUARD_SIM_ALIAS(cuMemcpyDtoHAsync_v2_ptsz, cuMemcpyDtoHAsync_v2)
OOMGUARD_SIM_ALIAS(cuMemcpyDtoDAsync_v2_ptsz, cuMemcpyDtoDAsync_v2)
OOMGUARD_SIM_ALIAS(cuMemcpy2D_v2_ptds, cuMemcpy2D_v2)
OOMGUARD_SIM_ALIAS(cuMemcpy2DUnaligned_v2_ptds, cuMemcpy2DUnaligned_v2)
OOMGUARD_SIM_ALIAS(cuMemcpy2DAsync_v2_ptsz, cuMemcpy2DAsync_v2)
OOMGUARD_SIM_ALIAS(cuMemsetD8_v2_ptds, cuMemsetD8_v2)
OOMGUARD_SIM_ALIAS(cuMemsetD16_v2_ptds, cuMemsetD16_v2)
OOMGUARD_SIM_ALIAS(cuMemsetD32_v2_ptds, cuMemsetD32_v2)
OOMGUARD_SIM_ALIAS(cuMemsetD2D8_v2_ptds, cuMemsetD2D8_v2)
OOMGUARD_SIM_ALIAS(cuMemsetD2D16_v2_ptds, cuMemsetD2D16_v2)
OOMGUARD_SIM_ALIAS(cuMemsetD2D32_v2_ptds, cuMemsetD2D32_v2)
OOMGUARD_SIM_ALIAS(cuMemsetD8Async_ptsz, cuMemsetD8Async)
OOMGUARD_SIM_ALIAS(cuMemsetD16Async_ptsz, cuMemsetD16Async)
OOMGUARD_SIM_ALIAS(cuMemsetD32Async_ptsz, cuMemsetD32Async)
OOMGUARD_SIM_ALIAS(cuMemsetD2D8Async_ptsz, cuMemsetD2D8Async)
OOMGUARD_SIM_ALIAS(cuMemsetD2D16Async_ptsz, cuMemsetD2D16Async)
OOMGUARD_SIM_ALIAS(cuMemsetD2D32Async_ptsz, cuMemsetD2D32Async)
