#include "library_attribution.hpp"

#include <cstdlib>
#include <mutex>

#include "oomguard/cupti_memory.hpp"

namespace oomguard::cupti {
namespace {

constexpr size_t kBufferBytes = 1 << 20;
constexpr size_t kBufferAlignment = 8;

// Buffer completion runs on a CUPTI thread, never on an allocation path, so a
// mutex around the map is fine.
std::mutex g_mutex;
std::map<std::string, std::int64_t> g_live_by_library;

void CUPTIAPI on_buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(kBufferAlignment, kBufferBytes));
  *size = *buffer == nullptr ? 0 : kBufferBytes;
  *max_records = 0;
}

void account(const CUpti_ActivityMemory4& record) {
  const std::string library = record.source == nullptr ? std::string() : std::string(record.source);
  const auto bytes = static_cast<std::int64_t>(record.bytes);
  std::lock_guard lock(g_mutex);
  if (record.memoryOperationType == CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION) {
    g_live_by_library[library] += bytes;
  } else if (record.memoryOperationType == CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_RELEASE) {
    g_live_by_library[library] -= bytes;
  }
}

void CUPTIAPI on_buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid_size) {
  CUpti_Activity* record = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid_size, &record) == CUPTI_SUCCESS) {
    if (record->kind == CUPTI_ACTIVITY_KIND_MEMORY2) account(*reinterpret_cast<const CUpti_ActivityMemory4*>(record));
  }
  std::free(buffer);
}

}  // namespace

CUptiResult enable_memory_records() {
  const CUptiResult registered = cuptiActivityRegisterCallbacks(&on_buffer_requested, &on_buffer_completed);
  if (registered != CUPTI_SUCCESS) return registered;
  return cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMORY2);
}

void disable_memory_records() {
  cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  cuptiActivityDisable(CUPTI_ACTIVITY_KIND_MEMORY2);
}

std::map<std::string, std::int64_t> live_bytes_by_library() {
  std::lock_guard lock(g_mutex);
  return g_live_by_library;
}

}  // namespace oomguard::cupti
