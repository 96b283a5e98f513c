// One simulated device: its identity and properties, its unbacked address
// range, and the physical bytes charged against its capacity.
//
// Note [Device memory]
// Each device owns one PROT_NONE | MAP_NORESERVE reservation of host
// address space: it costs no RAM and no commit charge, and a host
// dereference of a device pointer faults as it would on a GPU machine
// (where the address is not mapped on the host either). Addresses are
// handed out by a best-fit allocator over that range (range_set.hpp);
// what a device can hold is decided separately, by the bytes *charged*:
// cuMemAlloc charges its size rounded up to the 2 MiB granularity,
// cuMemCreate its (granularity-multiple) size, a pool the chunks it
// reserves, a context the table's context bytes. A charge past capacity is
// refused with CUDA_ERROR_OUT_OF_MEMORY. Address space is reserved at 16
// times capacity (less if the host refuses), so torch's expandable
// segments, each of which reserves a device's full capacity of addresses,
// find room for several streams and pools.
//
// Note [Device locking]
// Everything a device's memory calls change is guarded by its own mutex:
// two threads allocating on one device serialize, two devices never do,
// and no process-wide lock is taken on allocation or free. Lock order:
// a pool's mutex, then its device's; never the reverse.
#pragma once

#include <cuda.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gpu_models.hpp"
#include "range_set.hpp"

namespace oomguard::sim {

inline constexpr std::uint64_t kGranularity = 2ull << 20;

constexpr std::uint64_t round_up(std::uint64_t value, std::uint64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

class Device;
class MemoryPool;
struct PhysicalAllocation;
struct Stream;

enum class RegionKind : std::uint8_t {
  linear,       // cuMemAlloc / cuMemAllocPitch: charged by itself
  pool_block,   // a block of a memory pool: the pool's chunks are charged
  reservation,  // cuMemAddressReserve: addresses only, charged by what is mapped
};

struct Region {
  std::size_t size;
  std::uint64_t charged;
  RegionKind kind;
  MemoryPool* pool;  // pool_block only
};

struct Mapping {
  std::size_t size;
  PhysicalAllocation* allocation;
};

// A context: the primary one of each device lives in its Device; others
// come from cuCtxCreate.
struct Context {
  Device* device = nullptr;
  bool primary = false;
  unsigned flags = 0;
  int retains = 0;  // primary: cuDevicePrimaryCtxRetain count; guarded by the device's mutex
  // Created and charged. Written with the device's mutex held; read without
  // it on every call that needs the current context (launches among them).
  std::atomic<bool> active{false};
};

struct DeviceCounters {
  std::uint64_t allocations = 0;  // cuMemAlloc, cuMemCreate, pool chunks
  std::uint64_t frees = 0;
  std::uint64_t refusals = 0;     // charges refused for capacity
};

// A device's identity, a function of its model and its place in
// OOMGUARD_SIMULATE only: stable across runs and across processes whatever
// CUDA_VISIBLE_DEVICES says, so NVML, torch and a report name a device alike.
CUuuid device_uuid(const GpuModel& model, int physical_index);
int device_pci_bus(int physical_index);

class Device {
 public:
  Device(int ordinal, int physical_index, const GpuModel& model, std::uint64_t total_bytes);
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // Reserves the address range; false (with a log line) if the host refuses.
  bool reserve_address_space();

  bool owns(std::uintptr_t address) const noexcept { return address >= va_begin_ && address < va_end_; }
  std::uintptr_t va_begin() const noexcept { return va_begin_; }
  std::uintptr_t va_end() const noexcept { return va_end_; }

  const int ordinal;
  const int physical_index;
  const GpuModel& model;
  const ArchitectureLimits limits;
  const std::uint64_t total_bytes;
  const std::uint64_t context_bytes;
  CUuuid uuid{};
  int pci_bus = 0;

  mutable std::mutex mutex;  // Note [Device locking]; guards all below

  // With `mutex` held: charge `bytes` (false, counted as a refusal, if the
  // device cannot hold them) or give them back.
  bool try_charge(std::uint64_t bytes);
  void uncharge(std::uint64_t bytes);
  // With `mutex` held: addresses for `size` bytes (a granularity multiple).
  std::optional<std::uintptr_t> take_addresses(std::size_t size, std::size_t alignment, std::uintptr_t hint = 0);
  void return_addresses(std::uintptr_t begin, std::size_t size);

  // cuMemFree and cuMemFreeAsync: forget the allocation that starts at
  // `pointer` (takes `mutex`; a pool block goes back to its pool after it is
  // dropped, Note [Device locking]). CUDA_ERROR_INVALID_VALUE when no
  // allocation starts there or it is a reservation.
  CUresult free_allocation(std::uintptr_t pointer, const char* caller);

  // The region holding `address` (with `mutex` held), or regions.end().
  std::map<std::uintptr_t, Region>::iterator region_containing(std::uintptr_t address);

  std::uint64_t charged = 0;
  std::uint64_t peak = 0;
  DeviceCounters counters;
  std::map<std::uintptr_t, Region> regions;    // live allocations and reservations
  std::map<std::uintptr_t, Mapping> mappings;  // cuMemMap'd ranges, inside reservations
  Context primary_context;
  std::vector<MemoryPool*> pools;              // the default pool first
  MemoryPool* current_pool = nullptr;

  // The two default streams, created with the device, never destroyed.
  Stream* legacy_stream = nullptr;
  Stream* per_thread_stream = nullptr;

 private:
  RangeSet free_addresses_;
  std::uintptr_t va_begin_ = 0;
  std::uintptr_t va_end_ = 0;
};

}  // namespace oomguard::sim
