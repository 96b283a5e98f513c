// The driver's allocation calls, reached as exported symbols (a program or
// library linked against libcuda) or as pointers from an entry-point query.
//
// Note [Virtual-memory accounting]
// With the virtual-memory API the device memory is consumed by cuMemCreate
// (a physical allocation, named by a handle) and given back by cuMemRelease;
// cuMemMap and cuMemUnmap only change which addresses see it. So the bytes
// are recorded under the handle at create and forgotten at release, and map
// and unmap are counted but move no bytes. A handle is an opaque 64-bit value
// the driver never reuses while it is live, which is all the Ledger needs of
// a key.
#include <cuda.h>

#include <cstdint>
#include <cstring>

#include "call_counters.hpp"
#include "device_query.hpp"
#include "driver_wrappers.hpp"
#include "export.hpp"
#include "oomguard/ledger.hpp"
#include "real_symbol.hpp"
#include "reentry_guard.hpp"
#include "segment_accounting.hpp"

namespace oomguard::preload {
namespace {

RealSymbol<CuMemAllocFn> real_mem_alloc{"cuMemAlloc_v2"};
RealSymbol<CuMemFreeFn> real_mem_free{"cuMemFree_v2"};
RealSymbol<CuMemCreateFn> real_mem_create{"cuMemCreate"};
RealSymbol<CuMemReleaseFn> real_mem_release{"cuMemRelease"};
RealSymbol<CuMemMapFn> real_mem_map{"cuMemMap"};
RealSymbol<CuMemUnmapFn> real_mem_unmap{"cuMemUnmap"};

int device_of(const CUmemAllocationProp* prop) {
  if (prop == nullptr) return current_driver_device();
  if (prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE) return prop->location.id;
  return kCpuDevice;  // host-located physical memory: counted, never budgeted
}

template <typename Real>
CUresult allocate(std::uintptr_t* key, size_t size, int device, Real&& real) {
  if (key == nullptr || size == 0) return real();
  if (!admit(device, size)) return CUDA_ERROR_OUT_OF_MEMORY;
  const CUresult status = real();
  if (status != CUDA_SUCCESS) {
    cancel_admission(device, size, status == CUDA_ERROR_OUT_OF_MEMORY);
    return status;
  }
  on_allocated(*key, size, device, 0);
  return status;
}

template <typename Real>
CUresult release(std::uintptr_t key, Real&& real) {
  if (key == 0) return real();
  const auto record = on_freeing(key);
  const CUresult status = real();
  if (status != CUDA_SUCCESS && record) on_free_failed(key, *record);
  return status;
}

}  // namespace
}  // namespace oomguard::preload

using namespace oomguard::preload;

OOMGUARD_INTERPOSE CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  CuMemAllocFn fn = real_mem_alloc.get();
  if (fn == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  ReentryGuard guard;
  if (!guard.outermost()) return fn(dptr, bytesize);
  count(Call::kCuMemAllocV2);
  static_assert(sizeof(CUdeviceptr) == sizeof(std::uintptr_t));
  return allocate(reinterpret_cast<std::uintptr_t*>(dptr), bytesize, current_driver_device(),
                  [&] { return fn(dptr, bytesize); });
}

OOMGUARD_INTERPOSE CUresult cuMemFree_v2(CUdeviceptr dptr) {
  CuMemFreeFn fn = real_mem_free.get();
  if (fn == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  ReentryGuard guard;
  if (!guard.outermost()) return fn(dptr);
  count(Call::kCuMemFreeV2);
  return release(static_cast<std::uintptr_t>(dptr), [&] { return fn(dptr); });
}

OOMGUARD_INTERPOSE CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                                        const CUmemAllocationProp* prop, unsigned long long flags) {
  CuMemCreateFn fn = real_mem_create.get();
  if (fn == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  ReentryGuard guard;
  if (!guard.outermost()) return fn(handle, size, prop, flags);
  count(Call::kCuMemCreate);
  static_assert(sizeof(CUmemGenericAllocationHandle) == sizeof(std::uintptr_t));
  return allocate(reinterpret_cast<std::uintptr_t*>(handle), size, device_of(prop),
                  [&] { return fn(handle, size, prop, flags); });
}

OOMGUARD_INTERPOSE CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  CuMemReleaseFn fn = real_mem_release.get();
  if (fn == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  ReentryGuard guard;
  if (!guard.outermost()) return fn(handle);
  count(Call::kCuMemRelease);
  return release(static_cast<std::uintptr_t>(handle), [&] { return fn(handle); });
}

OOMGUARD_INTERPOSE CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                                     unsigned long long flags) {
  CuMemMapFn fn = real_mem_map.get();
  if (fn == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  ReentryGuard guard;
  if (guard.outermost()) count(Call::kCuMemMap);
  return fn(ptr, size, offset, handle, flags);
}

OOMGUARD_INTERPOSE CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) {
  CuMemUnmapFn fn = real_mem_unmap.get();
  if (fn == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  ReentryGuard guard;
  if (guard.outermost()) count(Call::kCuMemUnmap);
  return fn(ptr, size);
}

namespace oomguard::preload {
namespace {

// Hand out `wrapper` in place of `real`. A query answered by our own wrapper
// (a runtime that asks the driver through the exported cuGetProcAddress) must
// not become the wrapper's "real" function: it would call itself.
template <typename Fn>
void* substitute(RealSymbol<Fn>& slot, Fn wrapper, void* real) noexcept {
  if (real != nullptr && real != reinterpret_cast<void*>(wrapper)) slot.offer(reinterpret_cast<Fn>(real));
  return reinterpret_cast<void*>(wrapper);
}

}  // namespace

void* driver_wrapper_for(const char* symbol, int version, void* real) noexcept {
  if (symbol == nullptr) return nullptr;
  auto is = [symbol](const char* name) { return std::strcmp(symbol, name) == 0; };
  // Before 3.2 "cuMemAlloc" was the 32-bit-size call, which we do not wrap.
  const bool v2 = version == 0 || version >= 3020;
  if ((is("cuMemAlloc") && v2) || is("cuMemAlloc_v2")) {
    return substitute(real_mem_alloc, static_cast<CuMemAllocFn>(&::cuMemAlloc_v2), real);
  }
  if ((is("cuMemFree") && v2) || is("cuMemFree_v2")) {
    return substitute(real_mem_free, static_cast<CuMemFreeFn>(&::cuMemFree_v2), real);
  }
  if (is("cuMemCreate")) {
    return substitute(real_mem_create, static_cast<CuMemCreateFn>(&::cuMemCreate), real);
  }
  if (is("cuMemRelease")) {
    return substitute(real_mem_release, static_cast<CuMemReleaseFn>(&::cuMemRelease), real);
  }
  if (is("cuMemMap")) {
    return substitute(real_mem_map, static_cast<CuMemMapFn>(&::cuMemMap), real);
  }
  if (is("cuMemUnmap")) {
    return substitute(real_mem_unmap, static_cast<CuMemUnmapFn>(&::cuMemUnmap), real);
  }
  return nullptr;
}

}  // namespace oomguard::preload
