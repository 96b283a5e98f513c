#include "cpu_allocator.hpp"

#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <atomic>
#include <mutex>
#include <string>

#include "oomguard/budget.hpp"
#include "oomguard/error.hpp"
#include "oomguard/guard/report/report.hpp"
#include "oomguard/guard/run_state.hpp"
#include "oomguard/ledger.hpp"

namespace oomguard::torch_hooks {
namespace {

// Note [No per-allocation context on the CPU path]
// The default CPU allocator returns DataPtrs whose context is the data pointer
// itself and whose deleter is a plain function (raw_deleter()). We keep that
// shape: take the pointer out of the base DataPtr and hand back one with our
// own plain deleter, which releases the Ledger record and then calls the base
// deleter. Nothing is allocated per tensor. Only a base allocator of another
// shape (a custom one installed before us) pays for a heap context that owns
// its DataPtr.

// Above this priority the default allocator (registered at 0) and its
// equal-priority replacements lose; a later, higher-priority allocator (a
// profiler's) still wins over ours.
constexpr std::uint8_t kCpuAllocatorPriority = 10;

class TrackingCpuAllocator;
std::atomic<TrackingCpuAllocator*> g_installed{nullptr};
std::mutex g_install_mutex;

struct WrappedContext {
  c10::DataPtr base;
};

[[noreturn]] void throw_budget_oom(std::size_t requested, const Budget& budget) {
  Ledger::global().note_oom(kCpuDevice, requested);
  const DeviceStats stats = Ledger::global().device_stats(kCpuDevice);
  // The post-mortem is written before the error reaches Python (Note
  // [Reports on the out-of-memory path]).
  OomContext context;
  context.requested_bytes = requested;
  context.device = kCpuDevice;
  context.budget_bytes = budget.limit();
  context.allocated_bytes = static_cast<std::size_t>(stats.allocated);
  context.reserved_bytes = static_cast<std::size_t>(stats.reserved);
  context.by_category = stats.current;
  context.reason = "budget";
  guard::report::report_out_of_memory(context);
  std::string by_category;
  for (std::size_t c = 0; c < kNumCategories; ++c) {
    if (stats.current[c] == 0) continue;
    if (!by_category.empty()) by_category += ", ";
    by_category += std::string(kCategoryNames[c]) + " " + format_bytes(stats.current[c]);
  }
  TORCH_CHECK_WITH(OutOfMemoryError, false, "oomguard: CPU allocation of ",
                   format_bytes(static_cast<std::int64_t>(requested)), " refused: it would cross the budget of ",
                   format_bytes(static_cast<std::int64_t>(budget.limit())), " (",
                   format_bytes(static_cast<std::int64_t>(budget.used())), " tracked now",
                   by_category.empty() ? std::string() : ": " + by_category,
                   "). Raise `budget` in OOMGUARD_CONF or oomguard.install(budget=...).");
}

class TrackingCpuAllocator final : public c10::Allocator {
 public:
  TrackingCpuAllocator(c10::Allocator* base, std::uint64_t budget_bytes)
      : base_(base), base_deleter_(base->raw_deleter()), budget_(budget_bytes) {}

  c10::DataPtr allocate(std::size_t n) override {
    if (!tracking_.load(std::memory_order_relaxed)) return base_->allocate(n);
    if (!budget_.try_reserve(n)) throw_budget_oom(n, budget_);
    c10::DataPtr base = base_->allocate(n);
    void* data = base.get();
    if (data == nullptr) {  // zero bytes: nothing to track
      budget_.release(n);
      return base;
    }
    const c10::Device device = base.device();
    Ledger::global().record(reinterpret_cast<std::uintptr_t>(data), n, kCpuDevice);
    if (base_deleter_ != nullptr && base.get_context() == data && base.get_deleter() == base_deleter_) {
      (void)base.release_context();
      return {data, data, &delete_plain, device};
    }
    auto* context = new WrappedContext{std::move(base)};
    return {data, context, &delete_wrapped, device};
  }

