// A simulated device for tests and benchmarks: a capacity per device and
// fault injection, backed by host memory or by addresses nobody touches.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "oomguard/upstream.hpp"

namespace oomguard {

struct SimulatedDeviceOptions {
  std::uint64_t capacity_bytes = 1ull << 30;  // per device
  int devices = 1;
  // host: real memory (sanitizers see misuse); virtual: distinct addresses
  // never dereferenced, so benchmarks can "hold" terabytes.
  enum class Backing { host, virtual_addresses } backing = Backing::host;
  std::size_t alignment = 512;
};

class SimulatedDevice final : public Upstream {
 public:
  explicit SimulatedDevice(SimulatedDeviceOptions options = {});
  ~SimulatedDevice() override;

  void* allocate(std::size_t bytes, int device) override;
  void deallocate(void* ptr, std::size_t bytes, int device) noexcept override;
  DeviceMemoryInfo memory_info(int device) override;
  int device_count() override { return options_.devices; }
  std::string name() const override { return "simulated"; }

  // Fault injection. fail_call(n): the n-th allocate() from now (1-based)
  // returns nullptr, once, or with `and_after` every call from then on.
  // fail_above(bytes): every allocate() larger fails.
  void fail_call(std::uint64_t n, bool and_after = false);
  void fail_above(std::uint64_t bytes);
  void clear_faults();

  std::uint64_t allocate_calls() const { return allocate_calls_.load(); }
  std::uint64_t deallocate_calls() const { return deallocate_calls_.load(); }
  std::uint64_t used_bytes(int device) const;
  std::uint64_t outstanding() const { return outstanding_.load(); }

 private:
  void check_device(int device) const;

  SimulatedDeviceOptions options_;
  std::vector<std::atomic<std::uint64_t>> used_;
  std::atomic<std::uint64_t> allocate_calls_{0};
  std::atomic<std::uint64_t> deallocate_calls_{0};
  std::atomic<std::uint64_t> outstanding_{0};
  std::atomic<std::uint64_t> fail_at_call_{0};  // 0: none
  std::atomic<bool> fail_after_{false};
  std::atomic<std::uint64_t> fail_above_{UINT64_MAX};
  std::atomic<std::uintptr_t> next_virtual_;
};

}  // namespace oomguard
