// cuDeviceGetAttribute's values for a simulated device: the table row
// (compute capability, SM count), the architecture's limits
// (gpu_models.cpp, Note [Architecture limits]), and the constants every
// GPU of compute capability 7.0 and later shares.
#pragma once

#include <cuda.h>

namespace oomguard::sim {

class Device;

// False for an attribute the simulator does not know (the caller answers
// CUDA_ERROR_INVALID_VALUE, as the real driver does for an unknown one).
bool device_attribute(const Device& device, CUdevice_attribute attribute, int& value);

}  // namespace oomguard::sim
