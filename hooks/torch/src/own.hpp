// own mode: torch's CUDA allocations are served by the core caching
// allocator through CUDAPluggableAllocator, which Python sets up; this is the
// C++ half it needs.
#pragma once

#include <string>

namespace oomguard::torch_hooks {

// The file liboomguard_core.so was loaded from: the path
// CUDAPluggableAllocator must dlopen so that torch and this extension share
// one Ledger.
std::string core_library_path();

// Configure the core allocator before its first allocation (allocator keys
// of OOMGUARD_CONF). Throws oomguard::config_error on a bad key or value.
void configure_core_allocator(const std::string& conf);

// Set by the core's out-of-memory handler on the refusing thread: how own
// mode's entry tells a refusal for memory (torch.OutOfMemoryError) from bad
// input (RuntimeError) after oomguard_malloc returned NULL.
bool& refused_for_memory() noexcept;

}  // namespace oomguard::torch_hooks
