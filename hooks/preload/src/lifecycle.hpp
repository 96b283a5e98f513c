// When reports are written: started lazily at the first interposed
// allocation, a timeline row per segment change, the summary at an
// out-of-memory, at exit and at a terminating signal.
//
// Note [No cost until CUDA is touched]
// A program that never allocates device memory must not notice the library:
// the load-time constructor only reads the environment and registers the fork
// handler. The report directory, the timeline file, the signal handlers and
// the watcher thread all appear at the first interposed allocation.
#pragma once

#include <cstdint>

namespace oomguard::preload {

// Idempotent and thread-safe; cheap (one acquire load) once started.
void ensure_started() noexcept;
void report_segment_change(int device) noexcept;
void report_out_of_memory(int device) noexcept;
// Summaries written at an out-of-memory (Note [Out-of-memory summaries are
// rate limited]), the one being written included.
std::uint64_t out_of_memory_summaries_written() noexcept;

}  // namespace oomguard::preload
