// Note [Re-entry]
// A runtime may implement one interposed call with another: a cudart that
// reaches the driver through exported symbols runs our cuMemAlloc_v2 wrapper
// inside our cudaMalloc wrapper. The outer call is the one the program made, so
// only it is accounted; inner calls on the same thread pass straight through.
// The flag is a plain thread-local bool: no allocation, no lock, and it cannot
// recurse through dlsym or malloc because neither is interposed here.
#pragma once

namespace oomguard::preload {

inline thread_local bool t_inside_hook = false;

// True for the outermost interposed call on this thread.
class ReentryGuard {
 public:
  ReentryGuard() noexcept : outermost_(!t_inside_hook) { t_inside_hook = true; }
  ~ReentryGuard() {
    if (outermost_) t_inside_hook = false;
  }
  ReentryGuard(const ReentryGuard&) = delete;
  ReentryGuard& operator=(const ReentryGuard&) = delete;
  bool outermost() const noexcept { return outermost_; }

 private:
  bool outermost_;
};

}  // namespace oomguard::preload
