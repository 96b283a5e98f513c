#include "own.hpp"

#include <dlfcn.h>

#include "oomguard/c_api.h"
#include "oomguard/error.hpp"
#include "oomguard/guard/report/report.hpp"

namespace oomguard::torch_hooks {
namespace {

thread_local bool t_refused_for_memory = false;

void on_out_of_memory(const OomContext& context) noexcept {
  t_refused_for_memory = true;
  // Our allocator's out-of-memory writes the post-mortem before torch sees
  // the error (Note [Reports on the out-of-memory path]).
  guard::report::report_out_of_memory(context);
}

}  // namespace

std::string core_library_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&oomguard_malloc), &info) == 0 || info.dli_fname == nullptr) {
    throw error("oomguard: cannot locate liboomguard_core.so (dladdr failed on oomguard_malloc)");
  }
  return info.dli_fname;
}

void configure_core_allocator(const std::string& conf) {
  if (oomguard_configure(conf.c_str()) != 0) throw config_error(oomguard_last_error());
  set_out_of_memory_handler(&on_out_of_memory);
}

bool& refused_for_memory() noexcept { return t_refused_for_memory; }

}  // namespace oomguard::torch_hooks
