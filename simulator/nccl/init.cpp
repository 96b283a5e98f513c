// Creating, querying and ending communicators.
#include <cuda.h>
#include <oomguard_sim/sim_api.h>

#include <algorithm>

#include "communicator.hpp"
#include "errors.hpp"

namespace oomguard::sim::nccl {
namespace {

constexpr unsigned kConfigMagic = 0xcafebeef;  // NCCL_CONFIG_INITIALIZER's

// The device NCCL binds a new communicator to: the calling thread's current
// one, as real NCCL's cudaGetDevice; device 0 when no context is current yet,
// which is what cudaGetDevice answers then.
ncclResult_t current_device(const char* function, int& device) {
  CUresult r = cuInit(0);
  if (r != CUDA_SUCCESS) return fail(ncclUnhandledCudaError, function, "cuInit failed (CUresult %d)", static_cast<int>(r));
  CUdevice current = 0;
  r = cuCtxGetDevice(&current);
  device = r == CUDA_SUCCESS ? static_cast<int>(current) : 0;
  return ncclSuccess;
}

ncclResult_t check_device(const char* function, int device) {
  int count = 0;
  const CUresult r = cuDeviceGetCount(&count);
  if (r != CUDA_SUCCESS)
    return fail(ncclUnhandledCudaError, function, "cuDeviceGetCount failed (CUresult %d)", static_cast<int>(r));
  if (device < 0 || device >= count)
    return fail(ncclInvalidArgument, function, "device %d does not exist (%d visible)", device, count);
  return ncclSuccess;
}

// A config must come from NCCL_CONFIG_INITIALIZER: real NCCL refuses one
// whose size or magic is wrong. Only `blocking` means anything here.
ncclResult_t read_config(const char* function, const ncclConfig_t* config, bool& blocking) {
  blocking = true;
  if (config == nullptr) return ncclSuccess;
  if (config->magic != kConfigMagic || config->size < offsetof(ncclConfig_t, blocking) + sizeof(int))
    return fail(ncclInvalidArgument, function,
                "config was not set up with NCCL_CONFIG_INITIALIZER (magic 0x%x, size %zu)", config->magic,
                config->size);
  blocking = config->blocking != 0;  // NCCL_CONFIG_UNDEF_INT (INT_MIN) means the default, blocking
  return ncclSuccess;
}

ncclResult_t init_rank(const char* function, ncclComm_t* out, int nranks, const ncclUniqueId& id, int rank,
                       const ncclConfig_t* config) {
  if (out == nullptr) return fail(ncclInvalidArgument, function, "newcomm is NULL");
  *out = nullptr;
  if (nranks < 1) return fail(ncclInvalidArgument, function, "nranks %d: at least 1 is needed", nranks);
  if (rank < 0 || rank >= nranks) return fail(ncclInvalidArgument, function, "rank %d is not in [0, %d)", rank, nranks);
  std::uint64_t clique = 0;
  if (!decode_unique_id(id, clique))
    return fail(ncclInvalidArgument, function, "the unique id was not made by ncclGetUniqueId");
  bool blocking = true;
  if (ncclResult_t r = read_config(function, config, blocking); r != ncclSuccess) return r;
  int device = 0;
  if (ncclResult_t r = current_device(function, device); r != ncclSuccess) return r;
  *out = create_communicator(rank, nranks, device, clique, blocking);
  oomguard_sim_log(2, "nccl: communicator %p rank %d of %d on device %d", static_cast<void*>(*out), rank, nranks,
                   device);
  return ncclSuccess;
}

// A child communicator's clique: its parent's, told apart by what made it.
std::uint64_t child_clique(const ncclComm& parent, std::uint64_t salt) {
  return (parent.clique ^ (salt * 0x9e3779b97f4a7c15ULL)) + 1;
}

}  // namespace
}  // namespace oomguard::sim::nccl

using namespace oomguard::sim::nccl;

