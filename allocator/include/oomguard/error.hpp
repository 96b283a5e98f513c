// The error types of the core. Messages name what was wrong and what is accepted.
#pragma once

#include <array>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>

#include "oomguard/category.hpp"

namespace oomguard {

// Base of every oomguard error but out_of_memory (which is a bad_alloc so that
// code catching allocation failure catches ours too).
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A configuration key, value, budget string or name that is not accepted.
class config_error : public error {
 public:
  using error::error;
};

// A free that cannot be honoured: double free, a pointer we never returned,
// the wrong device or size. State is unchanged when this is thrown.
class invalid_free : public error {
 public:
  using error::error;
};

// The device, its driver or the upstream refused in a way that is not
// out-of-memory (no driver, no device, a driver error code).
class upstream_error : public error {
 public:
  using error::error;
};

// The state at the moment an allocation was refused.
struct OomContext {
  std::size_t requested_bytes = 0;
  int device = 0;
  std::size_t budget_bytes = 0;  // 0: no budget
  std::size_t allocated_bytes = 0;
  std::size_t reserved_bytes = 0;
  std::size_t largest_free_block = 0;
  std::array<std::int64_t, kNumCategories> by_category{};
  std::string reason;  // "budget", "category limit: activations", "device"
};

class out_of_memory : public std::bad_alloc {
 public:
  explicit out_of_memory(OomContext context);
  const char* what() const noexcept override { return message_.c_str(); }
  const OomContext& context() const noexcept { return context_; }

 private:
  OomContext context_;
  std::string message_;
};

// Called with the context of every out_of_memory the core is about to throw,
// on the allocating thread with no core lock held: where a post-mortem is
// written before the error reaches the caller (torch's pluggable allocator
// turns it into a NULL, then Python's exception). nullptr: none.
using OutOfMemoryHandler = void (*)(const OomContext& context) noexcept;
void set_out_of_memory_handler(OutOfMemoryHandler handler) noexcept;
void notify_out_of_memory(const OomContext& context) noexcept;

// Human-readable byte count: "1.50 GiB".
std::string format_bytes(std::int64_t bytes);

}  // namespace oomguard

namespace oomguard {
// A request the allocator does not serve: zero bytes, a device out of range.
class invalid_request : public error {
 public:
  using error::error;
};
}  // namespace oomguard