  c10::DeleterFnPtr raw_deleter() const override { return base_deleter_ != nullptr ? &delete_plain : nullptr; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  bool adopt(c10::DataPtr& data_ptr, std::size_t nbytes, Category category) {
    void* data = data_ptr.get();
    if (base_deleter_ == nullptr || data_ptr.get_context() != data) return false;
    if (!budget_.try_reserve(nbytes)) return false;
    if (!data_ptr.compare_exchange_deleter(base_deleter_, &delete_plain)) {
      budget_.release(nbytes);
      return false;
    }
    record_adopted(data, nbytes, category);
    return true;
  }

  // A storage already carrying our deleter whose record is missing (it was
  // released as replaced, or the Ledger forgot it): record it again. Its
  // budget reservation is still held.
  static void record_adopted(void* data, std::size_t nbytes, Category category) {
    const Tag tag = current_tag();
    Ledger::global().record(reinterpret_cast<std::uintptr_t>(data), nbytes, kCpuDevice, 0,
                            Tag{category, tag.phase, tag.step});
  }

  static void delete_plain(void* data) {
    TrackingCpuAllocator* self = g_installed.load(std::memory_order_acquire);
    if (auto record = Ledger::global().release(reinterpret_cast<std::uintptr_t>(data))) {
      self->budget_.release(record->size);
    }
    self->base_deleter_(data);
  }

  static void delete_wrapped(void* context) {
    auto* wrapped = static_cast<WrappedContext*>(context);
    TrackingCpuAllocator* self = g_installed.load(std::memory_order_acquire);
    if (auto record = Ledger::global().release(reinterpret_cast<std::uintptr_t>(wrapped->base.get()))) {
      self->budget_.release(record->size);
    }
    delete wrapped;  // the base DataPtr frees the memory
  }

  const Budget& budget() const noexcept { return budget_; }
  void set_tracking(bool enabled) noexcept { tracking_.store(enabled, std::memory_order_relaxed); }

 private:
  std::atomic<bool> tracking_{true};
  c10::Allocator* base_;
  c10::DeleterFnPtr base_deleter_;
  Budget budget_;
};

}  // namespace

bool install_cpu_allocator(std::uint64_t budget_bytes) {
  std::lock_guard lock(g_install_mutex);
  if (g_installed.load(std::memory_order_acquire) != nullptr) return false;
  // Leaked on purpose: tensors are freed through it during static destruction.
  auto* allocator = new TrackingCpuAllocator(c10::GetCPUAllocator(), budget_bytes);
  g_installed.store(allocator, std::memory_order_release);
  if (budget_bytes != 0) guard::RunState::global().set_budget(budget_bytes);
  c10::SetCPUAllocator(allocator, kCpuAllocatorPriority);
  return true;
}

bool cpu_allocator_installed() noexcept { return g_installed.load(std::memory_order_acquire) != nullptr; }

std::uint64_t cpu_budget_limit() noexcept {
  const TrackingCpuAllocator* a = g_installed.load(std::memory_order_acquire);
  return a != nullptr ? a->budget().limit() : 0;
}

std::uint64_t cpu_budget_used() noexcept {
  const TrackingCpuAllocator* a = g_installed.load(std::memory_order_acquire);
  return a != nullptr ? a->budget().used() : 0;
}

bool set_cpu_tracking(bool enabled) noexcept {
  TrackingCpuAllocator* a = g_installed.load(std::memory_order_acquire);
  if (a == nullptr) return false;
  a->set_tracking(enabled);
  return true;
}

bool adopt_cpu_storage(c10::DataPtr& data_ptr, std::size_t nbytes, Category category) {
  TrackingCpuAllocator* a = g_installed.load(std::memory_order_acquire);
  if (a == nullptr || data_ptr.get() == nullptr) return false;
  if (data_ptr.get_deleter() == &TrackingCpuAllocator::delete_plain) {
    TrackingCpuAllocator::record_adopted(data_ptr.get(), nbytes, category);
    return true;
  }
  return a->adopt(data_ptr, nbytes, category);
}

}  // namespace oomguard::torch_hooks
