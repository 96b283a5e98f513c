// cuGetProcAddress (how the runtime's cudaGetDriverEntryPoint, torch's
// c10::cuda::DriverAPI and statically linked runtimes find the driver) and
// cuGetExportTable.
#include <cstring>
#include <string_view>

#include "api.hpp"
#include "unsupported.hpp"

using namespace oomguard::sim;

// Declared here, defined at the end: the table below takes their addresses.
OOMGUARD_SIM_DRIVER_API CUresult cuGetProcAddress_v2(const char* symbol, void** function, int cuda_version,
                                                     cuuint64_t flags, CUdriverProcAddressQueryResult* status);

namespace {

struct EntryPoint {
  std::string_view name;
  void* function;
};

// `&name` goes through cuda.h's macros (implemented_entry_points.def).
// Deprecated entry points are still entry points.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
const EntryPoint kEntryPoints[] = {
#define OOMGUARD_SIM_ENTRY_POINT(name) {#name, reinterpret_cast<void*>(&name)},
#include "implemented_entry_points.def"
#undef OOMGUARD_SIM_ENTRY_POINT
};
#pragma GCC diagnostic pop

// Older versions of a name, for callers built against an older cudaVersion
// (the real driver keys each version by the CUDA release that added it).
#undef cuStreamUpdateCaptureDependencies
#undef cuGraphNodeGetDependencies
extern "C" {
CUresult cuGraphNodeGetDependencies(CUgraphNode, CUgraphNode*, size_t*);
CUresult cuStreamGetCaptureInfo_v2(CUstream, CUstreamCaptureStatus*, cuuint64_t*, CUgraph*, const CUgraphNode**,
                                   size_t*);
CUresult cuStreamUpdateCaptureDependencies(CUstream, CUgraphNode*, size_t, unsigned int);
CUresult cuGraphInstantiate_v2(CUgraphExec*, CUgraph, CUgraphNode*, char*, size_t);
CUresult cuCtxCreate_v2(CUcontext*, unsigned int, CUdevice);
}
struct OlderEntryPoint {
  std::string_view name;
  int below_version;  // requests with cudaVersion below this get `function`
  void* function;
};
const OlderEntryPoint kOlderEntryPoints[] = {
    {"cuStreamGetCaptureInfo", 12030, reinterpret_cast<void*>(&cuStreamGetCaptureInfo_v2)},
    {"cuStreamUpdateCaptureDependencies", 12030, reinterpret_cast<void*>(&cuStreamUpdateCaptureDependencies)},
    {"cuGraphInstantiate", 12000, reinterpret_cast<void*>(&cuGraphInstantiate_v2)},
    {"cuCtxCreate", 12050, reinterpret_cast<void*>(&cuCtxCreate_v2)},
    {"cuGraphNodeGetDependencies", 12030, reinterpret_cast<void*>(&cuGraphNodeGetDependencies)},
};

void* find_implemented(std::string_view name, int cuda_version) {
  for (const OlderEntryPoint& older : kOlderEntryPoints) {
    if (older.name == name && cuda_version < older.below_version) return older.function;
  }
  for (const EntryPoint& entry : kEntryPoints) {
    if (entry.name == name) return entry.function;
  }
  return nullptr;
}

// A name the simulator does not implement resolves to its stub (which says
// so when called): its newest version, as a CUDA 13 caller would get, else
// the base name.
void* find_stub(std::string_view name) {
  const std::string base(name);
  for (const char* suffix : {"_v3", "_v2"}) {
    if (void* stub = find_unsupported_entry_point(base + suffix)) return stub;
  }
  return find_unsupported_entry_point(name);
}

}  // namespace

OOMGUARD_SIM_DRIVER_API CUresult cuGetProcAddress_v2(const char* symbol, void** function, int cuda_version,
                                                     cuuint64_t flags, CUdriverProcAddressQueryResult* status) {
  if (!symbol || !function) return CUDA_ERROR_INVALID_VALUE;
  constexpr cuuint64_t kKnown = CU_GET_PROC_ADDRESS_LEGACY_STREAM | CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
  if ((flags & ~kKnown) != 0) return CUDA_ERROR_INVALID_VALUE;
  // The per-thread-default-stream flag would select the _ptds/_ptsz
  // variants, which are the same functions here.
  const std::string_view name(symbol);
  void* found = find_implemented(name, cuda_version);
  if (!found) found = find_stub(name);
  *function = found;
  if (status) *status = found ? CU_GET_PROC_ADDRESS_SUCCESS : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  if (!found) oomguard_sim_log(2, "driver: cuGetProcAddress(\"%s\"): no such entry point", symbol);
  return found ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

#undef cuGetProcAddress
OOMGUARD_SIM_DRIVER_API CUresult cuGetProcAddress(const char* symbol, void** function, int cuda_version,
                                                  cuuint64_t flags) {
  return cuGetProcAddress_v2(symbol, function, cuda_version, flags, nullptr);
}

// Note [Export tables]
// cuGetExportTable hands out the driver's private tables (keyed by UUIDs
// nobody documents) through which a CUDA runtime linked *statically*
// reaches the driver: cuDNN, cuFFT, cuSOLVER, cuSPARSE, the real cuBLAS
// and NCCL all carry one. The simulator has no such tables, so those
// libraries cannot run on it; refusing here makes each fail at its own
// initialization with its own clear status (CUDNN_STATUS_NOT_INITIALIZED,
// CUFFT_INTERNAL_ERROR, ...) instead of crashing later. cuBLAS and NCCL
// have API-level stand-ins (simulator/cublas, simulator/nccl).
OOMGUARD_SIM_DRIVER_API CUresult cuGetExportTable(const void** table, const CUuuid* id) {
  static std::once_flag once;
  std::call_once(once, [] {
    oomguard_sim_log(1,
                     "driver: cuGetExportTable is not simulated: a library that links the CUDA runtime statically "
                     "(cuDNN, cuFFT, cuSOLVER, cuSPARSE, ...) cannot run on the simulated device and will report "
                     "that it failed to initialize");
  });
  oomguard_sim_unsupported("driver", "cuGetExportTable");
  if (table) *table = nullptr;
  (void)id;
  return CUDA_ERROR_NOT_SUPPORTED;
}
