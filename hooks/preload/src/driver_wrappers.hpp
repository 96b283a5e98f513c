// The driver calls we wrap, both as exported symbols and as the pointers we
// hand out from entry-point queries (entry_point_hooks.cpp).
#pragma once

#include <cuda.h>

namespace oomguard::preload {

using CuMemAllocFn = CUresult (*)(CUdeviceptr*, size_t);
using CuMemFreeFn = CUresult (*)(CUdeviceptr);
using CuMemCreateFn = CUresult (*)(CUmemGenericAllocationHandle*, size_t, const CUmemAllocationProp*,
                                   unsigned long long);
using CuMemReleaseFn = CUresult (*)(CUmemGenericAllocationHandle);
using CuMemMapFn = CUresult (*)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle, unsigned long long);
using CuMemUnmapFn = CUresult (*)(CUdeviceptr, size_t);

// The wrapper for a driver symbol name as queried ("cuMemAlloc" at version
// >= 3020, "cuMemFree", "cuMemCreate", "cuMemRelease", "cuMemMap",
// "cuMemUnmap"), or nullptr when we do not wrap it. `real` is what the query
// returned; it becomes the function the wrapper calls if none is known yet.
void* driver_wrapper_for(const char* symbol, int version, void* real) noexcept;

}  // namespace oomguard::preload
