// A simulated NCCL communicator: who this process is in the clique (rank,
// size, device) and whether it may still be used. Nothing else: no buffers,
// no connections, no proxy thread.
#pragma once

#include <nccl.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

// nccl.h declares `typedef struct ncclComm* ncclComm_t` at global scope; the
// definition has to live there too.
struct ncclComm {
  // Note [Communicator magic]
  // ncclComm_t is an opaque pointer the caller hands back on every call.
  // Real NCCL keeps a start and an end magic in the object and rejects a
  // communicator whose magics are wrong; we do the same, so a pointer to
  // something else (a stray cast, an uninitialised field) is refused with
  // ncclInvalidArgument instead of read as a communicator. A destroyed
  // communicator is not freed (see Note [Communicators outlive destroy]), so
  // its state, not freed memory, answers a use after destroy.
  static constexpr std::uint64_t kMagic = 0x6f6f6d2d6e63636cULL;  // "oom-nccl"

  std::uint64_t start_magic = kMagic;
  int rank = 0;
  int nranks = 1;
  int device = 0;               // CUdevice ordinal (what ncclCommCuDevice reports)
  std::uint64_t clique = 0;     // hash of the unique id: communicators of one clique share it
  bool blocking = true;         // ncclConfig_t::blocking; init never stays ncclInProgress
  enum class State : int { live, finalized, destroyed };
  std::atomic<State> state{State::live};

  // User-defined reduction operators (ncclRedOpCreatePreMulSum): ids from
  // ncclNumOps up, per communicator as in NCCL. Rare, so one lock per
  // communicator is plenty; the common built-in operators never take it.
  std::mutex ops_lock;
  std::vector<bool> user_ops;   // user_ops[op - ncclNumOps]: created and not destroyed

  std::uint64_t end_magic = kMagic;
};

namespace oomguard::sim::nccl {

// A new live communicator, owned by the process registry.
ncclComm* create_communicator(int rank, int nranks, int device, std::uint64_t clique, bool blocking);

// Marks `comm` destroyed (ncclCommDestroy, ncclCommAbort).
void retire_communicator(ncclComm* comm);

// Note [Communicators outlive destroy]
// A destroyed communicator stays allocated until the process exits:
// a call on it after ncclCommDestroy then reads a communicator in the
// destroyed state and fails with ncclInvalidArgument, where freeing it would
// make that call undefined behaviour. A communicator is a few dozen bytes and
// a process makes a handful (one per process group and device), so keeping
// them costs nothing worth measuring. The registry is locked only when one is
// created; calls on a communicator never touch it.

// The checks every entry point makes on a communicator it is given: not
// null, the magics right, not destroyed, and (unless `finalized_ok`) not
// finalized. ncclSuccess, or the error with the last error set.
ncclResult_t check_communicator(const ncclComm* comm, const char* function, bool finalized_ok = false);

// The clique a unique id names, and whether the id came from
// ncclGetUniqueId (an all-zero or foreign id did not).
bool decode_unique_id(const ncclUniqueId& id, std::uint64_t& clique);
void make_unique_id(ncclUniqueId& id);

}  // namespace oomguard::sim::nccl
