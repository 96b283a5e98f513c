// Groups. In NCCL, operations issued between ncclGroupStart and
// ncclGroupEnd are launched together at the outermost ncclGroupEnd. Every
// operation here is complete as soon as it is issued (nothing runs), so a
// group only has to nest correctly: an ncclGroupEnd without its start is the
// error real NCCL reports.
#include "group.hpp"

#include <nccl.h>
#include <oomguard_sim/sim_api.h>

#include "errors.hpp"

namespace oomguard::sim::nccl {
namespace {

thread_local int t_depth = 0;

constexpr unsigned kSimInfoMagic = 0x74685283;  // NCCL_SIM_INFO_INITIALIZER's

ncclResult_t end_group(const char* function) {
  if (t_depth == 0) return fail(ncclInvalidUsage, function, "no group was started (ncclGroupStart) on this thread");
  --t_depth;
  oomguard_sim_count_call("nccl", function);
  return ncclSuccess;
}

}  // namespace

int group_depth() { return t_depth; }

}  // namespace oomguard::sim::nccl

using namespace oomguard::sim::nccl;

extern "C" {

OOMGUARD_SIM_EXPORT ncclResult_t ncclGroupStart() {
  ++t_depth;
  return ncclSuccess;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclGroupEnd() { return end_group(__func__); }

OOMGUARD_SIM_EXPORT ncclResult_t ncclGroupSimulateEnd(ncclSimInfo_t* info) {
  // NCCL's cost model predicts the group's time; the simulator has no clock
  // for work it never does, so it predicts none and ends the group.
  if (info != nullptr && info->magic != kSimInfoMagic)
    return fail(ncclInvalidArgument, __func__, "simInfo was not set up with NCCL_SIM_INFO_INITIALIZER");
  if (ncclResult_t r = end_group(__func__); r != ncclSuccess) return r;
  if (info != nullptr) info->estimatedTime = 0.0f;
  return ncclSuccess;
}

}  // extern "C"
