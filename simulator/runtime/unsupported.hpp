// The bridge from unsupported.cpp, which includes no CUDA header (Note
// [Unsupported stubs]), to the last error of errors.cpp.
#pragma once

namespace oomguard::sim::runtime {

// Stores `code` (a cudaError_t) as the calling thread's last error and
// returns it.
int record_unsupported(int code);

}  // namespace oomguard::sim::runtime
