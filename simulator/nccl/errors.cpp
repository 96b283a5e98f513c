#include "errors.hpp"

#include <oomguard_sim/sim_api.h>

#include <cstdarg>
#include <cstdio>

#include "communicator.hpp"

namespace oomguard::sim::nccl {
namespace {

// NCCL keeps the last error per thread; so do we (a thread's failure must not
// be overwritten by another thread's before it asks).
thread_local char t_last_error[512] = "";

}  // namespace

ncclResult_t fail(ncclResult_t result, const char* function, const char* format, ...) {
  const int prefix = std::snprintf(t_last_error, sizeof t_last_error, "%s: ", function);
  if (prefix > 0 && static_cast<std::size_t>(prefix) < sizeof t_last_error) {
    va_list args;
    va_start(args, format);
    std::vsnprintf(t_last_error + prefix, sizeof t_last_error - static_cast<std::size_t>(prefix), format, args);
    va_end(args);
  }
  oomguard_sim_log(2, "nccl: %s (%s)", t_last_error, ncclGetErrorString(result));
  return result;
}

const char* last_error() { return t_last_error; }

}  // namespace oomguard::sim::nccl

extern "C" {

OOMGUARD_SIM_EXPORT const char* ncclGetErrorString(ncclResult_t result) {
  // NCCL 2.28's strings (torch copies them into its exceptions), pointing at
  // the simulator's log for the details instead of NCCL_DEBUG.
  switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with OOMGUARD_SIM_LOG=2 for details)";
    case ncclSystemError: return "unhandled system error (run with OOMGUARD_SIM_LOG=2 for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with OOMGUARD_SIM_LOG=2 for details)";
    case ncclInvalidUsage: return "invalid usage (run with OOMGUARD_SIM_LOG=2 for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
  }
}

OOMGUARD_SIM_EXPORT const char* ncclGetLastError(ncclComm_t /*comm: NCCL's message is per thread too*/) {
  return oomguard::sim::nccl::last_error();
}

}  // extern "C"
