// ncclGroupStart/End nesting, per thread as in NCCL.
#pragma once

namespace oomguard::sim::nccl {

// How deep the calling thread is in ncclGroupStart/ncclGroupEnd pairs.
int group_depth();

}  // namespace oomguard::sim::nccl
