// The driver's initialization, the per-thread current device and the
// primary contexts (Note [Current device]), and the device-management calls
// built on them.
#include <memory>
#include <mutex>

#include "runtime.hpp"

namespace oomguard::sim::runtime {
namespace {

// One per device, built at initialization and never freed: torch makes
// runtime calls from static destructors, after any static object of ours
// would have been destroyed.
struct DeviceSlot {
  std::once_flag retained;
  CUcontext context = nullptr;
  CUresult error = CUDA_SUCCESS;
  std::once_flag limits_read;
  LaunchLimits limits{};
};

std::once_flag g_initialize_once;
cudaError_t g_initialize_error = cudaErrorInitializationError;
int g_device_count = 0;
DeviceSlot* g_devices = nullptr;

struct ThreadBinding {
  int device = 0;
  CUcontext bound = nullptr;  // the context this thread made current, if any
};
thread_local ThreadBinding t_binding;

void initialize_once() {
  const CUresult result = cuInit(0);
  if (result == CUDA_ERROR_NO_DEVICE) {
    g_initialize_error = cudaErrorNoDevice;
    return;
  }
  if (result != CUDA_SUCCESS) return;  // the driver has said why on stderr
  int count = 0;
  if (cuDeviceGetCount(&count) != CUDA_SUCCESS || count <= 0) {
    g_initialize_error = cudaErrorNoDevice;
    return;
  }
  g_devices = new DeviceSlot[static_cast<std::size_t>(count)];
  g_device_count = count;
  g_initialize_error = cudaSuccess;
}

}  // namespace

cudaError_t initialize() {
  std::call_once(g_initialize_once, initialize_once);
  return g_initialize_error;
}

int device_count() { return initialize() == cudaSuccess ? g_device_count : 0; }

int current_device() { return t_binding.device; }

CUcontext primary_context(int ordinal, CUresult& error) {
  if (initialize() != cudaSuccess || ordinal < 0 || ordinal >= g_device_count) {
    error = CUDA_ERROR_INVALID_DEVICE;
    return nullptr;
  }
  DeviceSlot& slot = g_devices[ordinal];
  // Retained once for the life of the process, as the real runtime does:
  // the context (and its charge on the device) stays until exit.
  std::call_once(slot.retained, [&slot, ordinal] {
    CUdevice device = 0;
    slot.error = cuDeviceGet(&device, ordinal);
    if (slot.error == CUDA_SUCCESS) slot.error = cuDevicePrimaryCtxRetain(&slot.context, device);
    if (slot.error != CUDA_SUCCESS) slot.context = nullptr;
  });
  error = slot.error;
  return slot.context;
}

cudaError_t require_context() {
  if (t_binding.bound != nullptr) return cudaSuccess;
  if (const cudaError_t error = initialize(); error != cudaSuccess) return fail(error);
  CUresult error = CUDA_SUCCESS;
  CUcontext context = primary_context(t_binding.device, error);
  if (!context) return check(error);
  if (const cudaError_t bound = check(cuCtxSetCurrent(context)); bound != cudaSuccess) return bound;
  t_binding.bound = context;
  return cudaSuccess;
}

cudaError_t set_current_device(int ordinal) {
  if (const cudaError_t error = initialize(); error != cudaSuccess) return fail(error);
  if (ordinal < 0 || ordinal >= g_device_count) return fail(cudaErrorInvalidDevice);
  if (t_binding.device != ordinal) {
    t_binding.device = ordinal;
    t_binding.bound = nullptr;
  }
  return require_context();
}

int attribute(CUdevice_attribute which, int ordinal, int fallback) {
  int value = 0;
  return cuDeviceGetAttribute(&value, which, ordinal) == CUDA_SUCCESS ? value : fallback;
}

const LaunchLimits& launch_limits(int ordinal) {
  DeviceSlot& slot = g_devices[ordinal];
  std::call_once(slot.limits_read, [&slot, ordinal] {
    auto read = [ordinal](CUdevice_attribute which, int fallback) {
      return static_cast<unsigned>(attribute(which, ordinal, fallback));
    };
    slot.limits.max_threads_per_block = read(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 1024);
    slot.limits.max_block[0] = read(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, 1024);
    slot.limits.max_block[1] = read(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, 1024);
    slot.limits.max_block[2] = read(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, 64);
    slot.limits.max_grid[0] = read(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, 2147483647);
    slot.limits.max_grid[1] = read(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, 65535);
    slot.limits.max_grid[2] = read(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, 65535);
    slot.limits.max_shared_optin = read(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 48 << 10);
    slot.limits.default_shared = read(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 48 << 10);
    slot.limits.max_threads_per_sm = read(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, 2048);
    slot.limits.max_blocks_per_sm = read(CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR, 32);
    slot.limits.registers_per_sm = read(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR, 65536);
    slot.limits.shared_per_sm = read(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 164 << 10);
    slot.limits.reserved_shared_per_block = read(CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK, 1 << 10);
    slot.limits.major = static_cast<int>(read(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 8));
    slot.limits.minor = static_cast<int>(read(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0));
  });
  return slot.limits;
}

}  // namespace oomguard::sim::runtime

using namespace oomguard::sim::runtime;

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return fail(cudaErrorInvalidValue);
  *count = 0;
  if (const cudaError_t error = initialize(); error != cudaSuccess) return fail(error);
  *count = device_count();
  return cudaSuccess;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGetDevice(int* device) {
  if (!device) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = initialize(); error != cudaSuccess) return fail(error);
  *device = current_device();
  return cudaSuccess;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaSetDevice(int device) { return set_current_device(device); }

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaInitDevice(int device, unsigned int device_flags, unsigned int flags) {
  if (flags != 0) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = initialize(); error != cudaSuccess) return fail(error);
  if (device < 0 || device >= device_count()) return fail(cudaErrorInvalidDevice);
  if (device_flags != 0) {
    if (const cudaError_t error = check(cuDevicePrimaryCtxSetFlags(device, device_flags)); error != cudaSuccess) {
      return error;
    }
  }
  CUresult error = CUDA_SUCCESS;
  return primary_context(device, error) ? cudaSuccess : check(error);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaSetDeviceFlags(unsigned int flags) {
  if (const cudaError_t error = initialize(); error != cudaSuccess) return fail(error);
  return check(cuDevicePrimaryCtxSetFlags(current_device(), flags & ~static_cast<unsigned>(cudaDeviceMapHost)));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGetDeviceFlags(unsigned int* flags) {
  if (!flags) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = initialize(); error != cudaSuccess) return fail(error);
  int active = 0;
  return check(cuDevicePrimaryCtxGetState(current_device(), flags, &active));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceSynchronize(void) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuCtxSynchronize());
}

// The primary context (and what it charged) stays: a reset on a GPU frees
// every allocation of the process on the device, which the caching
// allocators above would not expect either. What a program can observe of
// a reset here is a synchronization.
OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceReset(void) { return cudaDeviceSynchronize(); }

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDriverGetVersion(int* version) {
  if (!version) return fail(cudaErrorInvalidValue);
  return check(cuDriverGetVersion(version));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaRuntimeGetVersion(int* version) {
  if (!version) return fail(cudaErrorInvalidValue);
  *version = CUDART_VERSION;
  return cudaSuccess;
}
