#include "oomguard/cuda_driver_upstream.hpp"

#include <cuda.h>
#include <dlfcn.h>
#include <fmt/format.h>

#include <mutex>
#include <vector>

#include "oomguard/error.hpp"

namespace oomguard {

// Note [Driver seam]
// Only types come from cuda.h; every function is resolved from libcuda.so.1
// with dlsym, so nothing links against the driver and a machine without one
// gets a clear upstream_error instead of a loader failure.
struct CudaDriverUpstream::Driver {
  void* handle = nullptr;
  decltype(&::cuInit) init = nullptr;
  decltype(&::cuDeviceGetCount) device_get_count = nullptr;
  decltype(&::cuDeviceGet) device_get = nullptr;
  decltype(&::cuDevicePrimaryCtxRetain) primary_ctx_retain = nullptr;
  decltype(&::cuDevicePrimaryCtxRelease) primary_ctx_release = nullptr;
  decltype(&::cuCtxGetCurrent) ctx_get_current = nullptr;
  decltype(&::cuCtxSetCurrent) ctx_set_current = nullptr;
  decltype(&::cuMemAlloc) mem_alloc = nullptr;
  decltype(&::cuMemFree) mem_free = nullptr;
  decltype(&::cuMemGetInfo) mem_get_info = nullptr;
  decltype(&::cuGetErrorString) get_error_string = nullptr;
  int devices = 0;
  std::vector<CUcontext> contexts;  // primary context per device, retained lazily
  std::mutex contexts_mutex;        // first use of a device only

  template <typename Fn>
  void resolve(Fn& fn, const char* symbol) {
    fn = reinterpret_cast<Fn>(dlsym(handle, symbol));
    if (fn == nullptr) {
      throw upstream_error(fmt::format("oomguard: the CUDA driver (libcuda.so.1) lacks {}; the driver is too old", symbol));
    }
  }

  std::string describe(CUresult r) const {
    const char* text = nullptr;
    if (get_error_string != nullptr) get_error_string(r, &text);
    return fmt::format("{} ({})", text != nullptr ? text : "unknown CUDA error", static_cast<int>(r));
  }
};

CudaDriverUpstream::CudaDriverUpstream() : driver_(std::make_unique<Driver>()) {
  Driver& d = *driver_;
  d.handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (d.handle == nullptr) {
    const char* why = dlerror();
    throw upstream_error(fmt::format(
        "oomguard: no CUDA driver: libcuda.so.1 could not be loaded ({}). Use a machine with an NVIDIA driver, "
        "or the simulated device (upstream:simulated) for tests",
        why != nullptr ? why : "not found"));
  }
  d.resolve(d.init, "cuInit");
  d.resolve(d.device_get_count, "cuDeviceGetCount");
  d.resolve(d.device_get, "cuDeviceGet");
  d.resolve(d.primary_ctx_retain, "cuDevicePrimaryCtxRetain");
  d.resolve(d.primary_ctx_release, "cuDevicePrimaryCtxRelease_v2");
  d.resolve(d.ctx_get_current, "cuCtxGetCurrent");
  d.resolve(d.ctx_set_current, "cuCtxSetCurrent");
  d.resolve(d.mem_alloc, "cuMemAlloc_v2");
  d.resolve(d.mem_free, "cuMemFree_v2");
  d.resolve(d.mem_get_info, "cuMemGetInfo_v2");
  d.resolve(d.get_error_string, "cuGetErrorString");
  if (CUresult r = d.init(0); r != CUDA_SUCCESS) {
    throw upstream_error(fmt::format("oomguard: cuInit failed: {}", d.describe(r)));
  }
  if (CUresult r = d.device_get_count(&d.devices); r != CUDA_SUCCESS) {
    throw upstream_error(fmt::format("oomguard: cuDeviceGetCount failed: {}", d.describe(r)));
  }
  if (d.devices == 0) throw upstream_error("oomguard: the CUDA driver reports no device");
  d.contexts.assign(static_cast<std::size_t>(d.devices), nullptr);
}

CudaDriverUpstream::~CudaDriverUpstream() {
  // The driver may already be torn down at process exit; the handle and the
  // primary contexts are left to it.
}

int CudaDriverUpstream::device_count() { return driver_->devices; }

void CudaDriverUpstream::make_current(int device) {
  Driver& d = *driver_;
  if (device < 0 || device >= d.devices) {
    throw upstream_error(fmt::format("oomguard: no CUDA device {} (devices 0..{})", device, d.devices - 1));
  }
  CUcontext ctx;
  {
    std::lock_guard lock(d.contexts_mutex);
    ctx = d.contexts[static_cast<std::size_t>(device)];
    if (ctx == nullptr) {
      CUdevice dev;
      if (CUresult r = d.device_get(&dev, device); r != CUDA_SUCCESS) {
        throw upstream_error(fmt::format("oomguard: cuDeviceGet({}) failed: {}", device, d.describe(r)));
      }
      if (CUresult r = d.primary_ctx_retain(&ctx, dev); r != CUDA_SUCCESS) {
        throw upstream_error(fmt::format("oomguard: cuDevicePrimaryCtxRetain({}) failed: {}", device, d.describe(r)));
      }
      d.contexts[static_cast<std::size_t>(device)] = ctx;
    }
  }
  CUcontext current = nullptr;
  d.ctx_get_current(&current);
  if (current != ctx) d.ctx_set_current(ctx);
}

void* CudaDriverUpstream::allocate(std::size_t bytes, int device) {
  make_current(device);
  CUdeviceptr ptr = 0;
  const CUresult r = driver_->mem_alloc(&ptr, bytes);
  if (r == CUDA_ERROR_OUT_OF_MEMORY) return nullptr;
  if (r != CUDA_SUCCESS) {
    throw upstream_error(fmt::format("oomguard: cuMemAlloc({} bytes) on device {} failed: {}", bytes, device,
                                     driver_->describe(r)));
  }
  return reinterpret_cast<void*>(static_cast<std::uintptr_t>(ptr));
}

void CudaDriverUpstream::deallocate(void* ptr, std::size_t /*bytes*/, int device) noexcept {
  try {
    make_current(device);
  } catch (const upstream_error&) {
    return;
  }
  driver_->mem_free(static_cast<CUdeviceptr>(reinterpret_cast<std::uintptr_t>(ptr)));
}

DeviceMemoryInfo CudaDriverUpstream::memory_info(int device) {
  make_current(device);
  std::size_t free = 0;
  std::size_t total = 0;
  if (CUresult r = driver_->mem_get_info(&free, &total); r != CUDA_SUCCESS) {
    throw upstream_error(fmt::format("oomguard: cuMemGetInfo on device {} failed: {}", device, driver_->describe(r)));
  }
  return {free, total};
}

}  // namespace oomguard
