#include "state.hpp"

#include <array>
#include <atomic>
#include <cstring>

// Note [Physical devices through the seam]
// NVML needs every simulated device, also those CUDA_VISIBLE_DEVICES hides
// (Note [NVML sees every device]); sim_api.h's oomguard_sim_device_info only
// describes the visible ones. These two functions of the driver describe the
// physical list. They are weak here so that this library also loads on a
// driver without them: it then enumerates the visible devices, which is the
// same list whenever CUDA_VISIBLE_DEVICES is unset.
extern "C" int oomguard_sim_physical_device_count(void) __attribute__((weak));
extern "C" int oomguard_sim_physical_device_info(int physical_index, struct oomguard_sim_device_info* out)
    __attribute__((weak));

namespace oomguard::sim::nvml {
namespace {

std::atomic<int> g_initialized{0};

constexpr int kMaxDevices = 64;  // OOMGUARD_SIMULATE names at most 64 devices

std::array<nvmlDevice_st, kMaxDevices> g_handles = [] {
  std::array<nvmlDevice_st, kMaxDevices> handles{};
  for (int i = 0; i < kMaxDevices; ++i) handles[static_cast<std::size_t>(i)].index = i;
  return handles;
}();

bool physical_list_known() {
  return oomguard_sim_physical_device_count != nullptr && oomguard_sim_physical_device_info != nullptr;
}

// The CUDA ordinal of physical device `index` in this process, or -1.
int visible_ordinal(int index) {
  const int visible = oomguard_sim_device_count();
  struct oomguard_sim_device_info info;  // "struct": sim_api.h has a function of the same name
  for (int ordinal = 0; ordinal < visible; ++ordinal)
    if (oomguard_sim_device_info(ordinal, &info) == 0 && info.physical_index == index) return ordinal;
  return -1;
}

}  // namespace

nvmlReturn_t check_initialized() {
  return g_initialized.load(std::memory_order_acquire) > 0 ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
}

void initialize() { g_initialized.fetch_add(1, std::memory_order_acq_rel); }

bool shut_down() {
  int current = g_initialized.load(std::memory_order_acquire);
  while (current > 0)
    if (g_initialized.compare_exchange_weak(current, current - 1, std::memory_order_acq_rel)) return true;
  return false;
}

int device_count() {
  const int count = physical_list_known() ? oomguard_sim_physical_device_count() : oomguard_sim_device_count();
  return count < 0 ? 0 : (count > kMaxDevices ? kMaxDevices : count);
}

bool describe(int index, Device& out) {
  if (index < 0 || index >= device_count()) return false;
  if (physical_list_known()) {
    if (oomguard_sim_physical_device_info(index, &out.info) != 0) return false;
    out.ordinal = visible_ordinal(index);
    return true;
  }
  // Without the physical list, NVML's index is the CUDA ordinal.
  if (oomguard_sim_device_info(index, &out.info) != 0) return false;
  out.ordinal = index;
  return true;
}

nvmlDevice_t handle_of(int index) {
  if (index < 0 || index >= device_count()) return nullptr;
  return &g_handles[static_cast<std::size_t>(index)];
}

bool index_of(nvmlDevice_t handle, int& index) {
  // Compared by address, never dereferenced: a stray pointer is refused, not read.
  const auto address = reinterpret_cast<std::uintptr_t>(handle);
  const auto first = reinterpret_cast<std::uintptr_t>(g_handles.data());
  if (address < first || address >= first + sizeof g_handles || (address - first) % sizeof(nvmlDevice_st) != 0)
    return false;
  index = static_cast<int>((address - first) / sizeof(nvmlDevice_st));
  return index < device_count();
}

nvmlReturn_t resolve(nvmlDevice_t handle, Device& out) {
  if (nvmlReturn_t r = check_initialized(); r != NVML_SUCCESS) return r;
  int index = 0;
  if (!index_of(handle, index)) return NVML_ERROR_INVALID_ARGUMENT;
  if (!describe(index, out)) return NVML_ERROR_GPU_IS_LOST;
  return NVML_SUCCESS;
}

nvmlReturn_t copy_string(const char* text, char* buffer, unsigned int length) {
  if (buffer == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  const std::size_t needed = std::strlen(text) + 1;
  if (needed > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  std::memcpy(buffer, text, needed);
  return NVML_SUCCESS;
}

}  // namespace oomguard::sim::nvml
