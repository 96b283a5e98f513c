// Memory as NVML reports it, and the processes using a device.
//
// Note [NVML's view of memory]
// NVML on a GPU machine reports the device's memory as the driver sees it:
// `used` is every process's allocations and contexts. The simulated driver
// lives inside each process, so NVML here sees this process alone: `used` is
// what this process has charged to the device (its context, cudaMalloc,
// cuMemCreate, pools: oomguard_sim_memory), 0 for a device that this process
// cannot see (CUDA_VISIBLE_DEVICES), and this process is the only one that
// nvmlDeviceGetComputeRunningProcesses can list. In a torchrun job each rank
// thus sees its own usage on its device and none on the others'. NVML's
// v2 `reserved` (memory the driver and firmware keep back) is 0: the
// simulated device keeps none back beyond the context charge, which is in
// `used`.
#include <unistd.h>

#include <cstdint>

#include "state.hpp"

namespace oomguard::sim::nvml {
namespace {

struct Usage {
  unsigned long long total;
  unsigned long long used;
};

Usage usage_of(const Device& device) {
  Usage u{device.info.total_bytes, 0};
  std::uint64_t used = 0, peak = 0, total = 0;
  if (device.ordinal >= 0 && oomguard_sim_memory(device.ordinal, &used, &peak, &total) == 0) {
    u.used = used;
    u.total = total;
  }
  if (u.used > u.total) u.used = u.total;
  return u;
}

// The processes using `device`: this one, when it has charged anything to it.
template <typename Info>
nvmlReturn_t list_processes(nvmlDevice_t handle, unsigned int* count, Info* infos) {
  Device d;
  if (nvmlReturn_t r = resolve(handle, d); r != NVML_SUCCESS) return r;
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  const Usage u = usage_of(d);
  const unsigned int present = u.used > 0 ? 1 : 0;
  if (*count < present || (present > 0 && infos == nullptr)) {
    *count = present;
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  *count = present;
  if (present > 0) {
    infos[0] = Info{};
    infos[0].pid = static_cast<unsigned int>(getpid());
    infos[0].usedGpuMemory = u.used;
  }
  return NVML_SUCCESS;
}

}  // namespace
}  // namespace oomguard::sim::nvml

using namespace oomguard::sim::nvml;

extern "C" {

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t handle, nvmlMemory_t* memory) {
  Device d;
  if (nvmlReturn_t r = resolve(handle, d); r != NVML_SUCCESS) return r;
  if (memory == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  const Usage u = usage_of(d);
  memory->total = u.total;
  memory->used = u.used;
  memory->free = u.total - u.used;
  return NVML_SUCCESS;
}

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t handle, nvmlMemory_v2_t* memory) {
  Device d;
  if (nvmlReturn_t r = resolve(handle, d); r != NVML_SUCCESS) return r;
  if (memory == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (memory->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  const Usage u = usage_of(d);
  memory->total = u.total;
  memory->reserved = 0;
  memory->used = u.used;
  memory->free = u.total - u.used;
  return NVML_SUCCESS;
}

// The unversioned symbol keeps v1 entries (c10 dlsyms it for its
// out-of-memory message: "this process has X memory in use").
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t handle, unsigned int* count,
                                                                      nvmlProcessInfo_v1_t* infos) {
  return list_processes(handle, count, infos);
}
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t handle, unsigned int* count,
                                                                         nvmlProcessInfo_t* infos) {
  return list_processes(handle, count, infos);
}
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t handle, unsigned int* count,
                                                                         nvmlProcessInfo_t* infos) {
  return list_processes(handle, count, infos);
}

}  // extern "C"
