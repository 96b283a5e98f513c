#include "real_symbol.hpp"

#include <link.h>

namespace oomguard::preload {
namespace {

struct Search {
  const char* name;
  const char* self_path;
  void* found;
};

int visit(dl_phdr_info* info, size_t, void* data) {
  auto* search = static_cast<Search*>(data);
  if (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0') return 0;  // the main program
  if (search->self_path != nullptr && __builtin_strcmp(info->dlpi_name, search->self_path) == 0) return 0;
  // RTLD_NOLOAD: only a handle to what is loaded already; never loads anything.
  void* handle = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return 0;
  void* symbol = dlsym(handle, search->name);
  dlclose(handle);
  if (symbol == nullptr) return 0;
  search->found = symbol;
  return 1;
}

}  // namespace

void* find_loaded_definition(const char* name) noexcept {
  Dl_info self{};
  const char* self_path = nullptr;
  if (dladdr(reinterpret_cast<void*>(&find_loaded_definition), &self) != 0) self_path = self.dli_fname;
  Search search{name, self_path, nullptr};
  dl_iterate_phdr(&visit, &search);
  return search.found;
}

}  // namespace oomguard::preload
