// Which devices there are and what each is: count, handles, name, UUID, PCI
// address, compute capability (Note [NVML sees every device]).
#include <cstdio>
#include <cstring>

#include "state.hpp"

namespace oomguard::sim::nvml {
namespace {

constexpr unsigned int kNvidiaVendorId = 0x10de;

// "GPU-" and the 16 bytes as 8-4-4-4-12 hex digits: the form of
// nvidia-smi -L, CUDA_VISIBLE_DEVICES=GPU-..., and torch's UUID matching.
void format_uuid(const unsigned char (&uuid)[16], char (&out)[48]) {
  std::snprintf(out, sizeof out,
                "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", uuid[0], uuid[1],
                uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7], uuid[8], uuid[9], uuid[10], uuid[11], uuid[12],
                uuid[13], uuid[14], uuid[15]);
}

// Every device is domain 0, device 0, function 0 on its own bus, which is
// what the driver reports as pciDomainID, pciBusID and pciDeviceID.
void fill_pci(const Device& device, nvmlPciInfo_t& pci) {
  std::memset(&pci, 0, sizeof pci);
  pci.domain = 0;
  pci.bus = static_cast<unsigned int>(device.info.pci_bus);
  pci.device = 0;
  pci.pciDeviceId = kNvidiaVendorId;
  pci.pciSubSystemId = kNvidiaVendorId;
  std::snprintf(pci.busId, sizeof pci.busId, NVML_DEVICE_PCI_BUS_ID_FMT, pci.domain, pci.bus, pci.device);
  std::snprintf(pci.busIdLegacy, sizeof pci.busIdLegacy, NVML_DEVICE_PCI_BUS_ID_LEGACY_FMT, pci.domain, pci.bus,
                pci.device);
}

// "domain:bus:device.function" (any number of domain digits) or
// "bus:device.function", hexadecimal, as NVML accepts them.
bool parse_pci_bus_id(const char* text, unsigned int& domain, unsigned int& bus, unsigned int& device) {
  unsigned int function = 0;
  int consumed = 0;
  if (std::sscanf(text, "%x:%x:%x.%x%n", &domain, &bus, &device, &function, &consumed) == 4 &&
      text[consumed] == '\0')
    return true;
  domain = 0;
  return std::sscanf(text, "%x:%x.%x%n", &bus, &device, &function, &consumed) == 3 && text[consumed] == '\0';
}

nvmlReturn_t get_handle_by_index(unsigned int index, nvmlDevice_t* device) {
  if (nvmlReturn_t r = check_initialized(); r != NVML_SUCCESS) return r;
  if (device == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  nvmlDevice_t handle = handle_of(static_cast<int>(index));
  if (handle == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *device = handle;
  return NVML_SUCCESS;
}

nvmlReturn_t get_handle_by_pci_bus_id(const char* bus_id, nvmlDevice_t* device) {
  if (nvmlReturn_t r = check_initialized(); r != NVML_SUCCESS) return r;
  if (bus_id == nullptr || device == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  unsigned int domain = 0, bus = 0, dev = 0;
  if (!parse_pci_bus_id(bus_id, domain, bus, dev)) return NVML_ERROR_INVALID_ARGUMENT;
  Device d;
  for (int i = 0; i < device_count(); ++i)
    if (describe(i, d) && domain == 0 && dev == 0 && bus == static_cast<unsigned int>(d.info.pci_bus)) {
      *device = handle_of(i);
      return NVML_SUCCESS;
    }
  return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t get_pci_info(nvmlDevice_t handle, nvmlPciInfo_t* pci) {
  Device d;
  if (nvmlReturn_t r = resolve(handle, d); r != NVML_SUCCESS) return r;
  if (pci == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  fill_pci(d, *pci);
  return NVML_SUCCESS;
}

nvmlReturn_t get_count(unsigned int* count) {
  if (nvmlReturn_t r = check_initialized(); r != NVML_SUCCESS) return r;
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *count = static_cast<unsigned int>(device_count());
  return NVML_SUCCESS;
}

}  // namespace
}  // namespace oomguard::sim::nvml

using namespace oomguard::sim::nvml;

extern "C" {

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) { return get_count(count); }
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int* count) { return get_count(count); }

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  return get_handle_by_index(index, device);
}
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t* device) {
  return get_handle_by_index(index, device);
}

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char* uuid, nvmlDevice_t* device) {
  if (nvmlReturn_t r = check_initialized(); r != NVML_SUCCESS) return r;
  if (uuid == nullptr || device == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  Device d;
  char text[48];
  for (int i = 0; i < device_count(); ++i) {
    if (!describe(i, d)) continue;
    format_uuid(d.info.uuid, text);
    if (std::strcmp(text, uuid) == 0) {
      *device = handle_of(i);
      return NVML_SUCCESS;
    }
  }
  return NVML_ERROR_NOT_FOUND;
}

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char* bus_id, nvmlDevice_t* device) {
  return get_handle_by_pci_bus_id(bus_id, device);
}
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char* bus_id, nvmlDevice_t* device) {
  return get_handle_by_pci_bus_id(bus_id, device);
}

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t handle, unsigned int* index) {
  if (nvmlReturn_t r = check_initialized(); r != NVML_SUCCESS) return r;
  int i = 0;
  if (index == nullptr || !index_of(handle, i)) return NVML_ERROR_INVALID_ARGUMENT;
  *index = static_cast<unsigned int>(i);
  return NVML_SUCCESS;
}

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t handle, char* name, unsigned int length) {
  Device d;
  if (nvmlReturn_t r = resolve(handle, d); r != NVML_SUCCESS) return r;
  return copy_string(d.info.name, name, length);
}

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t handle, char* uuid, unsigned int length) {
  Device d;
  if (nvmlReturn_t r = resolve(handle, d); r != NVML_SUCCESS) return r;
  char text[48];
  format_uuid(d.info.uuid, text);
  return copy_string(text, uuid, length);
}

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t handle, nvmlPciInfo_t* pci) {
  return get_pci_info(handle, pci);
}
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t handle, nvmlPciInfo_t* pci) {
  return get_pci_info(handle, pci);
}
OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t handle, nvmlPciInfo_t* pci) {
  return get_pci_info(handle, pci);
}

OOMGUARD_SIM_EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t handle, int* major, int* minor) {
  Device d;
  if (nvmlReturn_t r = resolve(handle, d); r != NVML_SUCCESS) return r;
  if (major == nullptr || minor == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *major = d.info.compute_major;
  *minor = d.info.compute_minor;
  return NVML_SUCCESS;
}

}  // extern "C"
