#include "oomguard/cupti_memory.hpp"

#include <cuda.h>
#include <cupti.h>

#include <cstdint>
#include <mutex>

#include "library_attribution.hpp"
#include "oomguard/ledger.hpp"

// Note [CUPTI callbacks and the Ledger]
// Callbacks run synchronously on the thread that made the driver call, at the
// API exit, after the driver has answered: only successful calls are
// recorded. Like the preload library, this is segment level (PyTorch's
// caching allocator calls the driver once per segment) and everything starts
// as `non_torch`; the Python layer retags the segments PyTorch owns. With the
// virtual-memory API the bytes belong to cuMemCreate's handle until
// cuMemRelease (Note [Virtual-memory accounting] in hooks/preload); map and
// unmap move no bytes. Do not run this and the preload library in one
// process: both would record the same segments.

namespace oomguard::cupti {
namespace {

constexpr CUpti_CallbackId kMemoryCallbacks[] = {
    CUPTI_DRIVER_TRACE_CBID_cuMemAlloc_v2,   CUPTI_DRIVER_TRACE_CBID_cuMemFree_v2,
    CUPTI_DRIVER_TRACE_CBID_cuMemCreate,     CUPTI_DRIVER_TRACE_CBID_cuMemRelease,
    CUPTI_DRIVER_TRACE_CBID_cuMemMap,        CUPTI_DRIVER_TRACE_CBID_cuMemUnmap,
    CUPTI_DRIVER_TRACE_CBID_cuMemAllocAsync, CUPTI_DRIVER_TRACE_CBID_cuMemFreeAsync,
    CUPTI_DRIVER_TRACE_CBID_cuMemAllocFromPoolAsync,
};

std::mutex g_mutex;  // start/stop only
CUpti_SubscriberHandle g_subscriber = nullptr;
TrackingStatus g_status{TrackingState::unavailable, "CUPTI memory tracking not started"};

int device_of(const CUpti_CallbackData* data) {
  uint32_t device = 0;
  if (data->context != nullptr && cuptiGetDeviceId(data->context, &device) == CUPTI_SUCCESS) {
    return static_cast<int>(device);
  }
  return 0;
}

void record_segment(std::uintptr_t key, std::uint64_t size, int device, std::uintptr_t stream) {
  Ledger& ledger = Ledger::segments();
  ledger.record(key, size, device, stream, Tag{Category::non_torch, process_phase(), process_step()});
  ledger.segment_alloc(device, size, key);
}

void release_segment(std::uintptr_t key) {
  Ledger& ledger = Ledger::segments();
  if (const auto record = ledger.release(key)) ledger.segment_free(record->device, record->size, key);
}

void CUPTIAPI on_driver_call(void*, CUpti_CallbackDomain domain, CUpti_CallbackId id, const void* payload) {
  if (domain != CUPTI_CB_DOMAIN_DRIVER_API) return;
  const auto* data = static_cast<const CUpti_CallbackData*>(payload);
  if (data->callbackSite != CUPTI_API_EXIT) return;
  if (data->functionReturnValue == nullptr || *static_cast<const CUresult*>(data->functionReturnValue) != CUDA_SUCCESS) {
    return;
  }
  const void* params = data->functionParams;
  switch (id) {
    case CUPTI_DRIVER_TRACE_CBID_cuMemAlloc_v2: {
      const auto* p = static_cast<const cuMemAlloc_v2_params*>(params);
      record_segment(static_cast<std::uintptr_t>(*p->dptr), p->bytesize, device_of(data), 0);
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuMemAllocAsync: {
      const auto* p = static_cast<const cuMemAllocAsync_params*>(params);
      record_segment(static_cast<std::uintptr_t>(*p->dptr), p->bytesize, device_of(data),
                     reinterpret_cast<std::uintptr_t>(p->hStream));
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuMemAllocFromPoolAsync: {
      const auto* p = static_cast<const cuMemAllocFromPoolAsync_params*>(params);
      record_segment(static_cast<std::uintptr_t>(*p->dptr), p->bytesize, device_of(data),
                     reinterpret_cast<std::uintptr_t>(p->hStream));
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuMemCreate: {
      const auto* p = static_cast<const cuMemCreate_params*>(params);
      const int device = p->prop != nullptr && p->prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE
                             ? p->prop->location.id
                             : kCpuDevice;
      record_segment(static_cast<std::uintptr_t>(*p->handle), p->size, device, 0);
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuMemFree_v2:
      release_segment(static_cast<std::uintptr_t>(static_cast<const cuMemFree_v2_params*>(params)->dptr));
      break;
    case CUPTI_DRIVER_TRACE_CBID_cuMemFreeAsync:
      release_segment(static_cast<std::uintptr_t>(static_cast<const cuMemFreeAsync_params*>(params)->dptr));
      break;
    case CUPTI_DRIVER_TRACE_CBID_cuMemRelease:
      release_segment(static_cast<std::uintptr_t>(static_cast<const cuMemRelease_params*>(params)->handle));
      break;
    default:  // map and unmap: enabled so that a later report can count them
      break;
  }
}

std::string describe(CUptiResult result) {
  const char* text = nullptr;
  cuptiGetResultString(result, &text);
  return text == nullptr ? "CUPTI error " + std::to_string(static_cast<int>(result)) : std::string(text);
}

}  // namespace

TrackingStatus start_memory_tracking() {
  std::lock_guard lock(g_mutex);
  if (g_subscriber != nullptr) return g_status;
  char holder[CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN] = {};
  CUpti_SubscriberParams params{};
  params.structSize = CUpti_SubscriberParams_STRUCT_SIZE;
  params.subscriberName = "oomguard";
  params.oldSubscriberName = holder;
  params.oldSubscriberSize = sizeof(holder);
  const CUptiResult subscribed = cuptiSubscribe_v2(&g_subscriber, &on_driver_call, nullptr, &params);
  if (subscribed == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) {
    g_subscriber = nullptr;
    g_status = {TrackingState::another_subscriber,
                std::string("oomguard: CUPTI is held by '") + (holder[0] != '\0' ? holder : "another tool") +
                    "' (torch.profiler, Nsight or similar); CUPTI memory tracking steps aside. Use the preload "
                    "library (oomguard run) to see non-PyTorch memory while profiling."};
    return g_status;
  }
  if (subscribed != CUPTI_SUCCESS) {
    g_subscriber = nullptr;
    g_status = {TrackingState::unavailable,
                "oomguard: CUPTI memory tracking unavailable (no GPU or driver?): " + describe(subscribed)};
    return g_status;
  }
  CUptiResult enabled = CUPTI_SUCCESS;
  for (CUpti_CallbackId id : kMemoryCallbacks) {
    enabled = cuptiEnableCallback(1, g_subscriber, CUPTI_CB_DOMAIN_DRIVER_API, id);
    if (enabled != CUPTI_SUCCESS) break;
  }
  if (enabled == CUPTI_SUCCESS) enabled = enable_memory_records();
  if (enabled != CUPTI_SUCCESS) {
    cuptiUnsubscribe(g_subscriber);
    g_subscriber = nullptr;
    g_status = {TrackingState::unavailable, "oomguard: cannot enable CUPTI memory callbacks: " + describe(enabled)};
    return g_status;
  }
  g_status = {TrackingState::active, "oomguard: CUPTI memory tracking active"};
  return g_status;
}

void stop_memory_tracking() {
  std::lock_guard lock(g_mutex);
  if (g_subscriber == nullptr) return;
  disable_memory_records();
  cuptiUnsubscribe(g_subscriber);
  g_subscriber = nullptr;
  g_status = {TrackingState::unavailable, "oomguard: CUPTI memory tracking stopped"};
}

TrackingStatus tracking_status() {
  std::lock_guard lock(g_mutex);
  return g_status;
}

}  // namespace oomguard::cupti
