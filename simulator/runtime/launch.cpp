// Kernel launches (nvcc's <<<>>> path and the explicit launch calls),
// function attributes and the occupancy calculator. A launch is checked,
// then handed to the driver, which records it in a capture or counts it;
// no kernel ever runs.
//
// Note [Launch validation]
// The runtime refuses what a GPU refuses, with the runtime's codes: a zero
// or too large block or grid dimension, or more threads per block than the
// device has, is cudaErrorInvalidConfiguration; more dynamic shared memory
// than the kernel may use (48 KiB unless cudaFuncSetAttribute raised it,
// never above the device's opt-in maximum) is cudaErrorInvalidValue; a
// cooperative grid larger than can be co-resident is
// cudaErrorCooperativeLaunchTooLarge. torch's C10_CUDA_KERNEL_LAUNCH_CHECK
// reads these through cudaGetLastError after the launch, as on a GPU.
#include <algorithm>
#include <cstring>

#include "kernel_registry.hpp"
#include "oomguard_sim/sim_api.h"
#include "runtime.hpp"

namespace oomguard::sim::runtime {
namespace {

// <<<grid, block, shared, stream>>> pushes a configuration that the stub
// pops before it launches; nesting is possible (a launch in the argument
// list of another), rarely deep.
struct CallConfiguration {
  dim3 grid;
  dim3 block;
  std::size_t shared;
  cudaStream_t stream;
};
constexpr int kMaxNestedConfigurations = 16;
thread_local CallConfiguration t_configurations[kMaxNestedConfigurations];
thread_local int t_configuration_depth = 0;

cudaError_t validate(const LaunchLimits& limits, const void* function, dim3 grid, dim3 block, std::size_t shared) {
  const unsigned block_dims[3] = {block.x, block.y, block.z};
  const unsigned grid_dims[3] = {grid.x, grid.y, grid.z};
  unsigned long long threads = 1;
  for (int i = 0; i < 3; ++i) {
    if (block_dims[i] == 0 || grid_dims[i] == 0 || block_dims[i] > limits.max_block[i] ||
        grid_dims[i] > limits.max_grid[i]) {
      return cudaErrorInvalidConfiguration;
    }
    threads *= block_dims[i];
  }
  if (threads > limits.max_threads_per_block) return cudaErrorInvalidConfiguration;
  const KernelInfo* kernel = find_kernel(function);
  const std::size_t allowed = kernel && kernel->max_dynamic_shared.load(std::memory_order_relaxed) > 0
                                  ? static_cast<std::size_t>(kernel->max_dynamic_shared.load(std::memory_order_relaxed))
                                  : limits.default_shared;
  if (shared > std::min(allowed, limits.max_shared_optin)) return cudaErrorInvalidValue;
  return cudaSuccess;
}

// Blocks of `block_size` threads with `shared` dynamic bytes one SM holds,
// assuming 32 registers a thread (what cudaFuncGetAttributes reports).
int resident_blocks(const LaunchLimits& limits, int block_size, std::size_t shared) {
  if (block_size <= 0 || static_cast<unsigned>(block_size) > limits.max_threads_per_block) return 0;
  const unsigned warps = (static_cast<unsigned>(block_size) + 31) / 32;
  unsigned blocks = std::min(limits.max_blocks_per_sm, limits.max_threads_per_sm / (warps * 32));
  blocks = std::min(blocks, limits.registers_per_sm / (warps * 32 * 32));
  const std::size_t per_block = shared + limits.reserved_shared_per_block;
  if (per_block > 0) blocks = std::min<unsigned>(blocks, static_cast<unsigned>(limits.shared_per_sm / per_block));
  return static_cast<int>(blocks);
}

cudaError_t launch(const void* function, dim3 grid, dim3 block, std::size_t shared, cudaStream_t stream,
                   bool cooperative) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (!function) return fail(cudaErrorInvalidDeviceFunction);
  const LaunchLimits& limits = launch_limits(current_device());
  if (const cudaError_t error = validate(limits, function, grid, block, shared); error != cudaSuccess) {
    oomguard_sim_log(1, "cudart: launch of %p refused: grid (%u,%u,%u), block (%u,%u,%u), %zu bytes of shared memory",
                     function, grid.x, grid.y, grid.z, block.x, block.y, block.z, shared);
    return fail(error);
  }
  if (cooperative) {
    const unsigned long long blocks = 1ull * grid.x * grid.y * grid.z;
    const int sms = attribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, current_device(), 1);
    const auto per_sm = static_cast<unsigned long long>(
        resident_blocks(limits, static_cast<int>(block.x * block.y * block.z), shared));
    if (blocks > per_sm * static_cast<unsigned long long>(sms)) return fail(cudaErrorCooperativeLaunchTooLarge);
  }
  // The shared memory was checked above against what cudaFuncSetAttribute
  // allowed, which the driver's check does not know; it sees the default at
  // most (its only other use of the figure is the level-3 log line).
  const std::size_t shared_for_driver = std::min(shared, limits.default_shared);
  return check(static_cast<CUresult>(oomguard_sim_launch(function, grid.x, grid.y, grid.z, block.x, block.y, block.z,
                                                         shared_for_driver, stream)));
}

