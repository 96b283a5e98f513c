// The runtime's record of each registered kernel (Note [Kernel registry]).
#pragma once

#include <atomic>
#include <string>

namespace oomguard::sim::runtime {

struct KernelInfo {
  std::string device_name;
  // cudaFuncAttributeMaxDynamicSharedMemorySize; 0 until set.
  std::atomic<int> max_dynamic_shared;
};

// The kernel whose host stub (or cudaKernel_t, which is the same pointer
// here) is `host_function`, or nullptr if it was never registered.
KernelInfo* find_kernel(const void* host_function);

}  // namespace oomguard::sim::runtime
