// Modules, functions, launches and occupancy. No code is ever loaded: a
// module is accepted whatever its image, a function is whatever name is
// asked for, and a launch is checked and counted (launch.hpp). That is
// enough for torch's LazyNVRTC (jiterator) and for Triton's launcher to
// work, with every kernel counted by name in OOMGUARD_SIM_STATS.
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "api.hpp"
#include "launch.hpp"

using namespace oomguard::sim;

namespace {

CUresult load_module(CUmodule* handle, const void* image) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!handle || !image) return CUDA_ERROR_INVALID_VALUE;
  Device* device = nullptr;
  if (CUresult r = current_device(device); r != CUDA_SUCCESS) return r;
  auto* module = new Module{device->ordinal};
  driver->modules.add(module);
  *handle = reinterpret_cast<CUmodule>(module);
  return CUDA_SUCCESS;
}

CUresult function_of(Driver& driver, CUfunction handle, Function*& function) {
  function = driver.functions.find(handle);
  return function ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

// Resident blocks per SM for `block_size` threads and `shared` bytes: the
// tighter of the thread, block and shared-memory limits (32 registers a
// thread never bind).
int blocks_per_sm(const Device& device, int block_size, std::size_t shared) {
  if (block_size <= 0) return 0;
  int blocks = std::min(device.limits.max_threads_per_sm / block_size, device.limits.max_blocks_per_sm);
  if (shared > 0) {
    blocks = std::min<int>(blocks, static_cast<int>(static_cast<std::size_t>(device.limits.shared_memory_per_sm) /
                                                    (shared + 1024)));
  }
  return std::max(blocks, 0);
}

}  // namespace

OOMGUARD_SIM_DRIVER_API CUresult cuModuleLoad(CUmodule* handle, const char* path) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!path) return CUDA_ERROR_INVALID_VALUE;
  struct stat info {};
  if (::stat(path, &info) != 0) return CUDA_ERROR_FILE_NOT_FOUND;
  return load_module(handle, path);
}

OOMGUARD_SIM_DRIVER_API CUresult cuModuleLoadData(CUmodule* handle, const void* image) {
  return load_module(handle, image);
}

OOMGUARD_SIM_DRIVER_API CUresult cuModuleLoadDataEx(CUmodule* handle, const void* image, unsigned int, CUjit_option*,
                                                    void**) {
  return load_module(handle, image);
}

OOMGUARD_SIM_DRIVER_API CUresult cuModuleLoadFatBinary(CUmodule* handle, const void* image) {
  return load_module(handle, image);
}

OOMGUARD_SIM_DRIVER_API CUresult cuModuleUnload(CUmodule handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Module* module = driver->modules.find(handle);
  if (!module) return CUDA_ERROR_INVALID_HANDLE;
  driver->modules.remove(module);
  // Its functions keep working (a GPU would leave them dangling): they
  // hold no code, so a late launch through one is only counted.
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuModuleGetFunction(CUfunction* handle, CUmodule module_handle, const char* name) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!handle || !name) return CUDA_ERROR_INVALID_VALUE;
  Module* module = driver->modules.find(module_handle);
  if (!module) return CUDA_ERROR_INVALID_HANDLE;
  auto* function = new Function{module, driver->kernels.intern(nullptr, name), {}};
  driver->functions.add(function);
  *handle = reinterpret_cast<CUfunction>(function);
  return CUDA_SUCCESS;
}

// A module's globals would need its image parsed; none is found.
OOMGUARD_SIM_DRIVER_API CUresult cuModuleGetGlobal_v2(CUdeviceptr* pointer, size_t* size, CUmodule module_handle,
                                                      const char* name) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  (void)pointer;
  (void)size;
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  if (!driver->modules.find(module_handle)) return CUDA_ERROR_INVALID_HANDLE;
  return CUDA_ERROR_NOT_FOUND;
}

