// Page-locked host memory: what cuMemHostAlloc/cuMemAllocHost allocated
// (real host memory, freed by cuMemFreeHost) and what cuMemHostRegister
// registered, so pointer attributes tell pinned host memory from device
// memory and from plain pageable memory.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <shared_mutex>

namespace oomguard::sim {

struct HostRange {
  std::uintptr_t begin;
  std::size_t size;
  bool allocated_by_driver;  // cuMemHostAlloc vs cuMemHostRegister
  unsigned flags;
  int device_ordinal;        // the context's device when it was made
};

class HostMemory {
 public:
  // False if the range overlaps one already known.
  bool add(const HostRange& range);
  // The range starting exactly at `begin`, removed; nullopt if none.
  std::optional<HostRange> remove(std::uintptr_t begin, bool allocated_by_driver);
  // The range containing `address`, or nullopt.
  std::optional<HostRange> find(std::uintptr_t address) const;

 private:
  mutable std::shared_mutex mutex_;
  std::map<std::uintptr_t, HostRange> ranges_;
};

}  // namespace oomguard::sim
