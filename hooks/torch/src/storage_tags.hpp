// Categories keyed by storage: the census tells the Ledger what a tensor's
// storage is for, whichever mode allocated it.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "oomguard/category.hpp"

namespace oomguard::torch_hooks {

struct ClaimResult {
  std::int64_t bytes = 0;      // bytes of the distinct storages now in the category
  std::int64_t storages = 0;   // distinct storages claimed
  std::int64_t untracked = 0;  // distinct storages no source knows (mmap'ed, foreign)
};

// Move the storages of `tensors` to `category`. Each storage counts once,
// however many tensors view it. A storage the Ledger does not know is
// adopted where its source allows (see adopt_cpu_storage, and CUDA storages
// allocated before the tracker was attached).
ClaimResult claim_storages(const std::vector<at::Tensor>& tensors, Category category);

}  // namespace oomguard::torch_hooks
