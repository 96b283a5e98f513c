// Events. Work completes before its call returns, so a recorded event is
// complete at once; its time is the host's steady clock at the record,
// which is when the (instant) work before it finished.
#include <chrono>
#include <mutex>

#include "api.hpp"

using namespace oomguard::sim;

OOMGUARD_SIM_DRIVER_API CUresult cuEventCreate(CUevent* handle, unsigned int flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  constexpr unsigned kKnown = CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;
  if ((flags & ~kKnown) != 0) return CUDA_ERROR_INVALID_VALUE;
  if ((flags & CU_EVENT_INTERPROCESS) && !(flags & CU_EVENT_DISABLE_TIMING)) return CUDA_ERROR_INVALID_VALUE;
  Device* device = nullptr;
  if (CUresult r = current_device(device); r != CUDA_SUCCESS) return r;
  auto* event = new Event();
  event->device = device;
  event->flags = flags;
  driver->events.add(event);
  *handle = reinterpret_cast<CUevent>(event);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuEventDestroy_v2(CUevent handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Event* event = driver->events.find(handle);
  if (!event) return CUDA_ERROR_INVALID_HANDLE;
  driver->events.remove(event);
  // Kept, not deleted (see cuStreamDestroy_v2).
  return CUDA_SUCCESS;
}
#undef cuEventDestroy
OOMGUARD_SIM_ALIAS(cuEventDestroy, cuEventDestroy_v2)

OOMGUARD_SIM_DRIVER_API CUresult cuEventRecordWithFlags(CUevent handle, CUstream stream_handle, unsigned int flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if ((flags & ~static_cast<unsigned>(CU_EVENT_RECORD_EXTERNAL)) != 0) return CUDA_ERROR_INVALID_VALUE;
  Event* event = driver->events.find(handle);
  if (!event) return CUDA_ERROR_INVALID_HANDLE;
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(*driver, stream_handle, stream); r != CUDA_SUCCESS) return r;
  if (Capture* capture = stream->capture.load(std::memory_order_acquire)) {
    // Note [Stream capture]: the event now stands for the capture's tail.
    std::vector<GraphNode*> nodes;
    {
      std::lock_guard lock(capture->mutex);
      if (capture->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
      nodes = stream->capture_dependencies;
    }
    std::lock_guard lock(event->mutex);
    event->capture = capture;
    event->capture_nodes = std::move(nodes);
    return CUDA_SUCCESS;
  }
  std::lock_guard lock(event->mutex);
  event->recorded = true;
  event->when = std::chrono::steady_clock::now();
  event->capture = nullptr;
  event->capture_nodes.clear();
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuEventRecord(CUevent handle, CUstream stream) {
  return cuEventRecordWithFlags(handle, stream, 0);
}

OOMGUARD_SIM_DRIVER_API CUresult cuEventQuery(CUevent handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Event* event = driver->events.find(handle);
  if (!event) return CUDA_ERROR_INVALID_HANDLE;
  std::lock_guard lock(event->mutex);
  // An event recorded inside a capture is not complete until a launch of
  // the graph, which is never pending here either.
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuEventSynchronize(CUevent handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Event* event = driver->events.find(handle);
  if (!event) return CUDA_ERROR_INVALID_HANDLE;
  synchronize_device(*event->device);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuEventElapsedTime_v2(float* milliseconds, CUevent start_handle, CUevent end_handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!milliseconds) return CUDA_ERROR_INVALID_VALUE;
  Event* start = driver->events.find(start_handle);
  Event* end = driver->events.find(end_handle);
  if (!start || !end) return CUDA_ERROR_INVALID_HANDLE;
  std::chrono::steady_clock::time_point start_time;
  std::chrono::steady_clock::time_point end_time;
  {
    std::lock_guard lock(start->mutex);
    if (!start->recorded || (start->flags & CU_EVENT_DISABLE_TIMING)) return CUDA_ERROR_INVALID_HANDLE;
    start_time = start->when;
  }
  {
    std::lock_guard lock(end->mutex);
    if (!end->recorded || (end->flags & CU_EVENT_DISABLE_TIMING)) return CUDA_ERROR_INVALID_HANDLE;
    end_time = end->when;
  }
  *milliseconds = std::chrono::duration<float, std::milli>(end_time - start_time).count();
  return CUDA_SUCCESS;
}
#undef cuEventElapsedTime
OOMGUARD_SIM_ALIAS(cuEventElapsedTime, cuEventElapsedTime_v2)

OOMGUARD_SIM_ALIAS(cuEventRecord_ptsz, cuEventRecord)
OOMGUARD_SIM_ALIAS(cuEventRecordWithFlags_ptsz, cuEventRecordWithFlags)
