// Device memory from the CUDA driver, loaded at run time so that the core
// builds and runs on machines without one.
#pragma once

#include <memory>
#include <string>

#include "oomguard/upstream.hpp"

namespace oomguard {

class CudaDriverUpstream final : public Upstream {
 public:
  // Throws upstream_error naming the cause when libcuda cannot be loaded, a
  // symbol is missing, cuInit fails or there is no device.
  CudaDriverUpstream();
  ~CudaDriverUpstream() override;

  void* allocate(std::size_t bytes, int device) override;
  void deallocate(void* ptr, std::size_t bytes, int device) noexcept override;
  DeviceMemoryInfo memory_info(int device) override;
  int device_count() override;
  std::string name() const override { return "cuda"; }

 private:
  struct Driver;
  void make_current(int device);
  std::unique_ptr<Driver> driver_;
};

}  // namespace oomguard
