#include "launch.hpp"

#include <algorithm>

#include "api.hpp"

namespace oomguard::sim {

CUresult launch(Driver& driver, KernelRecord* kernel, std::array<unsigned, 3> grid, std::array<unsigned, 3> block,
                std::size_t shared_bytes, CUstream stream_handle, int max_dynamic_shared) {
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(driver, stream_handle, stream); r != CUDA_SUCCESS) return r;
  const Device& device = *stream->device;
  // The limits of every GPU since Volta (device_attributes.cpp).
  constexpr std::array<unsigned, 3> kMaxBlock{1024, 1024, 64};
  constexpr std::array<unsigned, 3> kMaxGrid{2147483647u, 65535, 65535};
  unsigned long long threads = 1;
  for (int i = 0; i < 3; ++i) {
    if (block[i] == 0 || grid[i] == 0 || block[i] > kMaxBlock[i] || grid[i] > kMaxGrid[i]) {
      return CUDA_ERROR_INVALID_VALUE;
    }
    threads *= block[i];
  }
  if (threads > 1024) return CUDA_ERROR_INVALID_VALUE;
  const std::size_t shared_limit =
      std::min<std::size_t>(std::max(48 * 1024, max_dynamic_shared),
                            static_cast<std::size_t>(device.limits.shared_memory_per_block_optin));
  if (shared_bytes > shared_limit) return CUDA_ERROR_INVALID_VALUE;

  bool captured = false;
  if (CUresult r = stream_operation(driver, stream_handle, CU_GRAPH_NODE_TYPE_KERNEL, captured, kernel);
      r != CUDA_SUCCESS) {
    return r;
  }
  if (!captured) {
    kernel->launches.fetch_add(1, std::memory_order_relaxed);
    driver.copied_values.forget_all();  // Note [Copied values]
    oomguard_sim_log(3, "launch %s <<<(%u,%u,%u),(%u,%u,%u),%zu>>> on device %d", kernel->name.c_str(), grid[0],
                     grid[1], grid[2], block[0], block[1], block[2], shared_bytes, device.ordinal);
  }
  return CUDA_SUCCESS;
}

}  // namespace oomguard::sim
