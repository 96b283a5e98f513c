#include "observe.hpp"

#include <atomic>
#include <mutex>
#include <stdexcept>

#include "oomguard/error.hpp"
#include "oomguard/guard/report/report.hpp"
#include "oomguard/ledger.hpp"

#if __has_include(<torch/headeronly/version.h>)
#include <torch/headeronly/version.h>
#else
#include <torch/version.h>
#endif

#ifdef OOMGUARD_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

// Note [Torch versions the tracker supports]
// Written against torch 2.11, where TraceEntry lives in
// c10::CachingDeviceAllocator (the CUDA namespace keeps a using-alias, which
// is the name used here) and stream_ is a void*. Torch 2.0's TraceEntry has
// no device_, hence the floor below. Across versions the stream's type
// (cudaStream_t or void*) and the OOM observer's integer types (int64_t or
// size_t) changed: the stream goes through reinterpret_cast, which takes
// either pointer, and the observer takes `auto` parameters.
#if TORCH_VERSION_MAJOR < 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR < 1)
#error "oomguard's observe mode needs torch >= 2.1 (allocator trace trackers)"
#endif

namespace oomguard::torch_hooks {
namespace {

std::atomic<bool> g_attached{false};
std::mutex g_attach_mutex;

#ifdef OOMGUARD_TORCH_CUDA
namespace cca = c10::cuda::CUDACachingAllocator;

// Note [The tracker runs under the allocator lock]
// The native allocator calls trackers with its per-device mutex held, on the
// allocating thread. Everything here is a Ledger update: a sharded hash-map
// insert or erase and a few relaxed atomics. No GIL, no I/O, no allocation
// through torch (that would deadlock on the same mutex).
void on_trace(const cca::TraceEntry& entry) {
  Ledger& ledger = Ledger::global();
  const int device = static_cast<int>(entry.device_);
  const auto stream = reinterpret_cast<std::uintptr_t>(entry.stream_);
  switch (entry.action_) {
    case cca::TraceEntry::ALLOC:
      ledger.record(entry.addr_, entry.size_, device, stream);
      break;
    // FREE_REQUESTED may be deferred by record_stream; torch's allocated
    // bytes drop at FREE_COMPLETED, and so do ours.
    case cca::TraceEntry::FREE_COMPLETED:
      ledger.release(entry.addr_);
      break;
    case cca::TraceEntry::SEGMENT_ALLOC:
    case cca::TraceEntry::SEGMENT_MAP:
      ledger.segment_alloc(device, entry.size_, entry.addr_);
      break;
    case cca::TraceEntry::SEGMENT_FREE:
    case cca::TraceEntry::SEGMENT_UNMAP:
      ledger.segment_free(device, entry.size_, entry.addr_);
      break;
    case cca::TraceEntry::OOM:
      ledger.note_oom(device, entry.size_);
      break;
    default:
      break;
  }
}
#endif

}  // namespace

bool cuda_observe_supported() noexcept {
#ifdef OOMGUARD_TORCH_CUDA
  return true;
#else
  return false;
#endif
}

bool attach_cuda_observer() {
#ifdef OOMGUARD_TORCH_CUDA
  std::lock_guard lock(g_attach_mutex);
  if (g_attached.load(std::memory_order_acquire)) return true;
  cca::CUDAAllocator* allocator = cca::get();
  if (allocator == nullptr || !allocator->initialized()) return false;
  // A pluggable allocator (own mode, or someone else's) refuses both hooks
  // with an error; let it propagate: observing is meaningless there.
  allocator->attachAllocatorTraceTracker(&on_trace);
  // The second argument is the refused request, whatever torch names it.
  allocator->attachOutOfMemoryObserver(
      [](auto device, auto requested, auto device_total, auto device_free) {
        Ledger::global().note_oom(static_cast<int>(device), static_cast<std::uint64_t>(requested));
        // Before torch raises into Python (Note [Reports on the out-of-memory
        // path]): host memory only; the allocator's lock is held, so nothing
        // here calls back into torch.
        const DeviceStats stats = Ledger::global().device_stats(static_cast<int>(device));
        OomContext context;
        context.requested_bytes = static_cast<std::size_t>(requested);
        context.device = static_cast<int>(device);
        context.allocated_bytes = static_cast<std::size_t>(stats.allocated);
        context.reserved_bytes = static_cast<std::size_t>(stats.reserved);
        context.by_category = stats.current;
        // c10 does not say its largest free block here (left 0: unknown).
        context.reason = "device: " + format_bytes(static_cast<std::int64_t>(device_free)) + " free of " +
                         format_bytes(static_cast<std::int64_t>(device_total));
        guard::report::report_out_of_memory(context);
      });
  g_attached.store(true, std::memory_order_release);
  return true;
#else
  throw std::runtime_error(
      "oomguard: observe mode needs a CUDA build of torch; this extension was built against a CPU-only "
      "torch. Accepted modes here: cpu.");
#endif
}

bool cuda_observer_attached() noexcept { return g_attached.load(std::memory_order_acquire); }

std::uint64_t cuda_block_size(std::uint64_t nbytes) noexcept {
  constexpr std::uint64_t kMinBlock = 512;  // c10's kMinBlockSize
  if (nbytes < kMinBlock) return kMinBlock;
  return (nbytes + kMinBlock - 1) / kMinBlock * kMinBlock;
}

}  // namespace oomguard::torch_hooks
