// What nvcc's generated code registers when a library loads: fat binaries,
// kernels (host stub -> device name) and __device__ variables. torch's
// libraries register about 21,500 kernels from static constructors, before
// main and with no driver yet; nothing here may need one.
//
// Note [Kernel registry]
// The driver counts launches per kernel (oomguard_sim_register_kernel binds
// the stub to a name there). The runtime keeps only what its own calls
// answer: per stub, the device name (cudaFuncGetName), the dynamic shared
// memory cudaFuncSetAttribute allowed (Note [Launch validation]); per
// variable, its address and size. Both tables are read under a shared
// lock, written only at registration and by cudaFuncSetAttribute, and
// never freed (registration outlives every static destructor).
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "kernel_registry.hpp"
#include "oomguard_sim/sim_api.h"
#include "runtime.hpp"

namespace oomguard::sim::runtime {
namespace {

struct Symbol {
  CUdeviceptr address;
  std::size_t size;
};

struct Registry {
  std::shared_mutex mutex;
  std::unordered_map<const void*, KernelInfo*> kernels;
  std::unordered_map<const void*, Symbol> symbols;
};

Registry& registry() {
  static Registry* instance = new Registry();  // never freed, see above
  return *instance;
}

// What __cudaRegisterFatBinary hands back: nvcc's code only passes it on.
struct FatBinary {
  const void* image;
};

}  // namespace

KernelInfo* find_kernel(const void* host_function) {
  Registry& r = registry();
  std::shared_lock lock(r.mutex);
  auto it = r.kernels.find(host_function);
  return it == r.kernels.end() ? nullptr : it->second;
}

bool find_symbol(const void* symbol, CUdeviceptr& address, std::size_t& size) {
  Registry& r = registry();
  std::shared_lock lock(r.mutex);
  auto it = r.symbols.find(symbol);
  if (it == r.symbols.end()) return false;
  address = it->second.address;
  size = it->second.size;
  return true;
}

}  // namespace oomguard::sim::runtime

using namespace oomguard::sim::runtime;

OOMGUARD_SIM_RUNTIME_API void** __cudaRegisterFatBinary(void* fat_binary) {
  return reinterpret_cast<void**>(new FatBinary{fat_binary});
}

OOMGUARD_SIM_RUNTIME_API void __cudaRegisterFatBinaryEnd(void**) {}

// The binary's kernels stay registered: libraries unregister from atexit
// handlers while other code may still launch or look them up.
OOMGUARD_SIM_RUNTIME_API void __cudaUnregisterFatBinary(void**) {}

OOMGUARD_SIM_RUNTIME_API char __cudaInitModule(void**) { return 1; }

OOMGUARD_SIM_RUNTIME_API void __cudaRegisterFunction(void**, const char* host_function, char*,
                                                     const char* device_name, int, uint3*, uint3*, dim3*, dim3*,
                                                     int*) {
  if (!host_function) return;
  oomguard_sim_register_kernel(host_function, device_name);
  auto* info = new KernelInfo{device_name ? device_name : "", {0}};
  Registry& r = registry();
  std::unique_lock lock(r.mutex);
  auto [it, inserted] = r.kernels.emplace(host_function, info);
  if (!inserted) delete info;  // registered twice (a stub shared by two binaries): the first stays
}

OOMGUARD_SIM_RUNTIME_API void __cudaRegisterVar(void**, char* host_variable, char*, const char*, int,
                                                std::size_t size, int, int) {
  if (!host_variable) return;
  const auto address = reinterpret_cast<CUdeviceptr>(oomguard_sim_symbol_address(host_variable, size));
  Registry& r = registry();
  std::unique_lock lock(r.mutex);
  r.symbols.emplace(host_variable, Symbol{address, size});
}

// A __managed__ variable is read and written by host code through
// *host_pointer_address, so it gets real host memory (zeroed, as a GPU's
// managed memory starts), never an unbacked device address.
OOMGUARD_SIM_RUNTIME_API void __cudaRegisterManagedVar(void**, void** host_pointer_address, char*, const char*, int,
                                                       std::size_t size, int, int) {
  if (!host_pointer_address) return;
  void* storage = std::calloc(1, size == 0 ? 1 : size);
  *host_pointer_address = storage;
  Registry& r = registry();
  std::unique_lock lock(r.mutex);
  r.symbols.emplace(host_pointer_address, Symbol{reinterpret_cast<CUdeviceptr>(storage), size});
}

// A host variable that device code reads (-rdc builds): nothing to do, no
// device code runs.
OOMGUARD_SIM_RUNTIME_API void __cudaRegisterHostVar(void**, const char*, void*, std::size_t) {}

// Tables nvcc emits for unified function pointers: nothing to record.
OOMGUARD_SIM_RUNTIME_API void __cudaRegisterUnifiedTable(void**, void*) {}
