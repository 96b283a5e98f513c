// CUDA graphs, as far as torch's CUDA graphs and the caching allocator's
// private pools need them: nodes are recorded (by stream capture or by
// cuGraphAdd*Node), counted and replayed by cuGraphLaunch as kernel-launch
// counts; nothing runs.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace oomguard::sim {

struct KernelRecord;
struct Graph;

struct GraphNode {
  Graph* graph;
  CUgraphNodeType type;
  KernelRecord* kernel = nullptr;  // kernel nodes
  CUdeviceptr address = 0;         // memory alloc/free nodes
  std::size_t bytes = 0;
  std::vector<GraphNode*> dependencies;
};

struct Graph {
  std::mutex mutex;  // guards nodes
  std::vector<std::unique_ptr<GraphNode>> nodes;

  // With `mutex` held.
  GraphNode* add(CUgraphNodeType type, const CUgraphNode* dependencies, std::size_t count);
};

// An instantiated graph: what a launch replays.
struct GraphExec {
  int device_ordinal = 0;
  std::vector<KernelRecord*> kernels;  // one entry per kernel node
  std::size_t node_count = 0;
  std::uint64_t launches = 0;
};

}  // namespace oomguard::sim
