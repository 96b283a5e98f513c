// A stream-ordered memory pool (cuMemAllocAsync, cuMemPool*).
//
// Note [Pools]
// A pool reserves chunks of device memory (charged against the device,
// each a granularity multiple and at least the request) and hands out
// blocks from them, best fit. A freed block goes back to the pool, not to
// the device: "reserved" stays, "used" falls, and the next allocation is
// served from it before anything new is charged. Memory goes back to the
// device only when a chunk is entirely free and either cuMemPoolTrimTo
// asks, or a synchronization (stream, event or context) finds the pool
// holding more than its release threshold (default 0, as on a GPU; torch's
// cudaMallocAsync backend sets it to UINT64_MAX). Since no work is ever
// pending, a freed block is reusable by every stream at once; a GPU would
// make other streams wait for the free's stream.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <map>
#include <mutex>

#include "range_set.hpp"

namespace oomguard::sim {

class Device;

class MemoryPool {
 public:
  MemoryPool(Device& device, const CUmemPoolProps& props) : device_(device), props_(props) {}

  Device& device() const { return device_; }
  const CUmemPoolProps& props() const { return props_; }

  // A block of `size` bytes, from free space or a new chunk;
  // CUDA_ERROR_OUT_OF_MEMORY past the device's capacity.
  CUresult allocate(std::size_t size, std::uintptr_t& address);
  // Gives back a block from allocate(); its size as allocate() rounded it.
  void release_block(std::uintptr_t address, std::size_t size);
  // Returns whole free chunks to the device while more than `keep` bytes
  // are reserved.
  void trim_to(std::uint64_t keep);
  // At a synchronization: trim to the release threshold.
  void on_synchronize();

  CUresult get_attribute(CUmemPool_attribute attribute, void* value);
  CUresult set_attribute(CUmemPool_attribute attribute, const void* value);

  static std::size_t block_size(std::size_t size);

 private:
  Device& device_;
  const CUmemPoolProps props_;
  std::mutex mutex_;  // guards the fields below; Note [Device locking]
  RangeSet free_;
  std::map<std::uintptr_t, std::size_t> chunks_;
  std::uint64_t reserved_ = 0;
  std::uint64_t used_ = 0;
  std::uint64_t reserved_high_ = 0;
  std::uint64_t used_high_ = 0;
  std::uint64_t release_threshold_ = 0;
  int reuse_follow_event_dependencies_ = 1;
  int reuse_allow_opportunistic_ = 1;
  int reuse_allow_internal_dependencies_ = 1;
};

}  // namespace oomguard::sim
