// The private seam (oomguard_sim/sim_api.h) the other stand-ins use.
#include <cstring>
#include <mutex>

#include "api.hpp"
#include "launch.hpp"
#include "log.hpp"

using namespace oomguard::sim;

extern "C" OOMGUARD_SIM_EXPORT void oomguard_sim_unsupported(const char* library, const char* function) {
  Driver* driver = Driver::load();
  const bool first = driver ? driver->unsupported_calls.count_first(library, function) : true;
  if (first) {
    oomguard_sim_log(1, "%s: %s is not simulated (it returns the library's \"not supported\" status)", library,
                     function);
  }
}

extern "C" OOMGUARD_SIM_EXPORT int oomguard_sim_device_count(void) {
  Driver* driver = Driver::load();
  return driver ? static_cast<int>(driver->devices.size()) : 0;
}

namespace {

void describe(const Driver& driver, const GpuModel& model, int physical_index, struct oomguard_sim_device_info& out) {
  std::memset(&out, 0, sizeof out);
  const auto copy = [](char* to, std::size_t capacity, std::string_view from) {
    const std::size_t n = std::min(capacity - 1, from.size());
    std::memcpy(to, from.data(), n);
    to[n] = '\0';
  };
  copy(out.name, sizeof out.name, model.device_name);
  copy(out.table_name, sizeof out.table_name, model.table_name);
  out.total_bytes = driver.config.memory_override != 0 ? driver.config.memory_override : model.total_mib << 20;
  out.context_bytes = model.context_mib << 20;
  out.compute_major = model.compute_major;
  out.compute_minor = model.compute_minor;
  out.sm_count = model.sm_count;
  out.pci_bus = device_pci_bus(physical_index);
  out.physical_index = physical_index;
  const CUuuid uuid = device_uuid(model, physical_index);
  std::memcpy(out.uuid, uuid.bytes, sizeof out.uuid);
}

}  // namespace

extern "C" OOMGUARD_SIM_EXPORT int oomguard_sim_device_info(int ordinal, struct oomguard_sim_device_info* out) {
  Driver* driver = Driver::load();
  Device* device = driver ? driver->device(ordinal) : nullptr;
  if (!device || !out) return -1;
  describe(*driver, device->model, device->physical_index, *out);
  return 0;
}

extern "C" OOMGUARD_SIM_EXPORT int oomguard_sim_physical_device_count(void) {
  Driver* driver = Driver::load();
  return driver ? static_cast<int>(driver->config.physical.size()) : 0;
}

extern "C" OOMGUARD_SIM_EXPORT int oomguard_sim_physical_device_info(int physical_index,
                                                                     struct oomguard_sim_device_info* out) {
  Driver* driver = Driver::load();
  if (!driver || !out || physical_index < 0 || physical_index >= static_cast<int>(driver->config.physical.size())) {
    return -1;
  }
  describe(*driver, *driver->config.physical[static_cast<std::size_t>(physical_index)], physical_index, *out);
  return 0;
}

extern "C" OOMGUARD_SIM_EXPORT int oomguard_sim_memory(int ordinal, uint64_t* used, uint64_t* peak, uint64_t* total) {
  Driver* driver = Driver::load();
  Device* device = driver ? driver->device(ordinal) : nullptr;
  if (!device) return -1;
  std::lock_guard lock(device->mutex);
  if (used) *used = device->charged;
  if (peak) *peak = device->peak;
  if (total) *total = device->total_bytes;
  return 0;
}

extern "C" OOMGUARD_SIM_EXPORT int oomguard_sim_fill_byte(void) {
  Driver* driver = Driver::load();
  return driver ? driver->config.fill_byte : 0;
}

extern "C" OOMGUARD_SIM_EXPORT void oomguard_sim_register_kernel(const void* host_function, const char* device_name) {
  Driver* driver = Driver::load();
  if (!driver || !host_function) return;
  driver->kernels.intern(host_function, device_name ? device_name : "<unnamed kernel>");
}

extern "C" OOMGUARD_SIM_EXPORT void oomguard_sim_count_launch(const void* host_function) {
  Driver* driver = Driver::load();
  if (!driver) return;
  KernelRecord* kernel = driver->kernels.find_or_unnamed(host_function);
  kernel->launches.fetch_add(1, std::memory_order_relaxed);
  oomguard_sim_log(3, "launch %s", kernel->name.c_str());
}

extern "C" OOMGUARD_SIM_EXPORT int oomguard_sim_launch(const void* host_function, unsigned grid_x, unsigned grid_y,
                                                       unsigned grid_z, unsigned block_x, unsigned block_y,
                                                       unsigned block_z, size_t shared_bytes, void* stream) {
  Driver* driver = Driver::initialized();
  if (!driver) return CUDA_ERROR_NOT_INITIALIZED;
  if (!host_function) return CUDA_ERROR_INVALID_VALUE;
  KernelRecord* kernel = driver->kernels.find_or_unnamed(host_function);
  return launch(*driver, kernel, {grid_x, grid_y, grid_z}, {block_x, block_y, block_z}, shared_bytes,
                static_cast<CUstream>(stream), 0);
}

extern "C" OOMGUARD_SIM_EXPORT uint64_t oomguard_sim_kernel_launches(const char* device_name) {
  Driver* driver = Driver::load();
  return driver && device_name ? driver->kernels.launches_of(device_name) : 0;
}

extern "C" OOMGUARD_SIM_EXPORT void* oomguard_sim_symbol_address(const void* host_shadow, size_t size) {
  Driver* driver = Driver::load();
  return driver ? driver->symbol_address(host_shadow, size) : nullptr;
}

extern "C" OOMGUARD_SIM_EXPORT void oomguard_sim_count_call(const char* library, const char* function) {
  Driver* driver = Driver::load();
  if (driver && library && function) driver->library_calls.count(library, function);
}
