// Memory NCCL hands out or is told about: ncclMemAlloc (through the driver,
// so it is charged to the device like any allocation), buffer and window
// registration (remembered, nothing pinned or mapped), and the device-side
// communicator of NCCL's device API (not simulated).
#include <cuda.h>
#include <nccl.h>
#include <oomguard_sim/sim_api.h>

#include <cstdint>

#include "communicator.hpp"
#include "errors.hpp"

namespace oomguard::sim::nccl {
namespace {

// What ncclCommRegister's handle and ncclCommWindowRegister's window point
// at: enough to refuse a handle that is not one, or one from another
// communicator. Deregistration frees it, as NCCL frees its own.
struct Registration {
  static constexpr std::uint64_t kLive = 0x6f6f6d2d72656721ULL;  // "oom-reg!"
  static constexpr std::uint64_t kReleased = 0;
  std::uint64_t magic = kLive;
  const ncclComm* comm;
  void* buffer;
  std::size_t size;
};

ncclResult_t register_buffer(const char* function, ncclComm_t comm, void* buffer, std::size_t size, void** out) {
  if (ncclResult_t r = check_communicator(comm, function); r != ncclSuccess) return r;
  if (out == nullptr) return fail(ncclInvalidArgument, function, "the handle pointer is NULL");
  if (buffer == nullptr && size > 0) return fail(ncclInvalidArgument, function, "buffer is NULL for %zu bytes", size);
  *out = new Registration{.comm = comm, .buffer = buffer, .size = size};
  return ncclSuccess;
}

ncclResult_t deregister_buffer(const char* function, ncclComm_t comm, void* handle) {
  if (ncclResult_t r = check_communicator(comm, function, /*finalized_ok=*/true); r != ncclSuccess) return r;
  auto* registration = static_cast<Registration*>(handle);
  if (registration == nullptr || registration->magic != Registration::kLive)
    return fail(ncclInvalidArgument, function, "%p is not a live registration", handle);
  if (registration->comm != comm)
    return fail(ncclInvalidArgument, function, "the registration belongs to another communicator");
  registration->magic = Registration::kReleased;
  delete registration;
  return ncclSuccess;
}

}  // namespace
}  // namespace oomguard::sim::nccl

using namespace oomguard::sim::nccl;

// NCCL's device API (nccl_device.h needs a CUDA compiler): its types are
// opaque here, never read.
struct ncclDevCommRequirements;
struct ncclDevComm;

extern "C" {

OOMGUARD_SIM_EXPORT ncclResult_t ncclMemAlloc(void** ptr, size_t size) {
  if (ptr == nullptr) return fail(ncclInvalidArgument, __func__, "ptr is NULL");
  *ptr = nullptr;
  if (size == 0) return ncclSuccess;
  // Real NCCL maps VMM memory at the multicast granularity; one cuMemAlloc on
  // the current device charges the same bytes up to that rounding.
  CUdeviceptr address = 0;
  const CUresult r = cuMemAlloc(&address, size);
  if (r != CUDA_SUCCESS)
    return fail(ncclUnhandledCudaError, __func__, "cuMemAlloc of %zu bytes returned CUresult %d", size,
                static_cast<int>(r));
  *ptr = reinterpret_cast<void*>(address);
  return ncclSuccess;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclMemFree(void* ptr) {
  if (ptr == nullptr) return ncclSuccess;
  const CUresult r = cuMemFree(reinterpret_cast<CUdeviceptr>(ptr));
  if (r != CUDA_SUCCESS)
    return fail(ncclUnhandledCudaError, __func__, "cuMemFree(%p) returned CUresult %d", ptr, static_cast<int>(r));
  return ncclSuccess;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommRegister(const ncclComm_t comm, void* buff, size_t size, void** handle) {
  return register_buffer(__func__, comm, buff, size, handle);
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommDeregister(const ncclComm_t comm, void* handle) {
  return deregister_buffer(__func__, comm, handle);
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommWindowRegister(ncclComm_t comm, void* buff, size_t size, ncclWindow_t* win,
                                                        int /*winFlags*/) {
  if (win == nullptr) return fail(ncclInvalidArgument, __func__, "win is NULL");
  void* handle = nullptr;
  const ncclResult_t r = register_buffer(__func__, comm, buff, size, &handle);
  *win = static_cast<ncclWindow_t>(handle);
  return r;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommWindowDeregister(ncclComm_t comm, ncclWindow_t win) {
  return deregister_buffer(__func__, comm, win);
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclDevCommCreate(ncclComm_t comm, const ncclDevCommRequirements* /*reqs*/,
                                                   ncclDevComm* /*outDevComm*/) {
  // Device-initiated communication runs inside user kernels, which never run.
  if (ncclResult_t r = check_communicator(comm, __func__); r != ncclSuccess) return r;
  oomguard_sim_unsupported("nccl", __func__);
  return fail(ncclInvalidUsage, __func__, "NCCL's device API is not simulated");
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclDevCommDestroy(ncclComm_t comm, const ncclDevComm* /*devComm*/) {
  if (ncclResult_t r = check_communicator(comm, __func__, /*finalized_ok=*/true); r != ncclSuccess) return r;
  oomguard_sim_unsupported("nccl", __func__);
  return fail(ncclInvalidUsage, __func__, "NCCL's device API is not simulated");
}

}  // extern "C"
