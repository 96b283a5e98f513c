#include "graph.hpp"

namespace oomguard::sim {

GraphNode* Graph::add(CUgraphNodeType type, const CUgraphNode* dependencies, std::size_t count) {
  auto node = std::make_unique<GraphNode>();
  node->graph = this;
  node->type = type;
  for (std::size_t i = 0; i < count; ++i) node->dependencies.push_back(reinterpret_cast<GraphNode*>(dependencies[i]));
  nodes.push_back(std::move(node));
  return nodes.back().get();
}

}  // namespace oomguard::sim
