// observe mode: PyTorch's native CUDA caching allocator stays in charge; its
// trace tracker and out-of-memory observer feed the Ledger.
#pragma once

#include <cstddef>
#include <cstdint>

namespace oomguard::torch_hooks {

// Whether this build can observe CUDA (it was compiled against c10_cuda).
bool cuda_observe_supported() noexcept;

// Attach the tracker and the observer to the native allocator. Idempotent.
// Returns false while the allocator is not initialised yet (attach is per
// device allocator, so it must wait for CUDA's lazy init; the Python side
// calls again from torch.cuda's lazy-init queue). Throws if this build has no
// CUDA or another allocator replaced the native one.
bool attach_cuda_observer();
bool cuda_observer_attached() noexcept;

// The size the native allocator gives a request of `nbytes` (its 512-byte
// rounding), for storages allocated before the tracker was attached.
std::uint64_t cuda_block_size(std::uint64_t nbytes) noexcept;

}  // namespace oomguard::torch_hooks
