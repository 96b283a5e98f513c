// CUDA graphs (graph.hpp): built by stream capture or by cuGraphAdd*Node,
// instantiated and launched; a launch counts the kernels of the graph's
// kernel nodes, once per node.
#include <cstdio>
#include <mutex>

#include "api.hpp"

using namespace oomguard::sim;

namespace {

CUresult instantiate(Driver& driver, CUgraphExec* exec_handle, CUgraph graph_handle) {
  if (!exec_handle) return CUDA_ERROR_INVALID_VALUE;
  Graph* graph = driver.graphs.find(graph_handle);
  if (!graph) return CUDA_ERROR_INVALID_VALUE;
  auto* exec = new GraphExec();
  Device* device = nullptr;
  if (current_device(device) == CUDA_SUCCESS) exec->device_ordinal = device->ordinal;
  {
    std::lock_guard lock(graph->mutex);
    exec->node_count = graph->nodes.size();
    for (const auto& node : graph->nodes) {
      if (node->type == CU_GRAPH_NODE_TYPE_KERNEL && node->kernel) exec->kernels.push_back(node->kernel);
    }
  }
  driver.graph_execs.add(exec);
  *exec_handle = reinterpret_cast<CUgraphExec>(exec);
  return CUDA_SUCCESS;
}

CUresult add_node(Driver& driver, CUgraphNode* node_handle, CUgraph graph_handle, const CUgraphNode* dependencies,
                  std::size_t count, CUgraphNodeType type, KernelRecord* kernel = nullptr) {
  if (!node_handle || (count != 0 && !dependencies)) return CUDA_ERROR_INVALID_VALUE;
  Graph* graph = driver.graphs.find(graph_handle);
  if (!graph) return CUDA_ERROR_INVALID_VALUE;
  for (std::size_t i = 0; i < count; ++i) {
    if (!driver.graph_nodes.find(dependencies[i])) return CUDA_ERROR_INVALID_VALUE;
  }
  GraphNode* node = nullptr;
  {
    std::lock_guard lock(graph->mutex);
    node = graph->add(type, dependencies, count);
    node->kernel = kernel;
  }
  driver.graph_nodes.add(node);
  *node_handle = reinterpret_cast<CUgraphNode>(node);
  return CUDA_SUCCESS;
}

}  // namespace

OOMGUARD_SIM_DRIVER_API CUresult cuGraphCreate(CUgraph* handle, unsigned int flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!handle || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  auto* graph = new Graph();
  driver->graphs.add(graph);
  *handle = reinterpret_cast<CUgraph>(graph);
  return CUDA_SUCCESS;
}

namespace oomguard::sim {

void destroy_graph(Driver& driver, Graph* graph) {
  driver.graphs.remove(graph);
  {
    std::lock_guard lock(graph->mutex);
    for (const auto& node : graph->nodes) driver.graph_nodes.remove(node.get());
  }
  delete graph;
}

}  // namespace oomguard::sim

OOMGUARD_SIM_DRIVER_API CUresult cuGraphDestroy(CUgraph handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Graph* graph = driver->graphs.find(handle);
  if (!graph) return CUDA_ERROR_INVALID_VALUE;
  destroy_graph(*driver, graph);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuGraphGetNodes(CUgraph handle, CUgraphNode* nodes, size_t* count) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  Graph* graph = driver->graphs.find(handle);
  if (!graph) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard lock(graph->mutex);
  if (nodes) {
    for (std::size_t i = 0; i < *count && i < graph->nodes.size(); ++i) {
      nodes[i] = reinterpret_cast<CUgraphNode>(graph->nodes[i].get());
    }
  }
  *count = graph->nodes.size();
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuGraphGetRootNodes(CUgraph handle, CUgraphNode* nodes, size_t* count) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  Graph* graph = driver->graphs.find(handle);
  if (!graph) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard lock(graph->mutex);
  std::size_t roots = 0;
  for (const auto& node : graph->nodes) {
    if (!node->dependencies.empty()) continue;
    if (nodes && roots < *count) nodes[roots] = reinterpret_cast<CUgraphNode>(node.get());
    ++roots;
  }
  *count = roots;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuGraphNodeGetDependencies_v2(CUgraphNode handle, CUgraphNode* dependencies,
                                                                CUgraphEdgeData* edge_data, size_t* count) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  GraphNode* node = driver->graph_nodes.find(handle);
  if (!node) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard lock(node->graph->mutex);
  const std::size_t total = node->dependencies.size();
  if (dependencies) {
    for (std::size_t i = 0; i < *count && i < total; ++i) {
      dependencies[i] = reinterpret_cast<CUgraphNode>(node->dependencies[i]);
      if (edge_data) edge_data[i] = CUgraphEdgeData{};
    }
    if (*count > total) {
      for (std::size_t i = total; i < *count; ++i) dependencies[i] = nullptr;
    }
  }
  *count = total;
  return CUDA_SUCCESS;
}

