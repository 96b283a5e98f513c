// NVML's process state: whether it was initialised, and the devices it
// enumerates.
#pragma once

#include <oomguard_sim/sim_api.h>

#include "nvml_abi.h"

// nvml.h's opaque handle type: one per simulated device, in a fixed table.
struct nvmlDevice_st {
  int index;  // NVML index: the device's place in OOMGUARD_SIMULATE
};

namespace oomguard::sim::nvml {

// NVML_ERROR_UNINITIALIZED unless nvmlInit* has been called more often than
// nvmlShutdown. Every entry point but nvmlInit*, nvmlShutdown and
// nvmlErrorString starts with it, as in NVML.
nvmlReturn_t check_initialized();
void initialize();
bool shut_down();  // false if NVML was not initialised

// Note [NVML sees every device]
// On a GPU machine NVML enumerates every GPU of the machine in PCI order and
// ignores CUDA_VISIBLE_DEVICES; torch relies on that: device_count() counts
// NVML's devices and then applies CUDA_VISIBLE_DEVICES itself (indices or
// UUIDs into NVML's list), and c10 finds a CUDA device's NVML handle by its
// PCI bus id. So NVML's index here is the device's place in
// OOMGUARD_SIMULATE (the driver's `physical_index`), and its UUID and PCI
// address are the ones the driver reports for that device through
// cuDeviceGetUuid and cudaGetDeviceProperties.
struct Device {
  struct oomguard_sim_device_info info;  // "struct": sim_api.h has a function of the same name
  int ordinal;  // the CUDA ordinal in this process, or -1 when CUDA_VISIBLE_DEVICES hides it
};

int device_count();
// False for an index out of range.
bool describe(int index, Device& out);

// The handle of device `index` (nullptr out of range), and back: false for
// a handle that is not one of ours.
nvmlDevice_t handle_of(int index);
bool index_of(nvmlDevice_t handle, int& index);

// NVML_SUCCESS and `out` filled, or the error for a bad handle.
nvmlReturn_t resolve(nvmlDevice_t handle, Device& out);

// Copies `text` into a caller's buffer of `length` bytes:
// NVML_ERROR_INSUFFICIENT_SIZE when it does not fit with its terminator.
nvmlReturn_t copy_string(const char* text, char* buffer, unsigned int length);

}  // namespace oomguard::sim::nvml