extern "C" {

OOMGUARD_SIM_EXPORT ncclResult_t ncclGetVersion(int* version) {
  if (version == nullptr) return fail(ncclInvalidArgument, __func__, "version is NULL");
  *version = NCCL_VERSION_CODE;  // the nccl.h this was built with: the one torch was built with
  return ncclSuccess;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  if (id == nullptr) return fail(ncclInvalidArgument, __func__, "uniqueId is NULL");
  make_unique_id(*id);
  return ncclSuccess;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  return init_rank(__func__, comm, nranks, id, rank, nullptr);
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank,
                                                        ncclConfig_t* config) {
  return init_rank(__func__, comm, nranks, id, rank, config);
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommInitRankScalable(ncclComm_t* comm, int nranks, int rank, int nIds,
                                                          ncclUniqueId* ids, ncclConfig_t* config) {
  // Several ids spread the bootstrap over several roots; the first names the clique.
  if (nIds < 1 || ids == nullptr)
    return fail(ncclInvalidArgument, __func__, "%d unique ids at %p: at least one is needed", nIds,
                static_cast<void*>(ids));
  return init_rank(__func__, comm, nranks, ids[0], rank, config);
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommInitAll(ncclComm_t* comms, int ndev, const int* devlist) {
  // One process drives `ndev` devices: every rank is here, so nothing is assumed.
  if (comms == nullptr) return fail(ncclInvalidArgument, __func__, "comms is NULL");
  if (ndev < 1) return fail(ncclInvalidArgument, __func__, "ndev %d: at least 1 is needed", ndev);
  for (int i = 0; i < ndev; ++i)
    if (ncclResult_t r = check_device(__func__, devlist ? devlist[i] : i); r != ncclSuccess) return r;
  ncclUniqueId id;
  make_unique_id(id);
  std::uint64_t clique = 0;
  decode_unique_id(id, clique);
  for (int i = 0; i < ndev; ++i) comms[i] = create_communicator(i, ndev, devlist ? devlist[i] : i, clique, true);
  return ncclSuccess;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t* newcomm,
                                               ncclConfig_t* config) {
  if (ncclResult_t r = check_communicator(comm, __func__); r != ncclSuccess) return r;
  if (newcomm == nullptr) return fail(ncclInvalidArgument, __func__, "newcomm is NULL");
  *newcomm = nullptr;
  if (color == NCCL_SPLIT_NOCOLOR) return ncclSuccess;  // this rank joins no child
  if (color < 0) return fail(ncclInvalidArgument, __func__, "color %d: colors are >= 0 or NCCL_SPLIT_NOCOLOR", color);
  bool blocking = comm->blocking;
  if (config != nullptr)
    if (ncclResult_t r = read_config(__func__, config, blocking); r != ncclSuccess) return r;
  // Note [Split without peers]
  // A split is collective: the child's size is the number of ranks that
  // passed the same color and its rank the order of `key` among them. Each
  // process only knows its own color and key, so the child gets the
  // parent's size and, clamped into it, the key as its rank. That is exact
  // for the splits torch makes by default (every rank, color 0 or one color
  // per new group of all ranks, key = rank) and wrong in size only for a
  // child of some of the ranks, where nothing here reads the size.
  const int rank = std::clamp(key, 0, comm->nranks - 1);
  *newcomm = create_communicator(rank, comm->nranks, comm->device,
                                 child_clique(*comm, static_cast<std::uint64_t>(color) + 1), blocking);
  return ncclSuccess;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommShrink(ncclComm_t comm, int* exclude, int excludeCount, ncclComm_t* newcomm,
                                                ncclConfig_t* config, int /*shrinkFlags*/) {
  // Unlike a split, a shrink is fully known locally: the excluded ranks are named.
  if (ncclResult_t r = check_communicator(comm, __func__); r != ncclSuccess) return r;
  if (newcomm == nullptr) return fail(ncclInvalidArgument, __func__, "newcomm is NULL");
  *newcomm = nullptr;
  if (excludeCount < 0 || (excludeCount > 0 && exclude == nullptr))
    return fail(ncclInvalidArgument, __func__, "%d excluded ranks at %p", excludeCount, static_cast<void*>(exclude));
  bool blocking = comm->blocking;
  if (config != nullptr)
    if (ncclResult_t r = read_config(__func__, config, blocking); r != ncclSuccess) return r;
  int below = 0;
  std::vector<bool> excluded(static_cast<std::size_t>(comm->nranks), false);
  for (int i = 0; i < excludeCount; ++i) {
    const int x = exclude[i];
    if (x < 0 || x >= comm->nranks)
      return fail(ncclInvalidArgument, __func__, "excluded rank %d is not in [0, %d)", x, comm->nranks);
    if (excluded[static_cast<std::size_t>(x)]) continue;
    excluded[static_cast<std::size_t>(x)] = true;
    if (x < comm->rank) ++below;
  }
  if (excluded[static_cast<std::size_t>(comm->rank)])
    return fail(ncclInvalidUsage, __func__, "rank %d excludes itself", comm->rank);
  const int remaining = static_cast<int>(std::count(excluded.begin(), excluded.end(), false));
  *newcomm = create_communicator(comm->rank - below, remaining, comm->device,
                                 child_clique(*comm, 0xffffffffULL + static_cast<std::uint64_t>(remaining)), blocking);
  return ncclSuccess;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommFinalize(ncclComm_t comm) {
  if (ncclResult_t r = check_communicator(comm, __func__); r != ncclSuccess) return r;
  comm->state.store(ncclComm::State::finalized, std::memory_order_release);
  return ncclSuccess;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;  // as NCCL: destroying NULL is a no-op
  if (ncclResult_t r = check_communicator(comm, __func__, /*finalized_ok=*/true); r != ncclSuccess) return r;
  retire_communicator(comm);
  return ncclSuccess;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  if (ncclResult_t r = check_communicator(comm, __func__, /*finalized_ok=*/true); r != ncclSuccess) return r;
  retire_communicator(comm);
  return ncclSuccess;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommRevoke(ncclComm_t comm, int revokeFlags) {
  if (ncclResult_t r = check_communicator(comm, __func__, /*finalized_ok=*/true); r != ncclSuccess) return r;
  if (revokeFlags != NCCL_REVOKE_DEFAULT)
    return fail(ncclInvalidArgument, __func__, "revokeFlags %d: only NCCL_REVOKE_DEFAULT (0)", revokeFlags);
  return ncclSuccess;  // nothing is ever in flight
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError) {
  if (ncclResult_t r = check_communicator(comm, __func__, /*finalized_ok=*/true); r != ncclSuccess) return r;
  if (asyncError == nullptr) return fail(ncclInvalidArgument, __func__, "asyncError is NULL");
  // Initialisation and every operation complete at once, also for a
  // non-blocking communicator, and no peer can fail: never ncclInProgress.
  *asyncError = ncclSuccess;
  return ncclSuccess;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
  if (ncclResult_t r = check_communicator(comm, __func__, true); r != ncclSuccess) return r;
  if (count == nullptr) return fail(ncclInvalidArgument, __func__, "count is NULL");
  *count = comm->nranks;
  return ncclSuccess;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int* device) {
  if (ncclResult_t r = check_communicator(comm, __func__, true); r != ncclSuccess) return r;
  if (device == nullptr) return fail(ncclInvalidArgument, __func__, "device is NULL");
  *device = comm->device;
  return ncclSuccess;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
  if (ncclResult_t r = check_communicator(comm, __func__, true); r != ncclSuccess) return r;
  if (rank == nullptr) return fail(ncclInvalidArgument, __func__, "rank is NULL");
  *rank = comm->rank;
  return ncclSuccess;
}

}  // extern "C"