#undef cuGraphNodeGetDependencies
OOMGUARD_SIM_DRIVER_API CUresult cuGraphNodeGetDependencies(CUgraphNode handle, CUgraphNode* dependencies,
                                                             size_t* count) {
  return cuGraphNodeGetDependencies_v2(handle, dependencies, nullptr, count);
}

OOMGUARD_SIM_DRIVER_API CUresult cuGraphNodeGetType(CUgraphNode handle, CUgraphNodeType* type) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!type) return CUDA_ERROR_INVALID_VALUE;
  GraphNode* node = driver->graph_nodes.find(handle);
  if (!node) return CUDA_ERROR_INVALID_VALUE;
  *type = node->type;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuGraphAddEmptyNode(CUgraphNode* node, CUgraph graph, const CUgraphNode* dependencies,
                                                     size_t count) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  return add_node(*driver, node, graph, dependencies, count, CU_GRAPH_NODE_TYPE_EMPTY);
}

OOMGUARD_SIM_DRIVER_API CUresult cuGraphAddKernelNode_v2(CUgraphNode* node, CUgraph graph,
                                                         const CUgraphNode* dependencies, size_t count,
                                                         const CUDA_KERNEL_NODE_PARAMS* params) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!params) return CUDA_ERROR_INVALID_VALUE;
  Function* function = driver->functions.find(params->func);
  if (!function) return CUDA_ERROR_INVALID_HANDLE;
  return add_node(*driver, node, graph, dependencies, count, CU_GRAPH_NODE_TYPE_KERNEL, function->kernel);
}

OOMGUARD_SIM_DRIVER_API CUresult cuGraphAddHostNode(CUgraphNode* node, CUgraph graph, const CUgraphNode* dependencies,
                                                    size_t count, const CUDA_HOST_NODE_PARAMS* params) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!params || !params->fn) return CUDA_ERROR_INVALID_VALUE;
  return add_node(*driver, node, graph, dependencies, count, CU_GRAPH_NODE_TYPE_HOST);
}

OOMGUARD_SIM_DRIVER_API CUresult cuGraphAddEventRecordNode(CUgraphNode* node, CUgraph graph,
                                                           const CUgraphNode* dependencies, size_t count,
                                                           CUevent event) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!driver->events.find(event)) return CUDA_ERROR_INVALID_HANDLE;
  return add_node(*driver, node, graph, dependencies, count, CU_GRAPH_NODE_TYPE_EVENT_RECORD);
}

OOMGUARD_SIM_DRIVER_API CUresult cuGraphAddEventWaitNode(CUgraphNode* node, CUgraph graph,
                                                         const CUgraphNode* dependencies, size_t count, CUevent event) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!driver->events.find(event)) return CUDA_ERROR_INVALID_HANDLE;
  return add_node(*driver, node, graph, dependencies, count, CU_GRAPH_NODE_TYPE_WAIT_EVENT);
}

OOMGUARD_SIM_DRIVER_API CUresult cuGraphInstantiateWithFlags(CUgraphExec* exec, CUgraph graph,
                                                             unsigned long long flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  constexpr unsigned long long kKnown = CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH |
                                        CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD | CUDA_GRAPH_INSTANTIATE_FLAG_DEVICE_LAUNCH |
                                        CUDA_GRAPH_INSTANTIATE_FLAG_USE_NODE_PRIORITY;
  if ((flags & ~kKnown) != 0) return CUDA_ERROR_INVALID_VALUE;
  return instantiate(*driver, exec, graph);
}