OOMGUARD_SIM_DRIVER_API CUresult cuModuleGetLoadingMode(CUmoduleLoadingMode* mode) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!mode) return CUDA_ERROR_INVALID_VALUE;
  *mode = CU_MODULE_LAZY_LOADING;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuFuncGetAttribute(int* value, CUfunction_attribute attribute, CUfunction handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  Function* function = nullptr;
  if (CUresult r = function_of(*driver, handle, function); r != CUDA_SUCCESS) return r;
  const Device* device = driver->device(function->module->device_ordinal);
  const int cc = device->model.compute_major * 10 + device->model.compute_minor;
  switch (attribute) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = 1024; break;
    case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *value = 0; break;
    case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES: *value = 0; break;
    case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES: *value = 0; break;
    case CU_FUNC_ATTRIBUTE_NUM_REGS: *value = 32; break;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION: *value = cc; break;
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *value = cc; break;
    case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA: *value = 0; break;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: {
      const int set = function->max_dynamic_shared.load();
      *value = set != 0 ? set : 48 * 1024;
      break;
    }
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT: *value = -1; break;
    default: *value = 0; break;
  }
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuFuncSetAttribute(CUfunction handle, CUfunction_attribute attribute, int value) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Function* function = nullptr;
  if (CUresult r = function_of(*driver, handle, function); r != CUDA_SUCCESS) return r;
  if (attribute == CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) {
    const Device* device = driver->device(function->module->device_ordinal);
    if (value < 0 || value > device->limits.shared_memory_per_block_optin) return CUDA_ERROR_INVALID_VALUE;
    function->max_dynamic_shared.store(value);
  }
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuFuncSetCacheConfig(CUfunction handle, CUfunc_cache) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Function* function = nullptr;
  return function_of(*driver, handle, function);
}

OOMGUARD_SIM_DRIVER_API CUresult cuFuncGetName(const char** name, CUfunction handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  Function* function = nullptr;
  if (CUresult r = function_of(*driver, handle, function); r != CUDA_SUCCESS) return r;
  *name = function->kernel->name.c_str();
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuFuncGetModule(CUmodule* module, CUfunction handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!module) return CUDA_ERROR_INVALID_VALUE;
  Function* function = nullptr;
  if (CUresult r = function_of(*driver, handle, function); r != CUDA_SUCCESS) return r;
  *module = reinterpret_cast<CUmodule>(function->module);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuLaunchKernel(CUfunction handle, unsigned int grid_x, unsigned int grid_y,
                                                unsigned int grid_z, unsigned int block_x, unsigned int block_y,
                                                unsigned int block_z, unsigned int shared_bytes, CUstream stream,
                                                void** parameters, void** extra) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  (void)parameters;
  (void)extra;
  Function* function = nullptr;
  if (CUresult r = function_of(*driver, handle, function); r != CUDA_SUCCESS) return r;
  return launch(*driver, function->kernel, {grid_x, grid_y, grid_z}, {block_x, block_y, block_z}, shared_bytes,
                stream, function->max_dynamic_shared.load());
}

OOMGUARD_SIM_DRIVER_API CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction handle, void** parameters,
                                                  void** extra) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!config) return CUDA_ERROR_INVALID_VALUE;
  return cuLaunchKernel(handle, config->gridDimX, config->gridDimY, config->gridDimZ, config->blockDimX,
                        config->blockDimY, config->blockDimZ, config->sharedMemBytes, config->hStream, parameters,
                        extra);
}

OOMGUARD_SIM_DRIVER_API CUresult cuLaunchCooperativeKernel(CUfunction handle, unsigned int grid_x, unsigned int grid_y,
                                                           unsigned int grid_z, unsigned int block_x,
                                                           unsigned int block_y, unsigned int block_z,
                                                           unsigned int shared_bytes, CUstream stream,
                                                           void** parameters) {
  return cuLaunchKernel(handle, grid_x, grid_y, grid_z, block_x, block_y, block_z, shared_bytes, stream, parameters,
                        nullptr);
}

OOMGUARD_SIM_DRIVER_API CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int* blocks, CUfunction handle,
                                                                                      int block_size,
                                                                                      size_t shared_bytes,
                                                                                      unsigned int flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  (void)flags;
  if (!blocks) return CUDA_ERROR_INVALID_VALUE;
  Function* function = nullptr;
  if (CUresult r = function_of(*driver, handle, function); r != CUDA_SUCCESS) return r;
  *blocks = blocks_per_sm(*driver->device(function->module->device_ordinal), block_size, shared_bytes);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, CUfunction handle,
                                                                             int block_size, size_t shared_bytes) {
  return cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(blocks, handle, block_size, shared_bytes, 0);
}

