// The CUDA runtime's allocation calls. Each wrapper, on the outermost call of
// its thread (Note [Re-entry]): counts the call, admits the bytes against the
// budget (Note [Segment budget admission]), calls the real function with no
// lock held, then records or forgets the segment.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "call_counters.hpp"
#include "device_query.hpp"
#include "export.hpp"
#include "real_symbol.hpp"
#include "reentry_guard.hpp"
#include "segment_accounting.hpp"

namespace oomguard::preload {
namespace {

using MallocFn = cudaError_t (*)(void**, size_t);
using FreeFn = cudaError_t (*)(void*);
using MallocAsyncFn = cudaError_t (*)(void**, size_t, cudaStream_t);
using FreeAsyncFn = cudaError_t (*)(void*, cudaStream_t);
using MallocManagedFn = cudaError_t (*)(void**, size_t, unsigned int);

RealSymbol<MallocFn> real_malloc{"cudaMalloc"};
RealSymbol<FreeFn> real_free{"cudaFree"};
RealSymbol<MallocAsyncFn> real_malloc_async{"cudaMallocAsync"};
RealSymbol<FreeAsyncFn> real_free_async{"cudaFreeAsync"};
RealSymbol<MallocAsyncFn> real_malloc_async_ptsz{"cudaMallocAsync_ptsz"};
RealSymbol<FreeAsyncFn> real_free_async_ptsz{"cudaFreeAsync_ptsz"};
RealSymbol<MallocManagedFn> real_malloc_managed{"cudaMallocManaged"};

template <typename Real>
cudaError_t allocate(Call call, void** pointer, size_t size, cudaStream_t stream, Real&& real) {
  ReentryGuard guard;
  if (!guard.outermost()) return real();
  count(call);
  if (pointer == nullptr || size == 0) return real();
  const int device = current_runtime_device();
  if (!admit(device, size)) return cudaErrorMemoryAllocation;
  const cudaError_t status = real();
  if (status != cudaSuccess) {
    cancel_admission(device, size, status == cudaErrorMemoryAllocation);
    return status;
  }
  on_allocated(reinterpret_cast<std::uintptr_t>(*pointer), size, device, reinterpret_cast<std::uintptr_t>(stream));
  return status;
}

template <typename Real>
cudaError_t release(Call call, void* pointer, Real&& real) {
  ReentryGuard guard;
  if (!guard.outermost()) return real();
  count(call);
  if (pointer == nullptr) return real();
  // Forget it before the real free: once freed, another thread may be handed
  // the same address and record it.
  const auto record = on_freeing(reinterpret_cast<std::uintptr_t>(pointer));
  const cudaError_t status = real();
  if (status != cudaSuccess && record) on_free_failed(reinterpret_cast<std::uintptr_t>(pointer), *record);
  return status;
}

}  // namespace
}  // namespace oomguard::preload

using namespace oomguard::preload;

OOMGUARD_INTERPOSE cudaError_t cudaMalloc(void** devPtr, size_t size) {
  MallocFn fn = real_malloc.get();
  if (fn == nullptr) return cudaErrorInitializationError;
  return allocate(Call::kCudaMalloc, devPtr, size, nullptr, [&] { return fn(devPtr, size); });
}

OOMGUARD_INTERPOSE cudaError_t cudaFree(void* devPtr) {
  FreeFn fn = real_free.get();
  if (fn == nullptr) return cudaErrorInitializationError;
  return release(Call::kCudaFree, devPtr, [&] { return fn(devPtr); });
}

OOMGUARD_INTERPOSE cudaError_t cudaMallocAsync(void** devPtr, size_t size, cudaStream_t stream) {
  MallocAsyncFn fn = real_malloc_async.get();
  if (fn == nullptr) return cudaErrorInitializationError;
  return allocate(Call::kCudaMallocAsync, devPtr, size, stream, [&] { return fn(devPtr, size, stream); });
}

OOMGUARD_INTERPOSE cudaError_t cudaFreeAsync(void* devPtr, cudaStream_t stream) {
  FreeAsyncFn fn = real_free_async.get();
  if (fn == nullptr) return cudaErrorInitializationError;
  return release(Call::kCudaFreeAsync, devPtr, [&] { return fn(devPtr, stream); });
}

// Per-thread-default-stream builds (--default-stream per-thread) call these.
OOMGUARD_INTERPOSE cudaError_t cudaMallocAsync_ptsz(void** devPtr, size_t size, cudaStream_t stream) {
  MallocAsyncFn fn = real_malloc_async_ptsz.get();
  if (fn == nullptr) return cudaErrorInitializationError;
  return allocate(Call::kCudaMallocAsync, devPtr, size, stream, [&] { return fn(devPtr, size, stream); });
}

OOMGUARD_INTERPOSE cudaError_t cudaFreeAsync_ptsz(void* devPtr, cudaStream_t stream) {
  FreeAsyncFn fn = real_free_async_ptsz.get();
  if (fn == nullptr) return cudaErrorInitializationError;
  return release(Call::kCudaFreeAsync, devPtr, [&] { return fn(devPtr, stream); });
}

OOMGUARD_INTERPOSE cudaError_t cudaMallocManaged(void** devPtr, size_t size, unsigned int flags) {
  MallocManagedFn fn = real_malloc_managed.get();
  if (fn == nullptr) return cudaErrorInitializationError;
  return allocate(Call::kCudaMallocManaged, devPtr, size, nullptr, [&] { return fn(devPtr, size, flags); });
}
