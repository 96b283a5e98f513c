// Where device memory comes from: the one thin seam to a driver.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace oomguard {

struct DeviceMemoryInfo {
  std::uint64_t free_bytes = 0;
  std::uint64_t total_bytes = 0;
};

class Upstream {
 public:
  virtual ~Upstream() = default;
  // Returns nullptr when the device is out of memory; throws upstream_error
  // for anything else (no driver, bad device).
  [[nodiscard]] virtual void* allocate(std::size_t bytes, int device) = 0;
  virtual void deallocate(void* ptr, std::size_t bytes, int device) noexcept = 0;
  virtual DeviceMemoryInfo memory_info(int device) = 0;
  virtual int device_count() = 0;
  virtual std::string name() const = 0;
};

}  // namespace oomguard
