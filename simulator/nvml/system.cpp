// Initialisation, error strings and the system-wide queries.
#include <cuda.h>

#include <cstdio>

#include "state.hpp"

namespace oomguard::sim::nvml {
namespace {

// A CUDA 13.0 driver's version (R580); NVML's version is the CUDA major
// followed by it, as on a GPU machine.
constexpr const char* kDriverVersion = "580.82.07";
constexpr const char* kNvmlVersion = "13.580.82.07";

}  // namespace
}  // namespace oomguard::sim::nvml

using namespace oomguard::sim::nvml;

extern "C" {

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int /*flags: no GPUs to skip attaching to*/) {
  initialize();
  return NVML_SUCCESS;
}
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlInit_v2() { return nvmlInitWithFlags(0); }
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlInit() { return nvmlInitWithFlags(0); }  // v1, what torch's ctypes calls

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlShutdown() { return shut_down() ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED; }

OOMGUARD_SIM_EXPORT const char* nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_MEMORY: return "Insufficient Memory";
    case NVML_ERROR_NO_DATA: return "No data";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    case NVML_ERROR_GPU_NOT_FOUND: return "GPU not found";
    default: return "Unknown Error";
  }
}

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  if (nvmlReturn_t r = check_initialized(); r != NVML_SUCCESS) return r;
  return copy_string(kDriverVersion, version, length);
}

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char* version, unsigned int length) {
  return copy_string(kNvmlVersion, version, length);  // NVML answers this one before nvmlInit too
}

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* version) {
  // The simulated driver's own answer, so that NVML and cuDriverGetVersion agree.
  if (version == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return cuDriverGetVersion(version) == CUDA_SUCCESS ? NVML_SUCCESS : NVML_ERROR_UNKNOWN;
}
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int* version) {
  return nvmlSystemGetCudaDriverVersion(version);
}

}  // extern "C"
