// Stream capture and CUDA graphs: the driver's (Note [Stream capture] in
// the driver); handles and enumerations are shared with the driver API.
#include "runtime.hpp"

using namespace oomguard::sim::runtime;

static_assert(static_cast<int>(cudaStreamCaptureModeRelaxed) == static_cast<int>(CU_STREAM_CAPTURE_MODE_RELAXED));
static_assert(static_cast<int>(cudaStreamCaptureStatusInvalidated) ==
              static_cast<int>(CU_STREAM_CAPTURE_STATUS_INVALIDATED));
static_assert(sizeof(cudaGraphEdgeData) == sizeof(CUgraphEdgeData));

// ----------------------------------------------------------------- capture

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuStreamBeginCapture(stream, static_cast<CUstreamCaptureMode>(mode)));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamBeginCaptureToGraph(cudaStream_t stream, cudaGraph_t graph,
                                                                   const cudaGraphNode_t* dependencies,
                                                                   const cudaGraphEdgeData* edges,
                                                                   std::size_t count, cudaStreamCaptureMode mode) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuStreamBeginCaptureToGraph(stream, graph, dependencies, reinterpret_cast<const CUgraphEdgeData*>(edges),
                                           count, static_cast<CUstreamCaptureMode>(mode)));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (!graph) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuStreamEndCapture(stream, graph));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  if (!status) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUstreamCaptureStatus driver_status = CU_STREAM_CAPTURE_STATUS_NONE;
  const cudaError_t error = check(cuStreamIsCapturing(stream, &driver_status));
  if (error == cudaSuccess) *status = static_cast<cudaStreamCaptureStatus>(driver_status);
  return error;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamGetCaptureInfo(cudaStream_t stream, cudaStreamCaptureStatus* status,
                                                              unsigned long long* id, cudaGraph_t* graph,
                                                              const cudaGraphNode_t** dependencies,
                                                              const cudaGraphEdgeData** edges, std::size_t* count) {
  if (!status) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUstreamCaptureStatus driver_status = CU_STREAM_CAPTURE_STATUS_NONE;
  cuuint64_t driver_id = 0;
  const cudaError_t error =
      check(cuStreamGetCaptureInfo(stream, &driver_status, &driver_id, graph, dependencies,
                                   reinterpret_cast<const CUgraphEdgeData**>(edges), count));
  if (error == cudaSuccess) {
    *status = static_cast<cudaStreamCaptureStatus>(driver_status);
    if (id) *id = driver_id;
  }
  return error;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamUpdateCaptureDependencies(cudaStream_t stream,
                                                                         cudaGraphNode_t* dependencies,
                                                                         const cudaGraphEdgeData* edges,
                                                                         std::size_t count, unsigned int flags) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuStreamUpdateCaptureDependencies(stream, dependencies,
                                                 reinterpret_cast<const CUgraphEdgeData*>(edges), count, flags));
}

// Per thread, in the driver: needs no context.
OOMGUARD_SIM_RUNTIME_API cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode* mode) {
  if (!mode) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = initialize(); error != cudaSuccess) return fail(error);
  auto driver_mode = static_cast<CUstreamCaptureMode>(*mode);
  const cudaError_t error = check(cuThreadExchangeStreamCaptureMode(&driver_mode));
  if (error == cudaSuccess) *mode = static_cast<cudaStreamCaptureMode>(driver_mode);
  return error;
}

// ------------------------------------------------------------------ graphs

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGraphCreate(cudaGraph_t* graph, unsigned int flags) {
  if (!graph) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuGraphCreate(graph, flags));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuGraphDestroy(graph));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t* exec, cudaGraph_t graph,
                                                                   unsigned long long flags) {
  if (!exec) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuGraphInstantiateWithFlags(exec, graph, flags));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph,
                                                          unsigned long long flags) {
  return cudaGraphInstantiateWithFlags(exec, graph, flags);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuGraphLaunch(exec, stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGraphUpload(cudaGraphExec_t exec, cudaStream_t stream) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuGraphUpload(exec, stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuGraphExecDestroy(exec));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes,
                                                       std::size_t* count) {
  if (!count) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuGraphGetNodes(graph, nodes, count));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGraphGetRootNodes(cudaGraph_t graph, cudaGraphNode_t* nodes,
                                                           std::size_t* count) {
  if (!count) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuGraphGetRootNodes(graph, nodes, count));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGraphNodeGetDependencies(cudaGraphNode_t node, cudaGraphNode_t* dependencies,
                                                                  cudaGraphEdgeData* edges, std::size_t* count) {
  if (!count) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuGraphNodeGetDependencies(node, dependencies, reinterpret_cast<CUgraphEdgeData*>(edges), count));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGraphNodeGetType(cudaGraphNode_t node, cudaGraphNodeType* type) {
  if (!type) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUgraphNodeType driver_type = CU_GRAPH_NODE_TYPE_EMPTY;
  const cudaError_t error = check(cuGraphNodeGetType(node, &driver_type));
  if (error == cudaSuccess) *type = static_cast<cudaGraphNodeType>(driver_type);
  return error;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGraphAddEmptyNode(cudaGraphNode_t* node, cudaGraph_t graph,
                                                           const cudaGraphNode_t* dependencies, std::size_t count) {
  if (!node) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuGraphAddEmptyNode(node, graph, dependencies, count));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGraphDebugDotPrint(cudaGraph_t graph, const char* path, unsigned int flags) {
  if (!path) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuGraphDebugDotPrint(graph, path, flags));
}
