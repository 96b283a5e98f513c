// Which device an allocation lands on, and how big a device is.
#pragma once

#include <cstdint>

namespace oomguard::preload {

// The calling thread's current device: the real cudaGetDevice when the
// runtime is loaded, else the driver's cuCtxGetDevice, else 0.
int current_runtime_device() noexcept;
// For driver calls: cuCtxGetDevice first, then cudaGetDevice, else 0.
int current_driver_device() noexcept;
// Total memory of the current device (0 when it cannot be asked).
std::uint64_t current_device_total_bytes() noexcept;

}  // namespace oomguard::preload
