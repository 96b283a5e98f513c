// Every other export of the real libcudart.so.13 (unsupported_functions.def):
// logged once through oomguard_sim_unsupported, stored as the last error,
// answered cudaErrorNotSupported.
//
// Note [Unsupported stubs]
// A stub must exist for each name, or a program linked against the real
// runtime would fail to load. Each is defined without a prototype (this
// file includes no CUDA header, so no declaration conflicts) and returns an
// int: on x86-64 the caller passes its arguments and reads the status from
// the return register whatever the stub declares, so one definition fits
// every signature that returns cudaError_t. The list holds no function
// returning anything else (those are implemented: cudaCreateChannelDesc,
// cudaGetErrorName, __cudaRegisterFatBinary, ...).
#include "oomguard_sim/sim_api.h"
#include "unsupported.hpp"

namespace oomguard::sim::runtime {
namespace {

constexpr int kCudaErrorNotSupported = 801;

int unsupported(const char* function) {
  oomguard_sim_unsupported("cudart", function);
  return record_unsupported(kCudaErrorNotSupported);
}

}  // namespace
}  // namespace oomguard::sim::runtime

#define OOMGUARD_SIM_CUDART_UNSUPPORTED(name) \
  extern "C" __attribute__((visibility("default"))) int name() { return oomguard::sim::runtime::unsupported(#name); }
#include "unsupported_functions.def"
#undef OOMGUARD_SIM_CUDART_UNSUPPORTED
