// The functions torch's CUDAPluggableAllocator calls, in two pairs: one for
// own mode (the core allocator serves every CUDA tensor) and one for
// oomguard.own_pool() (the core allocator serves the segments of one
// torch.cuda.MemPool under torch's native allocator). Both are exported from
// this extension (oomguard._C) by name, for CUDAPluggableAllocator's dlsym.
//
// Note [A pluggable allocator must throw]
// torch 2.11's CUDAPluggableAllocator::allocate wraps whatever the function
// returns in a DataPtr without looking at it: a NULL from oomguard_malloc
// becomes a tensor at address 0 (a crash on the first kernel on a GPU, and
// nothing at all on the simulated one), never torch.OutOfMemoryError. So own
// mode does not hand torch the core's C ABI directly: its entry calls it and
// turns a refusal into c10::OutOfMemoryError (torch.OutOfMemoryError in
// Python) carrying the core's message: the request, the budget or category
// limit, allocated, reserved and the bytes per category.
//
// Under a MemPool the caller is torch's own caching allocator, which checks
// for NULL (it frees its cache, retries and raises its usual error, calling
// the out-of-memory observers): there a NULL is the right answer, and
// throwing through its lock would skip that.
//
// Note [The pool allocator's own Ledger]
// In observe mode the trace tracker records torch's blocks in
// Ledger::global(). A MemPool's blocks are cut from segments the pool's
// allocator returns, and the first block starts at the segment's address:
// had the core recorded its segment in the same Ledger, the tracker's ALLOC
// would replace that record, the segment would be counted twice in reserved
// (the core's and torch's SEGMENT_ALLOC), and torch's final free of the
// segment would be refused as unknown, leaking it in the core. The pool
// allocator therefore keeps its records in a Ledger of its own (its address
// map, Note [One pointer map]); the process's Ledger sees the pool exactly
// as torch does, through the tracker.
#pragma once

#include <cstdint>
#include <string>

#include "oomguard/device_allocator.hpp"

namespace oomguard::torch_hooks {

// The file this extension was loaded from: what CUDAPluggableAllocator must
// dlopen to find the functions below.
std::string extension_library_path();

// Create the pool allocator, once, with the allocator keys of OOMGUARD_CONF
// (later calls keep the first configuration). Throws config_error.
void configure_pool_allocator(const std::string& conf);
bool pool_allocator_configured() noexcept;
// The pool allocator's figures for `device` (zeros before it is configured).
AllocatorStats pool_allocator_stats(int device);

}  // namespace oomguard::torch_hooks

extern "C" {
// Own mode (Note [A pluggable allocator must throw]).
__attribute__((visibility("default"))) void* oomguard_torch_malloc(std::size_t size, int device, void* stream);
__attribute__((visibility("default"))) void oomguard_torch_free(void* ptr, std::size_t size, int device,
                                                                void* stream);
// oomguard.own_pool() (Note [The pool allocator's own Ledger]).
__attribute__((visibility("default"))) void* oomguard_pool_malloc(std::size_t size, int device, void* stream);
__attribute__((visibility("default"))) void oomguard_pool_free(void* ptr, std::size_t size, int device,
                                                               void* stream);
}
