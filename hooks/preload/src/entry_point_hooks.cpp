// Entry-point queries: the way PyTorch (c10/cuda/driver_api.cpp, expandable
// segments) and other libraries get driver functions without linking libcuda.
// When a query returns one of the driver calls we wrap, the caller gets our
// wrapper, which calls the pointer the query returned.
#include <cuda.h>
#include <cuda_runtime_api.h>

#include "call_counters.hpp"
#include "driver_wrappers.hpp"
#include "export.hpp"
#include "real_symbol.hpp"
#include "reentry_guard.hpp"

// cuda.h maps cuGetProcAddress to cuGetProcAddress_v2; libcuda still exports
// the four-argument original, which older runtimes call, so we define both.
#undef cuGetProcAddress

namespace oomguard::preload {
namespace {

using EntryPointFn = cudaError_t (*)(const char*, void**, unsigned long long, cudaDriverEntryPointQueryResult*);
using EntryPointByVersionFn = cudaError_t (*)(const char*, void**, unsigned int, unsigned long long,
                                              cudaDriverEntryPointQueryResult*);
using ProcAddressFn = CUresult (*)(const char*, void**, int, cuuint64_t);
using ProcAddressV2Fn = CUresult (*)(const char*, void**, int, cuuint64_t, CUdriverProcAddressQueryResult*);

RealSymbol<EntryPointFn> real_entry_point{"cudaGetDriverEntryPoint"};
RealSymbol<EntryPointFn> real_entry_point_ptsz{"cudaGetDriverEntryPoint_ptsz"};
RealSymbol<EntryPointByVersionFn> real_entry_point_by_version{"cudaGetDriverEntryPointByVersion"};
RealSymbol<EntryPointByVersionFn> real_entry_point_by_version_ptsz{"cudaGetDriverEntryPointByVersion_ptsz"};
RealSymbol<ProcAddressFn> real_proc_address{"cuGetProcAddress"};
RealSymbol<ProcAddressV2Fn> real_proc_address_v2{"cuGetProcAddress_v2"};

// Called after a successful query on the outermost call of this thread.
void hand_out_wrapper(const char* symbol, void** function, int version) noexcept {
  if (function == nullptr || *function == nullptr) return;
  if (void* wrapper = driver_wrapper_for(symbol, version, *function)) {
    *function = wrapper;
    count_wrapper_handed_out();
  }
}

template <typename Status, typename Real>
Status query(Call call, Status success, const char* symbol, void** function, int version, Real&& real) {
  ReentryGuard guard;
  const Status status = real();
  if (!guard.outermost()) return status;
  count(call);
  if (status == success) hand_out_wrapper(symbol, function, version);
  return status;
}

}  // namespace
}  // namespace oomguard::preload

using namespace oomguard::preload;

// A runtime's own entry point answers with its own CUDA version: "cuMemAlloc"
// is the _v2 call there (version 0 below means "current").
OOMGUARD_INTERPOSE cudaError_t cudaGetDriverEntryPoint(const char* symbol, void** funcPtr, unsigned long long flags,
                                                       cudaDriverEntryPointQueryResult* driverStatus) {
  EntryPointFn fn = real_entry_point.get();
  if (fn == nullptr) return cudaErrorInitializationError;
  return query(Call::kCudaGetDriverEntryPoint, cudaSuccess, symbol, funcPtr, 0,
               [&] { return fn(symbol, funcPtr, flags, driverStatus); });
}

OOMGUARD_INTERPOSE cudaError_t cudaGetDriverEntryPoint_ptsz(const char* symbol, void** funcPtr,
                                                            unsigned long long flags,
                                                            cudaDriverEntryPointQueryResult* driverStatus) {
  EntryPointFn fn = real_entry_point_ptsz.get();
  if (fn == nullptr) return cudaErrorInitializationError;
  return query(Call::kCudaGetDriverEntryPoint, cudaSuccess, symbol, funcPtr, 0,
               [&] { return fn(symbol, funcPtr, flags, driverStatus); });
}

OOMGUARD_INTERPOSE cudaError_t cudaGetDriverEntryPointByVersion(const char* symbol, void** funcPtr,
                                                                unsigned int cudaVersion, unsigned long long flags,
                                                                cudaDriverEntryPointQueryResult* driverStatus) {
  EntryPointByVersionFn fn = real_entry_point_by_version.get();
  if (fn == nullptr) return cudaErrorInitializationError;
  return query(Call::kCudaGetDriverEntryPointByVersion, cudaSuccess, symbol, funcPtr, static_cast<int>(cudaVersion),
               [&] { return fn(symbol, funcPtr, cudaVersion, flags, driverStatus); });
}

OOMGUARD_INTERPOSE cudaError_t cudaGetDriverEntryPointByVersion_ptsz(const char* symbol, void** funcPtr,
                                                                     unsigned int cudaVersion,
                                                                     unsigned long long flags,
                                                                     cudaDriverEntryPointQueryResult* driverStatus) {
  EntryPointByVersionFn fn = real_entry_point_by_version_ptsz.get();
  if (fn == nullptr) return cudaErrorInitializationError;
  return query(Call::kCudaGetDriverEntryPointByVersion, cudaSuccess, symbol, funcPtr, static_cast<int>(cudaVersion),
               [&] { return fn(symbol, funcPtr, cudaVersion, flags, driverStatus); });
}

OOMGUARD_INTERPOSE CUresult cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags) {
  ProcAddressFn fn = real_proc_address.get();
  if (fn == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  return query(Call::kCuGetProcAddress, CUDA_SUCCESS, symbol, pfn, cudaVersion,
               [&] { return fn(symbol, pfn, cudaVersion, flags); });
}

OOMGUARD_INTERPOSE CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags,
                                                CUdriverProcAddressQueryResult* symbolStatus) {
  ProcAddressV2Fn fn = real_proc_address_v2.get();
  if (fn == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  return query(Call::kCuGetProcAddressV2, CUDA_SUCCESS, symbol, pfn, cudaVersion,
               [&] { return fn(symbol, pfn, cudaVersion, flags, symbolStatus); });
}