bool is_cooperative(const cudaLaunchConfig_t& config) {
  for (unsigned i = 0; i < config.numAttrs; ++i) {
    if (config.attrs[i].id == cudaLaunchAttributeCooperative && config.attrs[i].val.cooperative != 0) return true;
  }
  return false;
}

}  // namespace
}  // namespace oomguard::sim::runtime

using namespace oomguard::sim::runtime;

// ------------------------------------------------------- nvcc's <<<>>> path

OOMGUARD_SIM_RUNTIME_API unsigned __cudaPushCallConfiguration(dim3 grid, dim3 block, std::size_t shared,
                                                              CUstream_st* stream) {
  if (t_configuration_depth == kMaxNestedConfigurations) return 1;  // the stub then does not launch
  t_configurations[t_configuration_depth++] = CallConfiguration{grid, block, shared, stream};
  return 0;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t __cudaPopCallConfiguration(dim3* grid, dim3* block, std::size_t* shared,
                                                                void* stream) {
  if (t_configuration_depth == 0) return fail(cudaErrorMissingConfiguration);
  const CallConfiguration& top = t_configurations[--t_configuration_depth];
  *grid = top.grid;
  *block = top.block;
  *shared = top.shared;
  *static_cast<cudaStream_t*>(stream) = top.stream;
  return cudaSuccess;
}

// A cudaKernel_t is the host stub itself: the launch calls take either.
OOMGUARD_SIM_RUNTIME_API cudaError_t __cudaGetKernel(cudaKernel_t* kernel, const void* function) {
  if (!kernel || !function) return fail(cudaErrorInvalidValue);
  *kernel = reinterpret_cast<cudaKernel_t>(const_cast<void*>(function));
  return cudaSuccess;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGetKernel(cudaKernel_t* kernel, const void* function) {
  return __cudaGetKernel(kernel, function);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t __cudaLaunchKernel(cudaKernel_t kernel, dim3 grid, dim3 block, void**,
                                                        std::size_t shared, cudaStream_t stream) {
  return launch(kernel, grid, block, shared, stream, false);
}

// nvcc's code compiled with --default-stream per-thread: stream 0 is the
// calling thread's default stream.
OOMGUARD_SIM_RUNTIME_API cudaError_t __cudaLaunchKernel_ptsz(cudaKernel_t kernel, dim3 grid, dim3 block, void**,
                                                             std::size_t shared, cudaStream_t stream) {
  return launch(kernel, grid, block, shared, stream ? stream : cudaStreamPerThread, false);
}

// ------------------------------------------------------------ explicit calls

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaLaunchKernel(const void* function, dim3 grid, dim3 block, void**,
                                                      std::size_t shared, cudaStream_t stream) {
  return launch(function, grid, block, shared, stream, false);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaLaunchKernel_ptsz(const void* function, dim3 grid, dim3 block, void**,
                                                           std::size_t shared, cudaStream_t stream) {
  return launch(function, grid, block, shared, stream ? stream : cudaStreamPerThread, false);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaLaunchKernelExC(const cudaLaunchConfig_t* config, const void* function,
                                                         void**) {
  if (!config || (config->numAttrs != 0 && !config->attrs)) return fail(cudaErrorInvalidValue);
  return launch(function, config->gridDim, config->blockDim, config->dynamicSmemBytes, config->stream,
                is_cooperative(*config));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaLaunchCooperativeKernel(const void* function, dim3 grid, dim3 block, void**,
                                                                 std::size_t shared, cudaStream_t stream) {
  return launch(function, grid, block, shared, stream, true);
}

// ------------------------------------------------------ function attributes

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attributes, const void* function) {
  if (!attributes) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  const KernelInfo* kernel = find_kernel(function);
  if (!kernel) return fail(cudaErrorInvalidDeviceFunction);
  const LaunchLimits& limits = launch_limits(current_device());
  std::memset(attributes, 0, sizeof *attributes);
  attributes->maxThreadsPerBlock = static_cast<int>(limits.max_threads_per_block);
  attributes->numRegs = 32;
  attributes->ptxVersion = limits.major * 10 + limits.minor;
  attributes->binaryVersion = attributes->ptxVersion;
  const int raised = kernel->max_dynamic_shared.load(std::memory_order_relaxed);
  attributes->maxDynamicSharedSizeBytes = raised > 0 ? raised : static_cast<int>(limits.default_shared);
  attributes->preferredShmemCarveout = -1;
  return cudaSuccess;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaFuncSetAttribute(const void* function, cudaFuncAttribute attribute,
                                                          int value) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  KernelInfo* kernel = find_kernel(function);
  if (!kernel) return fail(cudaErrorInvalidDeviceFunction);
  if (attribute == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    const LaunchLimits& limits = launch_limits(current_device());
    if (value < 0 || static_cast<std::size_t>(value) > limits.max_shared_optin) return fail(cudaErrorInvalidValue);
    kernel->max_dynamic_shared.store(value, std::memory_order_relaxed);
  }
  return cudaSuccess;  // the other attributes are hints to a scheduler that does not exist here
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaFuncSetCacheConfig(const void* function, cudaFuncCache) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return find_kernel(function) ? cudaSuccess : fail(cudaErrorInvalidDeviceFunction);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaFuncGetName(const char** name, const void* function) {
  if (!name) return fail(cudaErrorInvalidValue);
  const KernelInfo* kernel = find_kernel(function);
  if (!kernel) return fail(cudaErrorInvalidDeviceFunction);
  *name = kernel->device_name.c_str();
  return cudaSuccess;
}

// ----------------------------------------------------------------- occupancy

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int* blocks,
                                                                                            const void* function,
                                                                                            int block_size,
                                                                                            std::size_t shared,
                                                                                            unsigned int) {
  if (!blocks) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (!find_kernel(function)) return fail(cudaErrorInvalidDeviceFunction);
  *blocks = resident_blocks(launch_limits(current_device()), block_size, shared);
  return cudaSuccess;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, const void* function,
                                                                                   int block_size,
                                                                                   std::size_t shared) {
  return cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(blocks, function, block_size, shared, 0);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaOccupancyAvailableDynamicSMemPerBlock(std::size_t* shared,
                                                                               const void* function, int blocks,
                                                                               int block_size) {
  if (!shared || blocks <= 0) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (!find_kernel(function)) return fail(cudaErrorInvalidDeviceFunction);
  const LaunchLimits& limits = launch_limits(current_device());
  if (resident_blocks(limits, block_size, 0) < blocks) {
    *shared = 0;
    return cudaSuccess;
  }
  const std::size_t per_block = limits.shared_per_sm / static_cast<std::size_t>(blocks);
  *shared = per_block > limits.reserved_shared_per_block
                ? std::min(per_block - limits.reserved_shared_per_block, limits.max_shared_optin)
                : 0;
  return cudaSuccess;
}
