// The real implementation of an interposed function, found once.
//
// Note [Resolving the real function]
// dlsym(RTLD_NEXT, name) searches the libraries loaded after this one, which
// is where the real cudart and libcuda are when we are LD_PRELOADed. It is
// resolved lazily, on the first call, rather than in a constructor: a static
// initializer of another library may call cudaMalloc before our constructors
// run, and the lazy path works then too. Two threads racing the first call
// both get the same answer from dlsym, so a relaxed atomic pointer is enough.
// A pointer handed out by cudaGetDriverEntryPoint/cuGetProcAddress is stored
// with offer() so that our wrappers reach the driver even when no libcuda is
// among the libraries dlsym(RTLD_NEXT) can see.
// RTLD_NEXT only searches the global scope. A runtime dlopen'ed with
// RTLD_LOCAL (a Python extension's dependency) is not in it, so when RTLD_NEXT
// finds nothing, find_loaded_definition() asks every loaded object but this one.
#pragma once

#include <dlfcn.h>

#include <atomic>

namespace oomguard::preload {

// The address of `name` in a loaded object other than this library; nullptr
// if none defines it.
void* find_loaded_definition(const char* name) noexcept;

template <typename Fn>
class RealSymbol {
 public:
  explicit constexpr RealSymbol(const char* name) noexcept : name_(name) {}

  Fn get() noexcept {
    Fn fn = fn_.load(std::memory_order_acquire);
    if (fn == nullptr) {
      void* found = dlsym(RTLD_NEXT, name_);
      if (found == nullptr) found = find_loaded_definition(name_);
      fn = reinterpret_cast<Fn>(found);
      if (fn != nullptr) fn_.store(fn, std::memory_order_release);
    }
    return fn;
  }
  // Keep `fn` as the real function unless one is known already.
  void offer(Fn fn) noexcept {
    Fn expected = nullptr;
    fn_.compare_exchange_strong(expected, fn, std::memory_order_acq_rel);
  }
  const char* name() const noexcept { return name_; }

 private:
  const char* name_;
  std::atomic<Fn> fn_{nullptr};
};

}  // namespace oomguard::preload
