// The bytes of small copies into device memory, kept until the next kernel.
//
// Note [Copied values]
// Device memory has no bytes (Note [Device memory]), and that is right for
// tensors, whose values come from kernels that never run. But some
// programs read back small values they copied in themselves, and branch on
// them: DDP's constructor copies each rank's parameter count and shapes to
// the device, all-gathers them and refuses to start when a rank's entry
// differs (zeros always differ); `torch.tensor(3, device="cuda").item()`
// should say 3. So a host-to-device copy of at most kMaxBytes is kept, by
// its device address; a device-to-host copy overlays what was kept on the
// fill byte, and a device-to-device copy carries it along. Kept bytes are
// forgotten by the next kernel launch anywhere in the process (after it, a
// kernel may have written them, and a stale value is worse than the
// documented fill byte: GradScaler's found_inf would read as "inf found"),
// by a memset of their range and by a larger copy over them.
// Dropped: backing all device memory with MAP_NORESERVE pages, which would
// commit host RAM for every weight a checkpoint load copies in.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

namespace oomguard::sim {

class CopiedValues {
 public:
  static constexpr std::size_t kMaxBytes = 64 * 1024;
  static constexpr std::size_t kMaxKept = 4096;  // entries; past it the oldest values are simply lost

  // A copy of `bytes` host bytes to device address `device`.
  void copy_in(std::uintptr_t device, const void* host, std::size_t bytes);
  // A copy from device address `device` into `host`, pre-filled by the caller.
  void copy_out(void* host, std::uintptr_t device, std::size_t bytes) const;
  // A device-to-device copy.
  void copy_within(std::uintptr_t destination, std::uintptr_t source, std::size_t bytes);
  // A write of unknown bytes (a memset, a large copy) over [device, device + bytes).
  void forget(std::uintptr_t device, std::size_t bytes);
  // A kernel ran: nothing kept can be trusted. One atomic load when empty.
  void forget_all() {
    if (empty_.load(std::memory_order_acquire)) return;
    std::lock_guard lock(mutex_);
    kept_.clear();
    empty_.store(true, std::memory_order_release);
  }

 private:
  void forget_locked(std::uintptr_t begin, std::uintptr_t end);
  void keep_locked(std::uintptr_t device, const unsigned char* bytes, std::size_t size);

  mutable std::mutex mutex_;
  std::map<std::uintptr_t, std::vector<unsigned char>> kept_;  // by start address; never overlapping
  std::atomic<bool> empty_{true};
};

}  // namespace oomguard::sim
