// What a simulated device has no figure for: utilisation (nothing ever
// runs), temperature, power and clocks are answered NOT_SUPPORTED, as NVML
// answers for a sensor a board lacks, so callers take their "unknown" path
// instead of charting made-up numbers; NVLink and the fabric are absent, as
// on a PCIe board.
#include "state.hpp"

namespace oomguard::sim::nvml {
namespace {

nvmlReturn_t no_sensor(nvmlDevice_t handle, const char* function) {
  Device d;
  if (nvmlReturn_t r = resolve(handle, d); r != NVML_SUCCESS) return r;
  oomguard_sim_unsupported("nvml", function);
  return NVML_ERROR_NOT_SUPPORTED;
}

}  // namespace
}  // namespace oomguard::sim::nvml

using namespace oomguard::sim::nvml;

extern "C" {

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t handle, nvmlUtilization_t*) {
  return no_sensor(handle, __func__);
}
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t handle, nvmlTemperatureSensors_t,
                                                          unsigned int*) {
  return no_sensor(handle, __func__);
}
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t handle, unsigned int*) {
  return no_sensor(handle, __func__);
}
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t handle, nvmlClockType_t, unsigned int*) {
  return no_sensor(handle, __func__);
}
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t handle, nvmlClockType_t, unsigned int*) {
  return no_sensor(handle, __func__);
}

// c10 walks a device's NVLinks to find its peers; there are none. Quietly:
// an absent link is an answer, not a missing feature.
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkRemoteDeviceType(nvmlDevice_t handle, unsigned int,
                                                                     nvmlIntNvLinkDeviceType_t*) {
  Device d;
  if (nvmlReturn_t r = resolve(handle, d); r != NVML_SUCCESS) return r;
  return NVML_ERROR_NOT_SUPPORTED;
}
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t handle, unsigned int,
                                                                     nvmlPciInfo_t*) {
  Device d;
  if (nvmlReturn_t r = resolve(handle, d); r != NVML_SUCCESS) return r;
  return NVML_ERROR_NOT_SUPPORTED;
}

// c10's isFabricSupported requires NVML_SUCCESS and then reads `state`:
// a board outside an NVLink fabric answers success with state NOT_SUPPORTED.
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetGpuFabricInfoV(nvmlDevice_t handle, nvmlGpuFabricInfoV_t* info) {
  Device d;
  if (nvmlReturn_t r = resolve(handle, d); r != NVML_SUCCESS) return r;
  if (info == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  const unsigned int size = info->version & 0xffffffu;
  if (size < sizeof(nvmlGpuFabricInfo_v2_t)) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  const unsigned int version = info->version;
  *info = nvmlGpuFabricInfo_v2_t{};
  info->version = version;
  info->status = NVML_SUCCESS;
  info->state = NVML_GPU_FABRIC_STATE_NOT_SUPPORTED;
  return NVML_SUCCESS;
}

}  // extern "C"
