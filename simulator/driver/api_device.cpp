// Initialization, the driver version, and the device queries.
#include <cstdio>
#include <cstring>

#include "api.hpp"
#include "device_attributes.hpp"

using namespace oomguard::sim;

namespace {

// The driver version reported: CUDA 13.0, what torch 2.11+cu130 is built for.
constexpr int kDriverVersion = 13000;

CUresult device_from(Driver& driver, CUdevice ordinal, Device*& device) {
  device = driver.device(ordinal);
  return device ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

}  // namespace

OOMGUARD_SIM_DRIVER_API CUresult cuInit(unsigned int flags) {
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  return Driver::init();
}

OOMGUARD_SIM_DRIVER_API CUresult cuDriverGetVersion(int* version) {
  if (!version) return CUDA_ERROR_INVALID_VALUE;
  *version = kDriverVersion;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  if (!driver->device(ordinal)) return CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceGetCount(int* count) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  *count = static_cast<int>(driver->devices.size());
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceGetName(char* name, int length, CUdevice ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = nullptr;
  if (CUresult r = device_from(*driver, ordinal, device); r != CUDA_SUCCESS) return r;
  if (!name || length <= 0) return CUDA_ERROR_INVALID_VALUE;
  std::snprintf(name, static_cast<std::size_t>(length), "%.*s", static_cast<int>(device->model.device_name.size()),
                device->model.device_name.data());
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = nullptr;
  if (CUresult r = device_from(*driver, ordinal, device); r != CUDA_SUCCESS) return r;
  if (!bytes) return CUDA_ERROR_INVALID_VALUE;
  *bytes = device->total_bytes;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attribute, CUdevice ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = nullptr;
  if (CUresult r = device_from(*driver, ordinal, device); r != CUDA_SUCCESS) return r;
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  if (!device_attribute(*device, attribute, *value)) {
    oomguard_sim_log(1, "driver: cuDeviceGetAttribute(%d) is not a device attribute the simulator knows",
                     static_cast<int>(attribute));
    return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceGetUuid_v2(CUuuid* uuid, CUdevice ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = nullptr;
  if (CUresult r = device_from(*driver, ordinal, device); r != CUDA_SUCCESS) return r;
  if (!uuid) return CUDA_ERROR_INVALID_VALUE;
  *uuid = device->uuid;
  return CUDA_SUCCESS;
}
#undef cuDeviceGetUuid
OOMGUARD_SIM_ALIAS(cuDeviceGetUuid, cuDeviceGetUuid_v2)

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceGetLuid(char* luid, unsigned int* mask, CUdevice ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = nullptr;
  if (CUresult r = device_from(*driver, ordinal, device); r != CUDA_SUCCESS) return r;
  (void)luid;
  (void)mask;
  return CUDA_ERROR_NOT_SUPPORTED;  // Windows only, as on Linux GPUs
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceGetPCIBusId(char* bus_id, int length, CUdevice ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = nullptr;
  if (CUresult r = device_from(*driver, ordinal, device); r != CUDA_SUCCESS) return r;
  if (!bus_id || length <= 0) return CUDA_ERROR_INVALID_VALUE;
  std::snprintf(bus_id, static_cast<std::size_t>(length), "00000000:%02X:00.0", device->pci_bus);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceGetByPCIBusId(CUdevice* ordinal, const char* bus_id) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!ordinal || !bus_id) return CUDA_ERROR_INVALID_VALUE;
  unsigned domain = 0, bus = 0, slot = 0, function = 0;
  if (std::sscanf(bus_id, "%x:%x:%x.%x", &domain, &bus, &slot, &function) != 4) {
    domain = 0;
    if (std::sscanf(bus_id, "%x:%x.%x", &bus, &slot, &function) != 3) return CUDA_ERROR_INVALID_VALUE;
  }
  for (const auto& device : driver->devices) {
    if (domain == 0 && static_cast<int>(bus) == device->pci_bus && slot == 0) {
      *ordinal = device->ordinal;
      return CUDA_SUCCESS;
    }
  }
  return CUDA_ERROR_INVALID_DEVICE;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceCanAccessPeer(int* can_access, CUdevice ordinal, CUdevice peer) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!can_access) return CUDA_ERROR_INVALID_VALUE;
  if (!driver->device(ordinal) || !driver->device(peer)) return CUDA_ERROR_INVALID_DEVICE;
  *can_access = ordinal != peer ? 1 : 0;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceGetP2PAttribute(int* value, CUdevice_P2PAttribute attribute,
                                                         CUdevice source, CUdevice destination) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  if (!driver->device(source) || !driver->device(destination) || source == destination) {
    return CUDA_ERROR_INVALID_DEVICE;
  }
  switch (attribute) {
    case CU_DEVICE_P2P_ATTRIBUTE_PERFORMANCE_RANK: *value = 0; break;
    case CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED: *value = 1; break;
    case CU_DEVICE_P2P_ATTRIBUTE_NATIVE_ATOMIC_SUPPORTED: *value = 1; break;
    case CU_DEVICE_P2P_ATTRIBUTE_CUDA_ARRAY_ACCESS_SUPPORTED: *value = 1; break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceGetTexture1DLinearMaxWidth(size_t* width, CUarray_format, unsigned,
                                                                    CUdevice ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!width) return CUDA_ERROR_INVALID_VALUE;
  if (!driver->device(ordinal)) return CUDA_ERROR_INVALID_DEVICE;
  *width = 268435456;
  return CUDA_SUCCESS;
}
