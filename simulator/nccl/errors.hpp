// NCCL's error reporting: the result strings, and the last error message
// that ncclGetLastError returns.
#pragma once

#include <nccl.h>

namespace oomguard::sim::nccl {

// Records "<function>: <message>" as the calling thread's last error, logs it
// at level 2 and returns `result`, so that a check reads
//   if (bad) return fail(ncclInvalidArgument, __func__, "root %d of %d", r, n);
ncclResult_t fail(ncclResult_t result, const char* function, const char* format, ...)
    __attribute__((format(printf, 3, 4)));

const char* last_error();

}  // namespace oomguard::sim::nccl
