#include "own.hpp"

#include <dlfcn.h>

#include "oomguard/c_api.h"
#include "oomguard/error.hpp"
#include "oomguard/guard/report/report.hpp"

namespace oomguard::torch_hooks {

std::string core_library_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&oomguard_malloc), &info) == 0 || info.dli_fname == nullptr) {
    throw error("oomguard: cannot locate liboomguard_core.so (dladdr failed on oomguard_malloc)");
  }
  return info.dli_fname;
}

void configure_core_allocator(const std::string& conf) {
  if (oomguard_configure(conf.c_str()) != 0) throw config_error(oomguard_last_error());
  // Our allocator's out-of-memory writes the post-mortem before torch sees
  // the NULL (Note [Reports on the out-of-memory path]).
  set_out_of_memory_handler(&guard::report::report_out_of_memory);
}

}  // namespace oomguard::torch_hooks