OOMGUARD_SIM_DRIVER_API CUresult cuGraphInstantiateWithParams(CUgraphExec* exec, CUgraph graph,
                                                              CUDA_GRAPH_INSTANTIATE_PARAMS* params) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!params) return CUDA_ERROR_INVALID_VALUE;
  const CUresult r = instantiate(*driver, exec, graph);
  params->result_out = r == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS : CUDA_GRAPH_INSTANTIATE_ERROR;
  params->hErrNode_out = nullptr;
  return r;
}

OOMGUARD_SIM_DRIVER_API CUresult cuGraphExecDestroy(CUgraphExec handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  GraphExec* exec = driver->graph_execs.find(handle);
  if (!exec) return CUDA_ERROR_INVALID_VALUE;
  driver->graph_execs.remove(exec);
  delete exec;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuGraphLaunch(CUgraphExec handle, CUstream stream_handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  GraphExec* exec = driver->graph_execs.find(handle);
  if (!exec) return CUDA_ERROR_INVALID_VALUE;
  bool captured = false;
  if (CUresult r = stream_operation(*driver, stream_handle, CU_GRAPH_NODE_TYPE_GRAPH, captured); r != CUDA_SUCCESS) {
    return r;
  }
  if (captured) return CUDA_SUCCESS;
  for (KernelRecord* kernel : exec->kernels) kernel->launches.fetch_add(1, std::memory_order_relaxed);
  if (!exec->kernels.empty()) driver->copied_values.forget_all();  // Note [Copied values]
  ++exec->launches;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuGraphUpload(CUgraphExec handle, CUstream stream) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!driver->graph_execs.find(handle)) return CUDA_ERROR_INVALID_VALUE;
  Stream* resolved = nullptr;
  return resolve_stream(*driver, stream, resolved);
}

OOMGUARD_SIM_DRIVER_API CUresult cuGraphDebugDotPrint(CUgraph handle, const char* path, unsigned int flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  (void)flags;
  Graph* graph = driver->graphs.find(handle);
  if (!graph || !path) return CUDA_ERROR_INVALID_VALUE;
  std::FILE* file = std::fopen(path, "w");
  if (!file) return CUDA_ERROR_OPERATING_SYSTEM;
  std::lock_guard lock(graph->mutex);
  std::fprintf(file, "digraph simulated_cuda_graph {\n");
  for (const auto& node : graph->nodes) {
    std::fprintf(file, "  n%p [label=\"%s\"];\n", static_cast<void*>(node.get()),
                 node->kernel ? node->kernel->name.c_str() : "node");
    for (const GraphNode* dependency : node->dependencies) {
      std::fprintf(file, "  n%p -> n%p;\n", static_cast<const void*>(dependency), static_cast<void*>(node.get()));
    }
  }
  std::fprintf(file, "}\n");
  std::fclose(file);
  return CUDA_SUCCESS;
}

// Graph memory is drawn from the device's pools here (Note [Pools]), so
// there is no separate graph memory to trim or to report.
OOMGUARD_SIM_DRIVER_API CUresult cuDeviceGraphMemTrim(CUdevice ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  return driver->device(ordinal) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceGetGraphMemAttribute(CUdevice ordinal, CUgraphMem_attribute attribute,
                                                              void* value) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!driver->device(ordinal)) return CUDA_ERROR_INVALID_DEVICE;
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  (void)attribute;
  *static_cast<cuuint64_t*>(value) = 0;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceSetGraphMemAttribute(CUdevice ordinal, CUgraphMem_attribute attribute,
                                                              void* value) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!driver->device(ordinal)) return CUDA_ERROR_INVALID_DEVICE;
  (void)attribute;
  return value ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

#undef cuGraphInstantiate
OOMGUARD_SIM_DRIVER_API CUresult cuGraphInstantiate_v2(CUgraphExec* exec, CUgraph graph, CUgraphNode* error_node,
                                                       char* log, size_t log_size) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (error_node) *error_node = nullptr;
  if (log && log_size > 0) log[0] = '\0';
  return instantiate(*driver, exec, graph);
}

OOMGUARD_SIM_ALIAS(cuGraphInstantiate, cuGraphInstantiate_v2)
OOMGUARD_SIM_ALIAS(cuGraphInstantiateWithParams_ptsz, cuGraphInstantiateWithParams)
OOMGUARD_SIM_ALIAS(cuGraphLaunch_ptsz, cuGraphLaunch)
OOMGUARD_SIM_ALIAS(cuGraphUpload_ptsz, cuGraphUpload)
