#include "memory_pool.hpp"

#include <algorithm>
#include <iterator>
#include <limits>
#include <vector>

#include "device.hpp"
#include "oomguard_sim/sim_api.h"

namespace oomguard::sim {

namespace {
// Blocks are handed out in multiples of this: the alignment cudaMallocAsync
// guarantees.
constexpr std::size_t kBlockAlignment = 512;
}  // namespace

std::size_t MemoryPool::block_size(std::size_t size) { return round_up(size == 0 ? 1 : size, kBlockAlignment); }

CUresult MemoryPool::allocate(std::size_t size, std::uintptr_t& address) {
  const std::size_t block = block_size(size);
  std::lock_guard lock(mutex_);
  if (auto reused = free_.take(block, kBlockAlignment)) {
    address = *reused;
  } else {
    // Note [Pools]: a new chunk, charged against the device.
    const std::size_t chunk = round_up(block, kGranularity);
    std::optional<std::uintptr_t> begin;
    {
      std::lock_guard device_lock(device_.mutex);
      if (!device_.try_charge(chunk)) {
        oomguard_sim_log(1, "driver: pool allocation of %zu bytes on device %d refused: %llu of %llu bytes in use",
                         size, device_.ordinal, static_cast<unsigned long long>(device_.charged),
                         static_cast<unsigned long long>(device_.total_bytes));
        return CUDA_ERROR_OUT_OF_MEMORY;
      }
      begin = device_.take_addresses(chunk, kGranularity);
      if (!begin) {
        device_.uncharge(chunk);
        ++device_.counters.refusals;
        return CUDA_ERROR_OUT_OF_MEMORY;
      }
      ++device_.counters.allocations;
    }
    chunks_.emplace(*begin, chunk);
    reserved_ += chunk;
    reserved_high_ = std::max(reserved_high_, reserved_);
    if (chunk > block) free_.insert(*begin + block, chunk - block);
    address = *begin;
  }
  used_ += block;
  used_high_ = std::max(used_high_, used_);
  return CUDA_SUCCESS;
}

void MemoryPool::release_block(std::uintptr_t address, std::size_t size) {
  std::lock_guard lock(mutex_);
  free_.insert(address, size);
  used_ -= std::min<std::uint64_t>(size, used_);
}

void MemoryPool::trim_to(std::uint64_t keep) {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<std::uintptr_t, std::size_t>> released;
  for (auto it = chunks_.begin(); it != chunks_.end() && reserved_ > keep;) {
    if (free_.contains(it->first, it->second)) {
      free_.take_at(it->first, it->second);
      reserved_ -= it->second;
      released.emplace_back(*it);
      it = chunks_.erase(it);
    } else {
      ++it;
    }
  }
  if (released.empty()) return;
  std::lock_guard device_lock(device_.mutex);
  for (const auto& [begin, size] : released) {
    device_.uncharge(size);
    device_.return_addresses(begin, size);
    ++device_.counters.frees;
  }
}

void MemoryPool::on_synchronize() {
  std::uint64_t threshold = 0;
  {
    std::lock_guard lock(mutex_);
    if (reserved_ <= release_threshold_) return;
    threshold = release_threshold_;
  }
  trim_to(threshold);
}

CUresult MemoryPool::get_attribute(CUmemPool_attribute attribute, void* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard lock(mutex_);
  switch (attribute) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES: *static_cast<int*>(value) = reuse_follow_event_dependencies_; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC: *static_cast<int*>(value) = reuse_allow_opportunistic_; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
      *static_cast<int*>(value) = reuse_allow_internal_dependencies_;
      break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: *static_cast<cuuint64_t*>(value) = release_threshold_; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT: *static_cast<cuuint64_t*>(value) = reserved_; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH: *static_cast<cuuint64_t*>(value) = reserved_high_; break;
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT: *static_cast<cuuint64_t*>(value) = used_; break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH: *static_cast<cuuint64_t*>(value) = used_high_; break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult MemoryPool::set_attribute(CUmemPool_attribute attribute, const void* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard lock(mutex_);
  switch (attribute) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
      reuse_follow_event_dependencies_ = *static_cast<const int*>(value);
      return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
      reuse_allow_opportunistic_ = *static_cast<const int*>(value);
      return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
      reuse_allow_internal_dependencies_ = *static_cast<const int*>(value);
      return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
      release_threshold_ = *static_cast<const cuuint64_t*>(value);
      return CUDA_SUCCESS;
    // Only zero may be written to the high-water marks: it resets them to
    // the current values, as on a GPU.
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
      if (*static_cast<const cuuint64_t*>(value) != 0) return CUDA_ERROR_INVALID_VALUE;
      reserved_high_ = reserved_;
      return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
      if (*static_cast<const cuuint64_t*>(value) != 0) return CUDA_ERROR_INVALID_VALUE;
      used_high_ = used_;
      return CUDA_SUCCESS;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
}

}  // namespace oomguard::sim
