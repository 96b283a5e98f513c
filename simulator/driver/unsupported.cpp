// Every name of the real driver's export list that the simulator does not
// implement (unsupported_entry_points.def) is exported as a stub that logs
// once through oomguard_sim_unsupported and returns
// CUDA_ERROR_NOT_SUPPORTED, so a program that reaches one fails with a
// clear status and a line naming the call, never with a missing symbol.
//
// This file must not include cuda.h: the stubs take no parameters (every
// driver entry point returns a CUresult in a register, and a caller's
// arguments are simply ignored in the x86-64 and AArch64 calling
// conventions), which cuda.h's prototypes would contradict.
#include <cstring>
#include <string_view>

#include "oomguard_sim/sim_api.h"
#include "unsupported.hpp"

namespace {
constexpr int kCudaErrorNotSupported = 801;  // CUDA_ERROR_NOT_SUPPORTED
}

#define OOMGUARD_SIM_UNSUPPORTED(name)                                         \
  extern "C" __attribute__((visibility("default"))) int name() {               \
    oomguard_sim_unsupported("driver", #name);                                 \
    return kCudaErrorNotSupported;                                             \
  }
#include "unsupported_entry_points.def"
#undef OOMGUARD_SIM_UNSUPPORTED

namespace oomguard::sim {
namespace {

struct Stub {
  const char* name;
  void* function;
};

const Stub kStubs[] = {
#define OOMGUARD_SIM_UNSUPPORTED(name) {#name, reinterpret_cast<void*>(&name)},
#include "unsupported_entry_points.def"
#undef OOMGUARD_SIM_UNSUPPORTED
};

}  // namespace

void* find_unsupported_entry_point(std::string_view symbol) {
  for (const Stub& stub : kStubs) {
    if (symbol == stub.name) return stub.function;
  }
  return nullptr;
}

}  // namespace oomguard::sim