OOMGUARD_SIM_DRIVER_API CUresult cuOccupancyMaxPotentialBlockSizeWithFlags(
    int* min_grid_size, int* block_size, CUfunction handle, CUoccupancyB2DSize shared_for_block,
    size_t shared_bytes, int block_size_limit, unsigned int flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  (void)flags;
  if (!min_grid_size || !block_size) return CUDA_ERROR_INVALID_VALUE;
  Function* function = nullptr;
  if (CUresult r = function_of(*driver, handle, function); r != CUDA_SUCCESS) return r;
  const Device& device = *driver->device(function->module->device_ordinal);
  const int limit = block_size_limit > 0 ? std::min(block_size_limit, 1024) : 1024;
  int best_size = 32;
  int best_threads = 0;
  for (int size = 32; size <= limit; size += 32) {
    const std::size_t shared = shared_for_block ? shared_for_block(size) : shared_bytes;
    const int threads = blocks_per_sm(device, size, shared) * size;
    if (threads >= best_threads) {
      best_threads = threads;
      best_size = size;
    }
  }
  *block_size = best_size;
  *min_grid_size = best_threads / best_size * device.model.sm_count;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuOccupancyMaxPotentialBlockSize(int* min_grid_size, int* block_size,
                                                                  CUfunction handle,
                                                                  CUoccupancyB2DSize shared_for_block,
                                                                  size_t shared_bytes, int block_size_limit) {
  return cuOccupancyMaxPotentialBlockSizeWithFlags(min_grid_size, block_size, handle, shared_for_block, shared_bytes,
                                                   block_size_limit, 0);
}

OOMGUARD_SIM_DRIVER_API CUresult cuOccupancyAvailableDynamicSMemPerBlock(size_t* shared_bytes, CUfunction handle,
                                                                         int blocks, int block_size) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  (void)block_size;
  if (!shared_bytes || blocks <= 0) return CUDA_ERROR_INVALID_VALUE;
  Function* function = nullptr;
  if (CUresult r = function_of(*driver, handle, function); r != CUDA_SUCCESS) return r;
  const Device& device = *driver->device(function->module->device_ordinal);
  *shared_bytes = std::min<std::size_t>(static_cast<std::size_t>(device.limits.shared_memory_per_sm / blocks) - 1024,
                                        static_cast<std::size_t>(device.limits.shared_memory_per_block_optin));
  return CUDA_SUCCESS;
}

// ---- the JIT linker (torch's jiterator links NVRTC output through it)

namespace {
struct LinkState {
  char cubin[16] = "simulated-cubin";
};
}  // namespace

OOMGUARD_SIM_DRIVER_API CUresult cuLinkCreate_v2(unsigned int, CUjit_option*, void**, CUlinkState* state) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!state) return CUDA_ERROR_INVALID_VALUE;
  *state = reinterpret_cast<CUlinkState>(new LinkState());
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuLinkAddData_v2(CUlinkState state, CUjitInputType, void* data, size_t, const char*,
                                                  unsigned int, CUjit_option*, void**) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  return state && data ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

OOMGUARD_SIM_DRIVER_API CUresult cuLinkAddFile_v2(CUlinkState state, CUjitInputType, const char* path, unsigned int,
                                                  CUjit_option*, void**) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!state || !path) return CUDA_ERROR_INVALID_VALUE;
  struct stat info {};
  return ::stat(path, &info) == 0 ? CUDA_SUCCESS : CUDA_ERROR_FILE_NOT_FOUND;
}

OOMGUARD_SIM_DRIVER_API CUresult cuLinkComplete(CUlinkState state, void** cubin, size_t* size) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!state) return CUDA_ERROR_INVALID_VALUE;
  auto* link = reinterpret_cast<LinkState*>(state);
  if (cubin) *cubin = link->cubin;
  if (size) *size = sizeof link->cubin;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuLinkDestroy(CUlinkState state) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  delete reinterpret_cast<LinkState*>(state);
  return CUDA_SUCCESS;
}

#undef cuLinkCreate
#undef cuLinkAddData
#undef cuLinkAddFile
OOMGUARD_SIM_ALIAS(cuLinkCreate, cuLinkCreate_v2)
OOMGUARD_SIM_ALIAS(cuLinkAddData, cuLinkAddData_v2)
OOMGUARD_SIM_ALIAS(cuLinkAddFile, cuLinkAddFile_v2)

// Triton's tensor-memory-accelerator descriptors on Hopper: an opaque
// 128-byte block the kernel would read; zeroed.
OOMGUARD_SIM_DRIVER_API CUresult cuTensorMapEncodeTiled(CUtensorMap* map, CUtensorMapDataType, cuuint32_t rank, void*,
                                                        const cuuint64_t*, const cuuint64_t*, const cuuint32_t*,
                                                        const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                                                        CUtensorMapL2promotion, CUtensorMapFloatOOBfill) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!map || rank == 0 || rank > 5) return CUDA_ERROR_INVALID_VALUE;
  std::memset(map, 0, sizeof *map);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_ALIAS(cuLaunchKernel_ptsz, cuLaunchKernel)
OOMGUARD_SIM_ALIAS(cuLaunchKernelEx_ptsz, cuLaunchKernelEx)
OOMGUARD_SIM_ALIAS(cuLaunchCooperativeKernel_ptsz, cuLaunchCooperativeKernel)
