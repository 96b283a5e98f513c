#include "pluggable.hpp"

#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>

#include <c10/util/Exception.h>

#include "oomguard/allocator_config.hpp"
#include "oomguard/c_api.h"
#include "oomguard/caching_allocator.hpp"
#include "oomguard/config.hpp"
#include "oomguard/error.hpp"
#include "own.hpp"

namespace oomguard::torch_hooks {
namespace {

// Note [Pool allocator lifetime]: like the core's process allocator, created
// once and never destroyed (torch frees pool segments during static
// destruction, after any destructor here would have run).
struct PoolAllocator {
  Ledger ledger;
  std::unique_ptr<CachingAllocator> allocator;
};

std::atomic<PoolAllocator*> g_pool{nullptr};
std::mutex g_pool_mutex;

PoolAllocator* create_pool_locked(const std::string& conf, bool strict) {
  auto pool = std::make_unique<PoolAllocator>();
  pool->allocator = make_allocator(parse_allocator_config(parse_conf(conf, "OOMGUARD_CONF"), strict), &pool->ledger);
  PoolAllocator* raw = pool.release();
  g_pool.store(raw, std::memory_order_release);
  return raw;
}

PoolAllocator& pool() {
  if (PoolAllocator* p = g_pool.load(std::memory_order_acquire)) return *p;
  std::lock_guard lock(g_pool_mutex);
  if (PoolAllocator* p = g_pool.load(std::memory_order_acquire)) return *p;
  const char* env = std::getenv("OOMGUARD_CONF");
  return *create_pool_locked(env != nullptr ? env : "", /*strict=*/false);
}

}  // namespace

std::string extension_library_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&oomguard_torch_malloc), &info) == 0 || info.dli_fname == nullptr) {
    throw error("oomguard: cannot locate the oomguard._C extension (dladdr failed on oomguard_torch_malloc)");
  }
  return info.dli_fname;
}

void configure_pool_allocator(const std::string& conf) {
  std::lock_guard lock(g_pool_mutex);
  if (g_pool.load(std::memory_order_acquire) != nullptr) return;
  create_pool_locked(conf, /*strict=*/false);
}

bool pool_allocator_configured() noexcept { return g_pool.load(std::memory_order_acquire) != nullptr; }

AllocatorStats pool_allocator_stats(int device) {
  PoolAllocator* p = g_pool.load(std::memory_order_acquire);
  if (p == nullptr) {
    AllocatorStats none;
    none.device = device;
    return none;
  }
  return p->allocator->stats(device);
}

}  // namespace oomguard::torch_hooks

using oomguard::torch_hooks::refused_for_memory;

extern "C" {

void* oomguard_torch_malloc(std::size_t size, int device, void* stream) {
  if (size == 0) return nullptr;  // torch's empty tensors: NULL, as oomguard_malloc answers
  refused_for_memory() = false;
  void* ptr = oomguard_malloc(size, device, static_cast<cudaStream_t>(stream));
  if (ptr != nullptr) return ptr;
  // Note [A pluggable allocator must throw].
  const std::string message = oomguard_last_error();
  if (refused_for_memory()) TORCH_CHECK_WITH(OutOfMemoryError, false, message);
  TORCH_CHECK(false, message);
}

void oomguard_torch_free(void* ptr, std::size_t size, int device, void* stream) {
  oomguard_free(ptr, size, device, static_cast<cudaStream_t>(stream));
}

void* oomguard_pool_malloc(std::size_t size, int device, void* stream) {
  if (size == 0) return nullptr;
  try {
    return oomguard::torch_hooks::pool().allocator->allocate(size, device, reinterpret_cast<std::uintptr_t>(stream));
  } catch (const std::exception&) {
    // torch's allocator turns the NULL into its out-of-memory path.
    return nullptr;
  }
}

void oomguard_pool_free(void* ptr, std::size_t size, int device, void* stream) {
  if (ptr == nullptr) return;
  try {
    auto& allocator = *oomguard::torch_hooks::pool().allocator;
    allocator.deallocate(ptr, size, device, reinterpret_cast<std::uintptr_t>(stream));
    // torch caches the pool's blocks itself and frees a segment only when it
    // empties its cache or drops the pool: the device should get it back then,
    // not a second cache here.
    allocator.release_cached();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());  // a free cannot fail towards torch
  }
}

}  // extern "C"
