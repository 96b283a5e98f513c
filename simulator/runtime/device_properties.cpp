// Device properties and attributes, read from the driver's attributes (the
// real runtime builds cudaDeviceProp the same way), and the per-device
// settings that a simulated device accepts and remembers nowhere.
#include <cstdio>
#include <cstring>

#include "runtime.hpp"

namespace oomguard::sim::runtime {
namespace {

cudaError_t check_device(int device) {
  if (const cudaError_t error = initialize(); error != cudaSuccess) return fail(error);
  return device >= 0 && device < device_count() ? cudaSuccess : fail(cudaErrorInvalidDevice);
}

void fill_properties(cudaDeviceProp& p, int d) {
  std::memset(&p, 0, sizeof p);
  cuDeviceGetName(p.name, sizeof p.name, d);
  CUuuid uuid{};
  if (cuDeviceGetUuid(&uuid, d) == CUDA_SUCCESS) std::memcpy(&p.uuid, &uuid, sizeof p.uuid);
  std::size_t total = 0;
  if (cuDeviceTotalMem(&total, d) == CUDA_SUCCESS) p.totalGlobalMem = total;

  auto a = [d](CUdevice_attribute which) { return attribute(which, d); };
  auto size = [d](CUdevice_attribute which) { return static_cast<std::size_t>(attribute(which, d)); };
  p.sharedMemPerBlock = size(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK);
  p.regsPerBlock = a(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK);
  p.warpSize = a(CU_DEVICE_ATTRIBUTE_WARP_SIZE);
  p.memPitch = size(CU_DEVICE_ATTRIBUTE_MAX_PITCH);
  p.maxThreadsPerBlock = a(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
  p.maxThreadsDim[0] = a(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X);
  p.maxThreadsDim[1] = a(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y);
  p.maxThreadsDim[2] = a(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z);
  p.maxGridSize[0] = a(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X);
  p.maxGridSize[1] = a(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y);
  p.maxGridSize[2] = a(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z);
  p.totalConstMem = size(CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY);
  p.major = a(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  p.minor = a(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  p.textureAlignment = size(CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT);
  p.texturePitchAlignment = size(CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT);
  p.multiProcessorCount = a(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
  p.integrated = a(CU_DEVICE_ATTRIBUTE_INTEGRATED);
  p.canMapHostMemory = a(CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY);
  p.maxTexture1D = a(CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_WIDTH);
  p.maxTexture2D[0] = a(CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_WIDTH);
  p.maxTexture2D[1] = a(CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_HEIGHT);
  p.maxTexture3D[0] = a(CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_WIDTH);
  p.maxTexture3D[1] = a(CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_HEIGHT);
  p.maxTexture3D[2] = a(CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_DEPTH);
  p.surfaceAlignment = size(CU_DEVICE_ATTRIBUTE_SURFACE_ALIGNMENT);
  p.concurrentKernels = a(CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS);
  p.ECCEnabled = a(CU_DEVICE_ATTRIBUTE_ECC_ENABLED);
  p.pciBusID = a(CU_DEVICE_ATTRIBUTE_PCI_BUS_ID);
  p.pciDeviceID = a(CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID);
  p.pciDomainID = a(CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID);
  p.tccDriver = a(CU_DEVICE_ATTRIBUTE_TCC_DRIVER);
  p.asyncEngineCount = a(CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT);
  p.unifiedAddressing = a(CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING);
  p.memoryBusWidth = a(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH);
  p.l2CacheSize = a(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
  p.persistingL2CacheMaxSize = a(CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE);
  p.maxThreadsPerMultiProcessor = a(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR);
  p.streamPrioritiesSupported = a(CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED);
  p.globalL1CacheSupported = a(CU_DEVICE_ATTRIBUTE_GLOBAL_L1_CACHE_SUPPORTED);
  p.localL1CacheSupported = a(CU_DEVICE_ATTRIBUTE_LOCAL_L1_CACHE_SUPPORTED);
  p.sharedMemPerMultiprocessor = size(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR);
  p.regsPerMultiprocessor = a(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR);
  p.managedMemory = a(CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY);
  p.isMultiGpuBoard = a(CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD);
  p.multiGpuBoardGroupID = a(CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD_GROUP_ID);
  p.hostNativeAtomicSupported = a(CU_DEVICE_ATTRIBUTE_HOST_NATIVE_ATOMIC_SUPPORTED);
  p.pageableMemoryAccess = a(CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS);
  p.concurrentManagedAccess = a(CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS);
  p.computePreemptionSupported = a(CU_DEVICE_ATTRIBUTE_COMPUTE_PREEMPTION_SUPPORTED);
  p.canUseHostPointerForRegisteredMem = a(CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM);
  p.cooperativeLaunch = a(CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH);
  p.sharedMemPerBlockOptin = size(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
  p.pageableMemoryAccessUsesHostPageTables = a(CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES);
  p.directManagedMemAccessFromHost = a(CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST);
  p.maxBlocksPerMultiProcessor = a(CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR);
  p.accessPolicyMaxWindowSize = a(CU_DEVICE_ATTRIBUTE_MAX_ACCESS_POLICY_WINDOW_SIZE);
  p.reservedSharedMemPerBlock = size(CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK);
  p.hostRegisterSupported = a(CU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED);
  p.sparseCudaArraySupported = a(CU_DEVICE_ATTRIBUTE_SPARSE_CUDA_ARRAY_SUPPORTED);
  p.hostRegisterReadOnlySupported = a(CU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED);
  p.timelineSemaphoreInteropSupported = a(CU_DEVICE_ATTRIBUTE_TIMELINE_SEMAPHORE_INTEROP_SUPPORTED);
  p.memoryPoolsSupported = a(CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED);
  p.gpuDirectRDMASupported = a(CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED);
  p.gpuDirectRDMAFlushWritesOptions =
      static_cast<unsigned>(a(CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_FLUSH_WRITES_OPTIONS));
  p.gpuDirectRDMAWritesOrdering = a(CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WRITES_ORDERING);
  p.memoryPoolSupportedHandleTypes = static_cast<unsigned>(a(CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES));
  p.deferredMappingCudaArraySupported = a(CU_DEVICE_ATTRIBUTE_DEFERRED_MAPPING_CUDA_ARRAY_SUPPORTED);
  p.ipcEventSupported = a(CU_DEVICE_ATTRIBUTE_IPC_EVENT_SUPPORTED);
  p.clusterLaunch = a(CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH);
  p.unifiedFunctionPointers = a(CU_DEVICE_ATTRIBUTE_UNIFIED_FUNCTION_POINTERS);
  p.deviceNumaConfig = a(CU_DEVICE_ATTRIBUTE_NUMA_CONFIG);
  p.deviceNumaId = attribute(CU_DEVICE_ATTRIBUTE_NUMA_ID, d, -1);
  p.mpsEnabled = a(CU_DEVICE_ATTRIBUTE_MPS_ENABLED);
  p.hostNumaId = attribute(CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID, d, -1);
}

}  // namespace
}  // namespace oomguard::sim::runtime

using namespace oomguard::sim::runtime;

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGetDeviceProperties(cudaDeviceProp* properties, int device) {
  if (!properties) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = check_device(device); error != cudaSuccess) return error;
  fill_properties(*properties, device);
  return cudaSuccess;
}

// cudaDeviceAttr and CUdevice_attribute share their numbering.
OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!value) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = check_device(device); error != cudaSuccess) return error;
  return check(cuDeviceGetAttribute(value, static_cast<CUdevice_attribute>(attr), device));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceGetPCIBusId(char* pci_bus_id, int length, int device) {
  if (!pci_bus_id || length <= 0) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = check_device(device); error != cudaSuccess) return error;
  return check(cuDeviceGetPCIBusId(pci_bus_id, length, device));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceGetByPCIBusId(int* device, const char* pci_bus_id) {
  if (!device || !pci_bus_id) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = initialize(); error != cudaSuccess) return fail(error);
  CUdevice found = 0;
  const cudaError_t error = check(cuDeviceGetByPCIBusId(&found, pci_bus_id));
  if (error == cudaSuccess) *device = found;
  return error;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceGetStreamPriorityRange(int* least, int* greatest) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuCtxGetStreamPriorityRange(least, greatest));
}

// cudaLimit and CUlimit share their numbering.
OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceGetLimit(std::size_t* value, cudaLimit limit) {
  if (!value) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuCtxGetLimit(value, static_cast<CUlimit>(limit)));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceSetLimit(cudaLimit limit, std::size_t value) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuCtxSetLimit(static_cast<CUlimit>(limit), value));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceGetCacheConfig(cudaFuncCache* config) {
  if (!config) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUfunc_cache driver_config = CU_FUNC_CACHE_PREFER_NONE;
  const cudaError_t error = check(cuCtxGetCacheConfig(&driver_config));
  if (error == cudaSuccess) *config = static_cast<cudaFuncCache>(driver_config);
  return error;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceSetCacheConfig(cudaFuncCache config) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuCtxSetCacheConfig(static_cast<CUfunc_cache>(config)));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceCanAccessPeer(int* can_access, int device, int peer) {
  if (!can_access) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = check_device(device); error != cudaSuccess) return error;
  if (const cudaError_t error = check_device(peer); error != cudaSuccess) return error;
  return check(cuDeviceCanAccessPeer(can_access, device, peer));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceEnablePeerAccess(int peer, unsigned int flags) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUresult error = CUDA_SUCCESS;
  CUcontext peer_context = primary_context(peer, error);
  if (!peer_context) return check(error);
  return check(cuCtxEnablePeerAccess(peer_context, flags));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceDisablePeerAccess(int peer) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUresult error = CUDA_SUCCESS;
  CUcontext peer_context = primary_context(peer, error);
  if (!peer_context) return check(error);
  return check(cuCtxDisablePeerAccess(peer_context));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceGetP2PAttribute(int* value, cudaDeviceP2PAttr attr, int source,
                                                               int destination) {
  if (!value) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = check_device(source); error != cudaSuccess) return error;
  if (const cudaError_t error = check_device(destination); error != cudaSuccess) return error;
  return check(cuDeviceGetP2PAttribute(value, static_cast<CUdevice_P2PAttribute>(attr), source, destination));
}

// Deprecated since CUDA 12 and without effect on any current GPU.
OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceGetSharedMemConfig(cudaSharedMemConfig* config) {
  if (!config) return fail(cudaErrorInvalidValue);
  *config = cudaSharedMemBankSizeFourByte;
  return cudaSuccess;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceSetSharedMemConfig(cudaSharedMemConfig) { return cudaSuccess; }
