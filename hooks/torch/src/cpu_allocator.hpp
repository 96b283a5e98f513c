// cpu mode: a c10::Allocator wrapping the default CPU allocator so that host
// tensors feed the Ledger the way device tensors do.
#pragma once

#include <c10/core/Allocator.h>

#include <cstddef>
#include <cstdint>

#include "oomguard/category.hpp"

namespace oomguard::torch_hooks {

// Install the tracking allocator as torch's CPU allocator. Idempotent: the
// first call wins and later calls return false. `budget_bytes` (0: none) is a
// hard limit on tracked bytes: an allocation that would cross it throws
// c10::OutOfMemoryError, which Python sees as torch.OutOfMemoryError.
bool install_cpu_allocator(std::uint64_t budget_bytes);
bool cpu_allocator_installed() noexcept;
std::uint64_t cpu_budget_limit() noexcept;
std::uint64_t cpu_budget_used() noexcept;

// Pause (false) or resume tracking of new allocations; frees of tracked
// storages are always seen. For measuring oomguard's own cost in one process.
// False if the allocator is not installed.
bool set_cpu_tracking(bool enabled) noexcept;

// Bring a CPU storage allocated before install() under tracking with
// `category`: its deleter is swapped for ours so its free is seen. False when
// the storage did not come from the default allocator (mmap'ed files, numpy
// buffers) or the budget cannot take it.
bool adopt_cpu_storage(c10::DataPtr& data_ptr, std::size_t nbytes, Category category);

}  // namespace oomguard::torch_hooks
