#include "oomguard/c_api.h"

#include <fmt/format.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "oomguard/allocator_config.hpp"
#include "oomguard/error.hpp"
#include "oomguard/json.hpp"
#include "oomguard/tags.hpp"

namespace {

using namespace oomguard;

thread_local std::string t_last_error;
thread_local std::vector<std::unique_ptr<CategoryScope>> t_category_stack;

// Note [One allocator per process]
// The hot path reads one atomic pointer. Creation (from oomguard_configure
// or, lazily, from OOMGUARD_CONF) happens once under a mutex; the allocator
// is never destroyed, since torch frees tensors during static destruction.
std::atomic<CachingAllocator*> g_allocator{nullptr};
std::mutex g_create_mutex;

void set_error(std::string text) { t_last_error = std::move(text); }

CachingAllocator* create_locked(const AllocatorConfig& config) {
  auto allocator = make_allocator(config);
  CachingAllocator* raw = allocator.release();
  g_allocator.store(raw, std::memory_order_release);
  return raw;
}

CachingAllocator* get_allocator() {
  if (CachingAllocator* a = g_allocator.load(std::memory_order_acquire)) return a;
  std::lock_guard lock(g_create_mutex);
  if (CachingAllocator* a = g_allocator.load(std::memory_order_acquire)) return a;
  const char* env = std::getenv("OOMGUARD_CONF");
  const auto entries = parse_conf(env != nullptr ? env : "");
  return create_locked(parse_allocator_config(entries, /*strict=*/false));
}

size_t copy_out(const std::string& text, char* buffer, size_t capacity) {
  if (buffer != nullptr && capacity > 0) {
    const size_t n = std::min(text.size(), capacity - 1);
    std::memcpy(buffer, text.data(), n);
    buffer[n] = '\0';
  }
  return text.size();
}

// Every entry point goes through here, so the last error is that of the
// latest call on this thread: clear() keeps the buffer, a store of the size
// and of a NUL, nothing more on the allocation path.
template <typename Fn>
auto guarded(Fn&& fn, decltype(fn()) on_error) noexcept -> decltype(fn()) {
  t_last_error.clear();
  try {
    return fn();
  } catch (const std::exception& e) {
    set_error(e.what());
  } catch (...) {
    set_error("oomguard: unknown error");
  }
  return on_error;
}

}  // namespace

extern "C" {

void* oomguard_malloc(size_t size, int device, cudaStream_t stream) {
  if (size == 0) {
    // torch asks for zero bytes for empty tensors and expects NULL back.
    set_error("oomguard: zero-byte allocation requested; returned NULL");
    return nullptr;
  }
  return guarded([&] { return get_allocator()->allocate(size, device, reinterpret_cast<std::uintptr_t>(stream)); },
                 static_cast<void*>(nullptr));
}

void oomguard_free(void* ptr, size_t size, int device, cudaStream_t stream) {
  if (ptr == nullptr) return;
  const bool ok = guarded(
      [&] {
        get_allocator()->deallocate(ptr, size, device, reinterpret_cast<std::uintptr_t>(stream));
        return true;
      },
      false);
  if (!ok) std::fprintf(stderr, "%s\n", t_last_error.c_str());
}

int oomguard_configure(const char* conf) {
  return guarded(
      [&] {
        std::lock_guard lock(g_create_mutex);
        if (g_allocator.load() != nullptr) {
          throw config_error("oomguard_configure: the allocator is already in use; configure before the first "
                             "allocation");
        }
        const auto entries = parse_conf(conf != nullptr ? conf : "", "oomguard_configure");
        create_locked(parse_allocator_config(entries, /*strict=*/true, "oomguard_configure"));
        return 0;
      },
      -1);
}

const char* oomguard_last_error(void) { return t_last_error.c_str(); }

size_t oomguard_stats_json(int device, char* buffer, size_t capacity) {
  return guarded(
      [&] {
        CachingAllocator* a = get_allocator();
        nlohmann::json out = {{"allocator", to_json(a->stats(device))},
                              {"ledger", to_json(a->ledger().device_stats(device))}};
        return copy_out(out.dump(), buffer, capacity);
      },
      size_t{0});
}

size_t oomguard_snapshot_json(char* buffer, size_t capacity) {
  return guarded(
      [&] {
        CachingAllocator* a = get_allocator();
        const Ledger& ledger = a->ledger();
        nlohmann::json devices = nlohmann::json::array();
        for (int d = 0; d < a->upstream().device_count(); ++d) {
          devices.push_back({{"allocator", to_json(a->stats(d))}, {"ledger", to_json(ledger.device_stats(d))}});
        }
        nlohmann::json live = nlohmann::json::array();
        for (const auto& r : ledger.live_allocations()) live.push_back(to_json(r));
        nlohmann::json events = nlohmann::json::array();
        for (const auto& e : ledger.recent_events()) events.push_back(to_json(e));
        nlohmann::json steps = nlohmann::json::array();
        for (const auto& p : ledger.step_peaks()) steps.push_back(to_json(p));
        nlohmann::json out = {{"devices", devices},          {"live_allocations", live},
                              {"events", events},            {"step_peaks", steps},
                              {"counters", to_json(ledger.counters())}};
        return copy_out(out.dump(), buffer, capacity);
      },
      size_t{0});
}

void oomguard_empty_cache(void) {
  guarded(
      [] {
        if (CachingAllocator* a = g_allocator.load()) a->release_cached();
        return 0;
      },
      0);
}

int oomguard_set_phase(const char* phase) {
  return guarded(
      [&] {
        set_process_phase(parse_phase(phase != nullptr ? phase : ""));
        return 0;
      },
      -1);
}

int oomguard_push_category(const char* category) {
  return guarded(
      [&] {
        t_category_stack.push_back(std::make_unique<CategoryScope>(parse_category(category != nullptr ? category : "")));
        return 0;
      },
      -1);
}

void oomguard_pop_category(void) {
  if (!t_category_stack.empty()) t_category_stack.pop_back();
}

void oomguard_begin_step(int64_t step) {
  guarded(
      [&] {
        Ledger::global().begin_step(step);
        return 0;
      },
      0);
}

}  // extern "C"
