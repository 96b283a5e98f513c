// Streams, host functions and stream capture (Note [Stream capture]).
#include <algorithm>
#include <mutex>

#include "api.hpp"
#include "log.hpp"

using namespace oomguard::sim;

namespace oomguard::sim {

CUresult resolve_stream(Driver& driver, CUstream handle, Stream*& stream) {
  if (handle == nullptr || handle == CU_STREAM_LEGACY || handle == CU_STREAM_PER_THREAD) {
    Device* device = nullptr;
    if (CUresult r = current_device(device); r != CUDA_SUCCESS) return r;
    stream = handle == CU_STREAM_PER_THREAD ? device->per_thread_stream : device->legacy_stream;
    return CUDA_SUCCESS;
  }
  stream = driver.streams.find(handle);
  return stream ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

namespace {

void invalidate(Capture& capture) {
  std::lock_guard lock(capture.mutex);
  capture.invalidated = true;
}

}  // namespace

CUresult check_capture_safe(Driver& driver) {
  if (driver.active_captures.load(std::memory_order_acquire) == 0) return CUDA_SUCCESS;
  const CUstreamCaptureMode mode = this_thread().capture_mode;
  if (mode == CU_STREAM_CAPTURE_MODE_RELAXED) return CUDA_SUCCESS;
  const auto me = std::this_thread::get_id();
  std::lock_guard lock(driver.captures_mutex);
  for (Capture* capture : driver.captures) {
    const bool mine = capture->thread == me && capture->mode != CU_STREAM_CAPTURE_MODE_RELAXED;
    const bool global_elsewhere = mode == CU_STREAM_CAPTURE_MODE_GLOBAL && capture->mode == CU_STREAM_CAPTURE_MODE_GLOBAL;
    if (mine || global_elsewhere) {
      invalidate(*capture);
      oomguard_sim_log(1, "driver: a call not permitted while a stream is capturing invalidated capture %llu",
                       static_cast<unsigned long long>(capture->id));
      return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
  }
  return CUDA_SUCCESS;
}

CUresult stream_operation(Driver& driver, CUstream handle, CUgraphNodeType type, bool& captured,
                          KernelRecord* kernel, GraphNode** node_out) {
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(driver, handle, stream); r != CUDA_SUCCESS) return r;
  captured = false;
  Capture* capture = stream->capture.load(std::memory_order_acquire);
  if (!capture) return CUDA_SUCCESS;
  std::lock_guard lock(capture->mutex);
  if (capture->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  GraphNode* node = nullptr;
  {
    std::lock_guard graph_lock(capture->graph->mutex);
    node = capture->graph->add(type, reinterpret_cast<const CUgraphNode*>(stream->capture_dependencies.data()),
                               stream->capture_dependencies.size());
  }
  node->kernel = kernel;
  driver.graph_nodes.add(node);
  stream->capture_dependencies.assign(1, node);
  captured = true;
  if (node_out) *node_out = node;
  return CUDA_SUCCESS;
}

void synchronize_device(Device& device) {
  std::vector<MemoryPool*> pools;
  {
    std::lock_guard lock(device.mutex);
    pools = device.pools;
  }
  for (MemoryPool* pool : pools) pool->on_synchronize();
}

}  // namespace oomguard::sim

namespace {

CUresult create_stream(CUstream* handle, unsigned flags, int priority) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  if ((flags & ~static_cast<unsigned>(CU_STREAM_NON_BLOCKING)) != 0) return CUDA_ERROR_INVALID_VALUE;
  Context* context = nullptr;
  if (CUresult r = current_context(context); r != CUDA_SUCCESS) return r;
  auto* stream = new Stream();
  stream->device = context->device;
  stream->context = context;
  stream->flags = flags;
  stream->priority = std::clamp(priority, -5, 0);  // cuCtxGetStreamPriorityRange
  stream->id = driver->next_stream_id.fetch_add(1);
  driver->streams.add(stream);
  *handle = reinterpret_cast<CUstream>(stream);
  return CUDA_SUCCESS;
}

// Ends `capture`: detaches its streams and forgets it. With no lock held.
void finish_capture(Driver& driver, Capture& capture) {
  {
    std::lock_guard lock(capture.mutex);
    capture.ended = true;
    for (Stream* stream : capture.streams) {
      stream->capture.store(nullptr, std::memory_order_release);
      stream->capture_dependencies.clear();
    }
  }
  std::lock_guard lock(driver.captures_mutex);
  std::erase(driver.captures, &capture);
  driver.active_captures.fetch_sub(1, std::memory_order_acq_rel);
}

}  // namespace

OOMGUARD_SIM_DRIVER_API CUresult cuStreamCreate(CUstream* handle, unsigned int flags) {
  return create_stream(handle, flags, 0);
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamCreateWithPriority(CUstream* handle, unsigned int flags, int priority) {
  return create_stream(handle, flags, priority);
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamDestroy_v2(CUstream handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Stream* stream = driver->streams.find(handle);
  if (!stream || stream->is_default) return CUDA_ERROR_INVALID_HANDLE;
  if (stream->capture.load()) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  driver->streams.remove(stream);
  // Kept, not deleted: another thread's stale handle must fail its registry
  // lookup, not read freed memory (a Stream is a few dozen bytes).
  return CUDA_SUCCESS;
}
#undef cuStreamDestroy
OOMGUARD_SIM_ALIAS(cuStreamDestroy, cuStreamDestroy_v2)

namespace {

// The stream getters: resolve the handle, write one property of it.
template <typename T, typename Read>
CUresult stream_property(CUstream handle, T* out, Read read) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(*driver, handle, stream); r != CUDA_SUCCESS) return r;
  *out = read(*stream);
  return CUDA_SUCCESS;
}

}  // namespace

OOMGUARD_SIM_DRIVER_API CUresult cuStreamGetPriority(CUstream handle, int* priority) {
  return stream_property(handle, priority, [](const Stream& s) { return s.priority; });
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamGetFlags(CUstream handle, unsigned int* flags) {
  return stream_property(handle, flags, [](const Stream& s) { return s.flags; });
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamGetId(CUstream handle, unsigned long long* id) {
  return stream_property(handle, id, [](const Stream& s) { return static_cast<unsigned long long>(s.id); });
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamGetDevice(CUstream handle, CUdevice* ordinal) {
  return stream_property(handle, ordinal, [](const Stream& s) { return static_cast<CUdevice>(s.device->ordinal); });
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamGetCtx(CUstream handle, CUcontext* context) {
  return stream_property(handle, context, [](const Stream& s) { return reinterpret_cast<CUcontext>(s.context); });
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamQuery(CUstream handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(*driver, handle, stream); r != CUDA_SUCCESS) return r;
  if (Capture* capture = stream->capture.load()) {
    invalidate(*capture);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamSynchronize(CUstream handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(*driver, handle, stream); r != CUDA_SUCCESS) return r;
  if (Capture* capture = stream->capture.load()) {
    invalidate(*capture);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  if (stream->is_default) {
    if (CUresult r = check_capture_safe(*driver); r != CUDA_SUCCESS) return r;
  }
  synchronize_device(*stream->device);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamWaitEvent(CUstream handle, CUevent event_handle, unsigned int flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if ((flags & ~static_cast<unsigned>(CU_EVENT_WAIT_EXTERNAL)) != 0) return CUDA_ERROR_INVALID_VALUE;
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(*driver, handle, stream); r != CUDA_SUCCESS) return r;
  Event* event = driver->events.find(event_handle);
  if (!event) return CUDA_ERROR_INVALID_HANDLE;
  Capture* capture = nullptr;
  std::vector<GraphNode*> nodes;
  {
    std::lock_guard lock(event->mutex);
    capture = event->capture;
    nodes = event->capture_nodes;
  }
  if (!capture) return CUDA_SUCCESS;  // completed work: nothing to wait for
  // Note [Stream capture]: waiting on an event of a capture joins it.
  std::lock_guard lock(capture->mutex);
  if (capture->ended) return CUDA_SUCCESS;  // recorded in a finished capture: nothing to wait for
  if (capture->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  Capture* current = stream->capture.load();
  if (current && current != capture) return CUDA_ERROR_STREAM_CAPTURE_ISOLATION;
  if (!current) {
    if (stream->is_default) return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
    stream->capture.store(capture, std::memory_order_release);
    capture->streams.push_back(stream);
    stream->capture_dependencies = nodes;
  } else {
    for (GraphNode* node : nodes) {
      if (std::find(stream->capture_dependencies.begin(), stream->capture_dependencies.end(), node) ==
          stream->capture_dependencies.end()) {
        stream->capture_dependencies.push_back(node);
      }
    }
  }
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamWaitEvent_ptsz(CUstream handle, CUevent event, unsigned int flags) {
  return cuStreamWaitEvent(handle, event, flags);
}

OOMGUARD_SIM_DRIVER_API CUresult cuLaunchHostFunc(CUstream handle, CUhostFn function, void* data) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!function) return CUDA_ERROR_INVALID_VALUE;
  bool captured = false;
  if (CUresult r = stream_operation(*driver, handle, CU_GRAPH_NODE_TYPE_HOST, captured); r != CUDA_SUCCESS) return r;
  // Everything before it on the stream is done, so it may run now.
  if (!captured) function(data);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamAddCallback(CUstream handle, CUstreamCallback callback, void* data,
                                                     unsigned int flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!callback || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(*driver, handle, stream); r != CUDA_SUCCESS) return r;
  if (stream->capture.load()) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;  // as on a GPU
  callback(handle, CUDA_SUCCESS, data);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamGetAttribute(CUstream handle, CUstreamAttrID attribute,
                                                      CUstreamAttrValue* value) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(*driver, handle, stream); r != CUDA_SUCCESS) return r;
  *value = CUstreamAttrValue{};
  if (attribute == CU_LAUNCH_ATTRIBUTE_PRIORITY) value->priority = stream->priority;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamSetAttribute(CUstream handle, CUstreamAttrID attribute,
                                                      const CUstreamAttrValue* value) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(*driver, handle, stream); r != CUDA_SUCCESS) return r;
  if (attribute == CU_LAUNCH_ATTRIBUTE_PRIORITY) stream->priority = std::clamp(value->priority, -5, 0);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamCopyAttributes(CUstream destination, CUstream source) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Stream* to = nullptr;
  Stream* from = nullptr;
  if (CUresult r = resolve_stream(*driver, destination, to); r != CUDA_SUCCESS) return r;
  if (CUresult r = resolve_stream(*driver, source, from); r != CUDA_SUCCESS) return r;
  to->priority = from->priority;
  return CUDA_SUCCESS;
}

// Stream memory operations: the value would be written or waited for by
// the GPU; with nothing queued, both are done at once (a write to device
// memory has nowhere to go).
OOMGUARD_SIM_DRIVER_API CUresult cuStreamWriteValue32_v2(CUstream handle, CUdeviceptr address, cuuint32_t value,
                                                         unsigned int flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  (void)value;
  (void)flags;
  if (address == 0) return CUDA_ERROR_INVALID_VALUE;
  bool captured = false;
  return stream_operation(*driver, handle, CU_GRAPH_NODE_TYPE_BATCH_MEM_OP, captured);
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamWriteValue64_v2(CUstream handle, CUdeviceptr address, cuuint64_t value,
                                                         unsigned int flags) {
  return cuStreamWriteValue32_v2(handle, address, static_cast<cuuint32_t>(value), flags);
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamWaitValue32_v2(CUstream handle, CUdeviceptr address, cuuint32_t value,
                                                        unsigned int flags) {
  return cuStreamWriteValue32_v2(handle, address, value, flags);
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamWaitValue64_v2(CUstream handle, CUdeviceptr address, cuuint64_t value,
                                                        unsigned int flags) {
  return cuStreamWriteValue32_v2(handle, address, static_cast<cuuint32_t>(value), flags);
}

// ---- capture

namespace {

// Begins a capture of `handle` into `graph` (new if null), its first
// operations depending on `dependencies`.
CUresult begin_capture(Driver* driver, CUstream handle, Graph* graph, const CUgraphNode* dependencies,
                       std::size_t count, CUstreamCaptureMode mode) {
  if (mode != CU_STREAM_CAPTURE_MODE_GLOBAL && mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
      mode != CU_STREAM_CAPTURE_MODE_RELAXED) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(*driver, handle, stream); r != CUDA_SUCCESS) return r;
  if (stream == stream->device->legacy_stream) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  if (stream->capture.load()) return CUDA_ERROR_ILLEGAL_STATE;
  for (std::size_t i = 0; i < count; ++i) {
    if (!driver->graph_nodes.find(dependencies[i])) return CUDA_ERROR_INVALID_VALUE;
  }
  if (!graph) {
    graph = new Graph();
    driver->graphs.add(graph);
  }
  // Never freed: events recorded in it may name it long after it ended.
  auto* capture = new Capture();
  capture->id = driver->next_capture_id.fetch_add(1);
  capture->graph = graph;
  capture->mode = mode;
  capture->thread = std::this_thread::get_id();
  capture->streams.push_back(stream);
  {
    std::lock_guard lock(driver->captures_mutex);
    driver->captures.push_back(capture);
    driver->active_captures.fetch_add(1, std::memory_order_acq_rel);
  }
  stream->capture_dependencies.clear();
  for (std::size_t i = 0; i < count; ++i) {
    stream->capture_dependencies.push_back(reinterpret_cast<GraphNode*>(dependencies[i]));
  }
  stream->capture.store(capture, std::memory_order_release);
  return CUDA_SUCCESS;
}

}  // namespace

OOMGUARD_SIM_DRIVER_API CUresult cuStreamBeginCapture_v2(CUstream handle, CUstreamCaptureMode mode) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  return begin_capture(driver, handle, nullptr, nullptr, 0, mode);
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamBeginCaptureToGraph(CUstream handle, CUgraph graph_handle,
                                                             const CUgraphNode* dependencies,
                                                             const CUgraphEdgeData* edge_data, size_t count,
                                                             CUstreamCaptureMode mode) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  (void)edge_data;
  Graph* graph = driver->graphs.find(graph_handle);
  if (!graph || (count != 0 && !dependencies)) return CUDA_ERROR_INVALID_VALUE;
  return begin_capture(driver, handle, graph, dependencies, count, mode);
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamBeginCapture_ptsz(CUstream handle) {
  return cuStreamBeginCapture_v2(handle, CU_STREAM_CAPTURE_MODE_GLOBAL);
}
#undef cuStreamBeginCapture
OOMGUARD_SIM_DRIVER_API CUresult cuStreamBeginCapture(CUstream handle) {
  return cuStreamBeginCapture_v2(handle, CU_STREAM_CAPTURE_MODE_GLOBAL);
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamEndCapture(CUstream handle, CUgraph* graph) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!graph) return CUDA_ERROR_INVALID_VALUE;
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(*driver, handle, stream); r != CUDA_SUCCESS) return r;
  Capture* capture = stream->capture.load();
  if (!capture) return CUDA_ERROR_ILLEGAL_STATE;
  bool invalidated = false;
  {
    std::lock_guard lock(capture->mutex);
    if (capture->streams.front() != stream) return CUDA_ERROR_STREAM_CAPTURE_UNMATCHED;
    if (capture->mode == CU_STREAM_CAPTURE_MODE_THREAD_LOCAL && capture->thread != std::this_thread::get_id()) {
      return CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
    }
    invalidated = capture->invalidated;
  }
  finish_capture(*driver, *capture);
  if (invalidated) {
    destroy_graph(*driver, capture->graph);
    *graph = nullptr;
    return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  *graph = reinterpret_cast<CUgraph>(capture->graph);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamIsCapturing(CUstream handle, CUstreamCaptureStatus* status) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!status) return CUDA_ERROR_INVALID_VALUE;
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(*driver, handle, stream); r != CUDA_SUCCESS) return r;
  Capture* capture = stream->capture.load();
  if (!capture) {
    *status = CU_STREAM_CAPTURE_STATUS_NONE;
    return CUDA_SUCCESS;
  }
  std::lock_guard lock(capture->mutex);
  *status = capture->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED : CU_STREAM_CAPTURE_STATUS_ACTIVE;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamGetCaptureInfo_v3(CUstream handle, CUstreamCaptureStatus* status,
                                                           cuuint64_t* id, CUgraph* graph,
                                                           const CUgraphNode** dependencies,
                                                           const CUgraphEdgeData** edge_data, size_t* count) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!status) return CUDA_ERROR_INVALID_VALUE;
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(*driver, handle, stream); r != CUDA_SUCCESS) return r;
  Capture* capture = stream->capture.load();
  if (edge_data) *edge_data = nullptr;
  if (!capture) {
    *status = CU_STREAM_CAPTURE_STATUS_NONE;
    if (count) *count = 0;
    if (dependencies) *dependencies = nullptr;
    return CUDA_SUCCESS;
  }
  std::lock_guard lock(capture->mutex);
  *status = capture->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED : CU_STREAM_CAPTURE_STATUS_ACTIVE;
  if (id) *id = capture->id;
  if (graph) *graph = reinterpret_cast<CUgraph>(capture->graph);
  // The array stays valid until the stream's next captured operation, as
  // the real driver promises.
  if (dependencies) *dependencies = reinterpret_cast<const CUgraphNode*>(stream->capture_dependencies.data());
  if (count) *count = stream->capture_dependencies.size();
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamGetCaptureInfo_v2(CUstream handle, CUstreamCaptureStatus* status,
                                                           cuuint64_t* id, CUgraph* graph,
                                                           const CUgraphNode** dependencies, size_t* count) {
  return cuStreamGetCaptureInfo_v3(handle, status, id, graph, dependencies, nullptr, count);
}

OOMGUARD_SIM_DRIVER_API CUresult cuStreamUpdateCaptureDependencies_v2(CUstream handle, CUgraphNode* dependencies,
                                                                      const CUgraphEdgeData* edge_data, size_t count,
                                                                      unsigned int flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  (void)edge_data;
  if (flags != CU_STREAM_ADD_CAPTURE_DEPENDENCIES && flags != CU_STREAM_SET_CAPTURE_DEPENDENCIES) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (count != 0 && !dependencies) return CUDA_ERROR_INVALID_VALUE;
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(*driver, handle, stream); r != CUDA_SUCCESS) return r;
  Capture* capture = stream->capture.load();
  if (!capture) return CUDA_ERROR_ILLEGAL_STATE;
  for (std::size_t i = 0; i < count; ++i) {
    if (!driver->graph_nodes.find(dependencies[i])) return CUDA_ERROR_INVALID_VALUE;
  }
  std::lock_guard lock(capture->mutex);
  if (flags == CU_STREAM_SET_CAPTURE_DEPENDENCIES) stream->capture_dependencies.clear();
  for (std::size_t i = 0; i < count; ++i) {
    stream->capture_dependencies.push_back(reinterpret_cast<GraphNode*>(dependencies[i]));
  }
  return CUDA_SUCCESS;
}

#undef cuStreamUpdateCaptureDependencies
OOMGUARD_SIM_DRIVER_API CUresult cuStreamUpdateCaptureDependencies(CUstream handle, CUgraphNode* dependencies,
                                                                   size_t count, unsigned int flags) {
  return cuStreamUpdateCaptureDependencies_v2(handle, dependencies, nullptr, count, flags);
}

OOMGUARD_SIM_DRIVER_API CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!mode) return CUDA_ERROR_INVALID_VALUE;
  if (*mode != CU_STREAM_CAPTURE_MODE_GLOBAL && *mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
      *mode != CU_STREAM_CAPTURE_MODE_RELAXED) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  std::swap(*mode, this_thread().capture_mode);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_ALIAS(cuStreamWriteValue32_v2_ptsz, cuStreamWriteValue32_v2)
OOMGUARD_SIM_ALIAS(cuStreamWriteValue64_v2_ptsz, cuStreamWriteValue64_v2)
OOMGUARD_SIM_ALIAS(cuStreamWaitValue32_v2_ptsz, cuStreamWaitValue32_v2)
OOMGUARD_SIM_ALIAS(cuStreamWaitValue64_v2_ptsz, cuStreamWaitValue64_v2)
OOMGUARD_SIM_ALIAS(cuStreamGetPriority_ptsz, cuStreamGetPriority)
OOMGUARD_SIM_ALIAS(cuStreamGetFlags_ptsz, cuStreamGetFlags)
OOMGUARD_SIM_ALIAS(cuStreamGetId_ptsz, cuStreamGetId)
OOMGUARD_SIM_ALIAS(cuStreamGetDevice_ptsz, cuStreamGetDevice)
OOMGUARD_SIM_ALIAS(cuStreamGetCtx_ptsz, cuStreamGetCtx)
OOMGUARD_SIM_ALIAS(cuStreamQuery_ptsz, cuStreamQuery)
OOMGUARD_SIM_ALIAS(cuStreamSynchronize_ptsz, cuStreamSynchronize)
OOMGUARD_SIM_ALIAS(cuLaunchHostFunc_ptsz, cuLaunchHostFunc)
OOMGUARD_SIM_ALIAS(cuStreamAddCallback_ptsz, cuStreamAddCallback)
OOMGUARD_SIM_ALIAS(cuStreamGetAttribute_ptsz, cuStreamGetAttribute)
OOMGUARD_SIM_ALIAS(cuStreamSetAttribute_ptsz, cuStreamSetAttribute)
OOMGUARD_SIM_ALIAS(cuStreamCopyAttributes_ptsz, cuStreamCopyAttributes)
OOMGUARD_SIM_ALIAS(cuStreamBeginCapture_v2_ptsz, cuStreamBeginCapture_v2)
OOMGUARD_SIM_ALIAS(cuStreamBeginCaptureToGraph_ptsz, cuStreamBeginCaptureToGraph)
OOMGUARD_SIM_ALIAS(cuStreamEndCapture_ptsz, cuStreamEndCapture)
OOMGUARD_SIM_ALIAS(cuStreamIsCapturing_ptsz, cuStreamIsCapturing)
OOMGUARD_SIM_ALIAS(cuStreamGetCaptureInfo_v3_ptsz, cuStreamGetCaptureInfo_v3)
OOMGUARD_SIM_ALIAS(cuStreamGetCaptureInfo_v2_ptsz, cuStreamGetCaptureInfo_v2)
OOMGUARD_SIM_ALIAS(cuStreamUpdateCaptureDependencies_v2_ptsz, cuStreamUpdateCaptureDependencies_v2)
OOMGUARD_SIM_ALIAS(cuStreamUpdateCaptureDependencies_ptsz, cuStreamUpdateCaptureDependencies)
