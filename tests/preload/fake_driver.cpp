// libfake_cuda.so: a host-backed stand-in for libcuda with the real symbol
// names and types, so the preload library can be tested without a GPU.
//
// Device memory is host memory; each device has FAKE_CUDA_DEVICE_BYTES bytes
// (default 1 GiB) and refuses with CUDA_ERROR_OUT_OF_MEMORY beyond that. Like
// the real driver, cuGetProcAddress hands out pointers to internal functions,
// not to the exported symbols, so a caller that uses them bypasses symbol
// interposition and is seen only through the entry-point wrappers.
#include <cuda.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "fake_device.hpp"

#undef cuGetProcAddress

namespace {

constexpr int kDevices = 8;
std::atomic<std::uint64_t> g_used[kDevices];
thread_local int t_device = 0;

std::uint64_t capacity() {
  const char* text = std::getenv("FAKE_CUDA_DEVICE_BYTES");
  return text == nullptr ? (std::uint64_t{1} << 30) : std::strtoull(text, nullptr, 10);
}

struct PhysicalAllocation {
  std::uint64_t size;
  int device;
};

// Header in front of every allocation so that free knows the size.
struct alignas(256) BlockHeader {
  std::uint64_t size;
  int device;
};

bool take(int device, std::uint64_t size) {
  const std::uint64_t limit = capacity();
  std::uint64_t used = g_used[device].load();
  do {
    if (used + size > limit) return false;
  } while (!g_used[device].compare_exchange_weak(used, used + size));
  return true;
}

CUresult impl_mem_alloc(CUdeviceptr* dptr, size_t size) {
  if (dptr == nullptr || size == 0) return CUDA_ERROR_INVALID_VALUE;
  void* p = nullptr;
  if (fake_device_alloc(&p, size) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
  *dptr = reinterpret_cast<CUdeviceptr>(p);
  return CUDA_SUCCESS;
}

CUresult impl_mem_free(CUdeviceptr dptr) {
  if (dptr == 0) return CUDA_SUCCESS;
  fake_device_free(reinterpret_cast<void*>(dptr));
  return CUDA_SUCCESS;
}

CUresult impl_mem_create(CUmemGenericAllocationHandle* handle, size_t size, const CUmemAllocationProp* prop,
                         unsigned long long) {
  if (handle == nullptr || size == 0 || prop == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const int device = prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE ? prop->location.id : 0;
  if (device < 0 || device >= kDevices) return CUDA_ERROR_INVALID_DEVICE;
  if (!take(device, size)) return CUDA_ERROR_OUT_OF_MEMORY;
  *handle = reinterpret_cast<CUmemGenericAllocationHandle>(new PhysicalAllocation{size, device});
  return CUDA_SUCCESS;
}

CUresult impl_mem_release(CUmemGenericAllocationHandle handle) {
  if (handle == 0) return CUDA_ERROR_INVALID_VALUE;
  auto* physical = reinterpret_cast<PhysicalAllocation*>(handle);
  g_used[physical->device].fetch_sub(physical->size);
  delete physical;
  return CUDA_SUCCESS;
}

CUresult impl_mem_map(CUdeviceptr ptr, size_t size, size_t, CUmemGenericAllocationHandle handle, unsigned long long) {
  return ptr == 0 || size == 0 || handle == 0 ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

CUresult impl_mem_unmap(CUdeviceptr ptr, size_t size) {
  return ptr == 0 || size == 0 ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

struct Entry {
  const char* name;
  void* function;
};
const Entry kTable[] = {
    {"cuMemAlloc", reinterpret_cast<void*>(&impl_mem_alloc)},
    {"cuMemFree", reinterpret_cast<void*>(&impl_mem_free)},
    {"cuMemCreate", reinterpret_cast<void*>(&impl_mem_create)},
    {"cuMemRelease", reinterpret_cast<void*>(&impl_mem_release)},
    {"cuMemMap", reinterpret_cast<void*>(&impl_mem_map)},
    {"cuMemUnmap", reinterpret_cast<void*>(&impl_mem_unmap)},
};

}  // namespace

extern "C" {

int fake_device_alloc(void** pointer, std::size_t size) {
  const int device = t_device;
  if (!take(device, size)) return 1;
  void* raw = std::aligned_alloc(256, sizeof(BlockHeader) + ((size + 255) / 256) * 256);
  if (raw == nullptr) {
    g_used[device].fetch_sub(size);
    return 1;
  }
  auto* header = static_cast<BlockHeader*>(raw);
  header->size = size;
  header->device = device;
  *pointer = header + 1;
  return 0;
}

void fake_device_free(void* pointer) {
  auto* header = static_cast<BlockHeader*>(pointer) - 1;
  g_used[header->device].fetch_sub(header->size);
  std::free(header);
}

int fake_current_device() { return t_device; }
void fake_set_current_device(int device) { t_device = device; }
int fake_device_count() { return kDevices; }
std::uint64_t fake_device_total_bytes() { return capacity(); }
std::uint64_t fake_device_used_bytes(int device) { return g_used[device].load(); }

CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t size) { return impl_mem_alloc(dptr, size); }
CUresult cuMemFree_v2(CUdeviceptr dptr) { return impl_mem_free(dptr); }
CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size, const CUmemAllocationProp* prop,
                     unsigned long long flags) {
  return impl_mem_create(handle, size, prop, flags);
}
CUresult cuMemRelease(CUmemGenericAllocationHandle handle) { return impl_mem_release(handle); }
CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                  unsigned long long flags) {
  return impl_mem_map(ptr, size, offset, handle, flags);
}
CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) { return impl_mem_unmap(ptr, size); }

CUresult cuCtxGetDevice(CUdevice* device) {
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *device = t_device;
  return CUDA_SUCCESS;
}

CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total_bytes) {
  if (free_bytes == nullptr || total_bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *total_bytes = capacity();
  *free_bytes = *total_bytes - g_used[t_device].load();
  return CUDA_SUCCESS;
}

CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int, cuuint64_t,
                             CUdriverProcAddressQueryResult* status) {
  if (symbol == nullptr || pfn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  for (const Entry& entry : kTable) {
    if (std::strcmp(entry.name, symbol) == 0) {
      *pfn = entry.function;
      if (status != nullptr) *status = CU_GET_PROC_ADDRESS_SUCCESS;
      return CUDA_SUCCESS;
    }
  }
  *pfn = nullptr;
  if (status != nullptr) *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  return CUDA_ERROR_NOT_FOUND;
}

CUresult cuGetProcAddress(const char* symbol, void** pfn, int version, cuuint64_t flags) {
  return cuGetProcAddress_v2(symbol, pfn, version, flags, nullptr);
}

}  // extern "C"
