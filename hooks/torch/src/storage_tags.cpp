#include "storage_tags.hpp"

#include <c10/core/StorageImpl.h>

#include <unordered_set>

#include "cpu_allocator.hpp"
#include "observe.hpp"
#include "oomguard/ledger.hpp"

namespace oomguard::torch_hooks {
namespace {

bool adopt(c10::StorageImpl& storage, c10::DataPtr& data_ptr, Category category) {
  const c10::Device device = data_ptr.device();
  if (device.is_cpu()) return adopt_cpu_storage(data_ptr, storage.nbytes(), category);
  if (device.is_cuda() && cuda_observer_attached()) {
    // Allocated before the tracker was attached: its FREE_COMPLETED will
    // still come, so recording it now keeps the Ledger balanced.
    const Tag tag = current_tag();
    Ledger::global().record(reinterpret_cast<std::uintptr_t>(data_ptr.get()), cuda_block_size(storage.nbytes()),
                            device.index(), 0, Tag{category, tag.phase, tag.step});
    return true;
  }
  return false;
}

}  // namespace

ClaimResult claim_storages(const std::vector<at::Tensor>& tensors, Category category) {
  ClaimResult result;
  std::unordered_set<std::uintptr_t> seen;
  seen.reserve(tensors.size());
  Ledger& ledger = Ledger::global();
  for (const at::Tensor& tensor : tensors) {
    if (!tensor.defined() || !tensor.has_storage()) continue;
    c10::StorageImpl* storage = tensor.storage().unsafeGetStorageImpl();
    c10::DataPtr& data_ptr = storage->_mutable_data_ptr_no_checks();
    const auto address = reinterpret_cast<std::uintptr_t>(data_ptr.get());
    if (address == 0 || !seen.insert(address).second) continue;
    if (ledger.retag(address, category) || adopt(*storage, data_ptr, category)) {
      const auto record = ledger.find(address);
      result.bytes += record ? static_cast<std::int64_t>(record->size) : 0;
      ++result.storages;
    } else {
      ++result.untracked;
    }
  }
  return result;
}

}  // namespace oomguard::torch_hooks
