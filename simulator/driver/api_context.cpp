// Contexts: each device's primary context (what the runtime uses) and
// cuCtxCreate'd ones, and the calling thread's context stack.
//
// Note [Context charge]
// A real driver takes a few hundred MiB of device memory when a context is
// created (its code, stacks, heaps; gpus.def's "CUDA context"). The
// simulator charges the table's context bytes when a context becomes
// active, so cuMemGetInfo right after the first cudaSetDevice reports them
// as used, and gives them back when the context is destroyed (the last
// cuDevicePrimaryCtxRelease, cuCtxDestroy).
#include <mutex>

#include "api.hpp"
#include "log.hpp"

using namespace oomguard::sim;

namespace oomguard::sim {

CUresult activate_context_locked(Context& context) {
  if (context.active.load()) return CUDA_SUCCESS;
  Device& device = *context.device;
  if (!device.try_charge(device.context_bytes)) {
    oomguard_sim_log(1, "driver: device %d cannot hold a context (%llu bytes): out of memory", device.ordinal,
                     static_cast<unsigned long long>(device.context_bytes));
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  context.active.store(true, std::memory_order_release);
  return CUDA_SUCCESS;
}

CUresult current_context(Context*& context) {
  const auto& stack = this_thread().context_stack;
  if (stack.empty()) return CUDA_ERROR_INVALID_CONTEXT;
  context = stack.back();
  return context->active.load(std::memory_order_acquire) ? CUDA_SUCCESS : CUDA_ERROR_CONTEXT_IS_DESTROYED;
}

CUresult current_device(Device*& device) {
  Context* context = nullptr;
  if (CUresult r = current_context(context); r != CUDA_SUCCESS) return r;
  device = context->device;
  return CUDA_SUCCESS;
}

}  // namespace oomguard::sim

namespace {

CUresult live_context(Driver& driver, CUcontext handle, Context*& context) {
  context = driver.contexts.find(handle);
  return context ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

void deactivate_locked(Context& context) {
  if (!context.active.load()) return;
  context.active.store(false, std::memory_order_release);
  context.device->uncharge(context.device->context_bytes);
}

}  // namespace

OOMGUARD_SIM_DRIVER_API CUresult cuDevicePrimaryCtxRetain(CUcontext* handle, CUdevice ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  Device* device = driver->device(ordinal);
  if (!device) return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard lock(device->mutex);
  if (CUresult r = activate_context_locked(device->primary_context); r != CUDA_SUCCESS) return r;
  ++device->primary_context.retains;
  *handle = reinterpret_cast<CUcontext>(&device->primary_context);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = driver->device(ordinal);
  if (!device) return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard lock(device->mutex);
  Context& context = device->primary_context;
  if (context.retains == 0) return CUDA_ERROR_INVALID_CONTEXT;
  if (--context.retains == 0) deactivate_locked(context);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDevicePrimaryCtxGetState(CUdevice ordinal, unsigned int* flags, int* active) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = driver->device(ordinal);
  if (!device) return CUDA_ERROR_INVALID_DEVICE;
  if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard lock(device->mutex);
  *flags = device->primary_context.flags;
  *active = device->primary_context.active.load() ? 1 : 0;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice ordinal, unsigned int flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = driver->device(ordinal);
  if (!device) return CUDA_ERROR_INVALID_DEVICE;
  constexpr unsigned kKnown = CU_CTX_SCHED_MASK | CU_CTX_MAP_HOST | CU_CTX_LMEM_RESIZE_TO_MAX | CU_CTX_COREDUMP_ENABLE |
                              CU_CTX_USER_COREDUMP_ENABLE | CU_CTX_SYNC_MEMOPS;
  if ((flags & ~kKnown) != 0) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard lock(device->mutex);
  device->primary_context.flags = flags;
  return CUDA_SUCCESS;
}

// Note [Context charge]: a reset destroys the context's state; the
// simulator gives the context bytes back and, if the context is still
// retained, creates it afresh at once (the next call would). Device
// allocations are not swept: a program that resets with live allocations
// keeps their charge here (docs/simulator.md, "What differs").
OOMGUARD_SIM_DRIVER_API CUresult cuDevicePrimaryCtxReset_v2(CUdevice ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = driver->device(ordinal);
  if (!device) return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard lock(device->mutex);
  Context& context = device->primary_context;
  deactivate_locked(context);
  if (context.retains > 0) return activate_context_locked(context);
  context.flags = 0;
  return CUDA_SUCCESS;
}

#undef cuDevicePrimaryCtxRelease
#undef cuDevicePrimaryCtxSetFlags
#undef cuDevicePrimaryCtxReset
OOMGUARD_SIM_ALIAS(cuDevicePrimaryCtxRelease, cuDevicePrimaryCtxRelease_v2)
OOMGUARD_SIM_ALIAS(cuDevicePrimaryCtxSetFlags, cuDevicePrimaryCtxSetFlags_v2)
OOMGUARD_SIM_ALIAS(cuDevicePrimaryCtxReset, cuDevicePrimaryCtxReset_v2)

OOMGUARD_SIM_DRIVER_API CUresult cuCtxCreate_v4(CUcontext* handle, CUctxCreateParams* params, unsigned int flags,
                                                CUdevice ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  if (params && (params->execAffinityParams || params->cigParams)) return CUDA_ERROR_NOT_SUPPORTED;
  Device* device = driver->device(ordinal);
  if (!device) return CUDA_ERROR_INVALID_DEVICE;
  auto* context = new Context();
  context->device = device;
  context->flags = flags;
  {
    std::lock_guard lock(device->mutex);
    if (CUresult r = activate_context_locked(*context); r != CUDA_SUCCESS) {
      delete context;
      return r;
    }
  }
  driver->contexts.add(context);
  this_thread().context_stack.push_back(context);
  *handle = reinterpret_cast<CUcontext>(context);
  return CUDA_SUCCESS;
}

// The CUDA 11-12.4 signature, without creation parameters.
OOMGUARD_SIM_DRIVER_API CUresult cuCtxCreate_v2(CUcontext* handle, unsigned int flags, CUdevice ordinal) {
  return cuCtxCreate_v4(handle, nullptr, flags, ordinal);
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxDestroy_v2(CUcontext handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Context* context = nullptr;
  if (CUresult r = live_context(*driver, handle, context); r != CUDA_SUCCESS) return r;
  if (context->primary) return CUDA_ERROR_INVALID_CONTEXT;
  driver->contexts.remove(context);
  {
    std::lock_guard lock(context->device->mutex);
    deactivate_locked(*context);
  }
  auto& stack = this_thread().context_stack;
  std::erase(stack, context);
  // Other threads may still name it; keep the object so a stale handle
  // fails its registry lookup instead of touching freed memory.
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxGetCurrent(CUcontext* handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  const auto& stack = this_thread().context_stack;
  *handle = stack.empty() ? nullptr : reinterpret_cast<CUcontext>(stack.back());
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxSetCurrent(CUcontext handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  auto& stack = this_thread().context_stack;
  if (!handle) {
    if (!stack.empty()) stack.pop_back();
    return CUDA_SUCCESS;
  }
  Context* context = nullptr;
  if (CUresult r = live_context(*driver, handle, context); r != CUDA_SUCCESS) return r;
  if (stack.empty()) {
    stack.push_back(context);
  } else {
    stack.back() = context;
  }
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxPushCurrent_v2(CUcontext handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Context* context = nullptr;
  if (CUresult r = live_context(*driver, handle, context); r != CUDA_SUCCESS) return r;
  this_thread().context_stack.push_back(context);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxPopCurrent_v2(CUcontext* handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  auto& stack = this_thread().context_stack;
  if (stack.empty()) return CUDA_ERROR_INVALID_CONTEXT;
  if (handle) *handle = reinterpret_cast<CUcontext>(stack.back());
  stack.pop_back();
  return CUDA_SUCCESS;
}

#undef cuCtxDestroy
OOMGUARD_SIM_ALIAS(cuCtxDestroy, cuCtxDestroy_v2)
#undef cuCtxPushCurrent
#undef cuCtxPopCurrent
OOMGUARD_SIM_ALIAS(cuCtxPushCurrent, cuCtxPushCurrent_v2)
OOMGUARD_SIM_ALIAS(cuCtxPopCurrent, cuCtxPopCurrent_v2)

OOMGUARD_SIM_DRIVER_API CUresult cuCtxGetDevice(CUdevice* ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!ordinal) return CUDA_ERROR_INVALID_VALUE;
  Device* device = nullptr;
  if (CUresult r = current_device(device); r != CUDA_SUCCESS) return r;
  *ordinal = device->ordinal;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxGetDevice_v2(CUdevice* ordinal, CUcontext handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!ordinal) return CUDA_ERROR_INVALID_VALUE;
  if (!handle) return cuCtxGetDevice(ordinal);
  Context* context = nullptr;
  if (CUresult r = live_context(*driver, handle, context); r != CUDA_SUCCESS) return r;
  *ordinal = context->device->ordinal;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxGetFlags(unsigned int* flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!flags) return CUDA_ERROR_INVALID_VALUE;
  Context* context = nullptr;
  if (CUresult r = current_context(context); r != CUDA_SUCCESS) return r;
  *flags = context->flags;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxSetFlags(unsigned int flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Context* context = nullptr;
  if (CUresult r = current_context(context); r != CUDA_SUCCESS) return r;
  context->flags = flags;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxGetId(CUcontext handle, unsigned long long* id) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!id) return CUDA_ERROR_INVALID_VALUE;
  Context* context = nullptr;
  if (handle) {
    if (CUresult r = live_context(*driver, handle, context); r != CUDA_SUCCESS) return r;
  } else if (CUresult r = current_context(context); r != CUDA_SUCCESS) {
    return r;
  }
  *id = reinterpret_cast<std::uintptr_t>(context);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxGetApiVersion(CUcontext handle, unsigned int* version) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!version) return CUDA_ERROR_INVALID_VALUE;
  if (handle) {
    Context* context = nullptr;
    if (CUresult r = live_context(*driver, handle, context); r != CUDA_SUCCESS) return r;
  }
  *version = 13000;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxSynchronize(void) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = nullptr;
  if (CUresult r = current_device(device); r != CUDA_SUCCESS) return r;
  if (CUresult r = check_capture_safe(*driver); r != CUDA_SUCCESS) return r;
  synchronize_device(*device);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxSynchronize_v2(CUcontext handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!handle) return cuCtxSynchronize();
  Context* context = nullptr;
  if (CUresult r = live_context(*driver, handle, context); r != CUDA_SUCCESS) return r;
  if (CUresult r = check_capture_safe(*driver); r != CUDA_SUCCESS) return r;
  synchronize_device(*context->device);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxGetStreamPriorityRange(int* least, int* greatest) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  // What every GPU since Volta reports: 0 is the lowest priority, -5 the highest.
  if (least) *least = 0;
  if (greatest) *greatest = -5;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxGetLimit(size_t* value, CUlimit limit) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  switch (limit) {
    case CU_LIMIT_STACK_SIZE: *value = 1024; return CUDA_SUCCESS;
    case CU_LIMIT_PRINTF_FIFO_SIZE: *value = 1 << 20; return CUDA_SUCCESS;
    case CU_LIMIT_MALLOC_HEAP_SIZE: *value = 8 << 20; return CUDA_SUCCESS;
    case CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH: *value = 2; return CUDA_SUCCESS;
    case CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT: *value = 2048; return CUDA_SUCCESS;
    case CU_LIMIT_MAX_L2_FETCH_GRANULARITY: *value = 64; return CUDA_SUCCESS;
    case CU_LIMIT_PERSISTING_L2_CACHE_SIZE: *value = 0; return CUDA_SUCCESS;
    default: return CUDA_ERROR_UNSUPPORTED_LIMIT;
  }
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxSetLimit(CUlimit limit, size_t value) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  (void)value;
  return limit <= CU_LIMIT_PERSISTING_L2_CACHE_SIZE ? CUDA_SUCCESS : CUDA_ERROR_UNSUPPORTED_LIMIT;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxGetCacheConfig(CUfunc_cache* config) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!config) return CUDA_ERROR_INVALID_VALUE;
  *config = CU_FUNC_CACHE_PREFER_NONE;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxSetCacheConfig(CUfunc_cache) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxGetSharedMemConfig(CUsharedconfig* config) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!config) return CUDA_ERROR_INVALID_VALUE;
  *config = CU_SHARED_MEM_CONFIG_FOUR_BYTE_BANK_SIZE;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxEnablePeerAccess(CUcontext peer, unsigned int flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Context* context = nullptr;
  if (CUresult r = live_context(*driver, peer, context); r != CUDA_SUCCESS) return r;
  return flags == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

OOMGUARD_SIM_DRIVER_API CUresult cuCtxDisablePeerAccess(CUcontext peer) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Context* context = nullptr;
  return live_context(*driver, peer, context);
}
