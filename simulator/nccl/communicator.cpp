#include "communicator.hpp"

#include <oomguard_sim/sim_api.h>

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <memory>

#include "errors.hpp"

namespace oomguard::sim::nccl {
namespace {

struct Registry {
  std::mutex lock;
  std::deque<std::unique_ptr<ncclComm>> communicators;  // Note [Communicators outlive destroy]
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: calls may come from other libraries' destructors
  return *r;
}

// Note [Unique ids]
// Real NCCL's unique id carries rank 0's bootstrap address; the other ranks
// connect to it. Here the ranks never talk (each is its own process and no
// data moves), so the id only has to name the clique: a magic, so that an id
// not made by ncclGetUniqueId is refused as real NCCL would fail to connect,
// and a 64-bit clique number from the pid, the clock and a counter.
constexpr char kIdMagic[16] = "oomguard-sim-id";

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

ncclComm* create_communicator(int rank, int nranks, int device, std::uint64_t clique, bool blocking) {
  auto comm = std::make_unique<ncclComm>();
  comm->rank = rank;
  comm->nranks = nranks;
  comm->device = device;
  comm->clique = clique;
  comm->blocking = blocking;
  ncclComm* raw = comm.get();
  Registry& r = registry();
  std::lock_guard guard(r.lock);
  r.communicators.push_back(std::move(comm));
  return raw;
}

void retire_communicator(ncclComm* comm) { comm->state.store(ncclComm::State::destroyed, std::memory_order_release); }

ncclResult_t check_communicator(const ncclComm* comm, const char* function, bool finalized_ok) {
  if (comm == nullptr) return fail(ncclInvalidArgument, function, "communicator is NULL");
  if (comm->start_magic != ncclComm::kMagic || comm->end_magic != ncclComm::kMagic)
    return fail(ncclInvalidArgument, function, "%p is not a communicator (wrong magic)", static_cast<const void*>(comm));
  switch (comm->state.load(std::memory_order_acquire)) {
    case ncclComm::State::live: return ncclSuccess;
    case ncclComm::State::finalized:
      if (finalized_ok) return ncclSuccess;
      return fail(ncclInvalidUsage, function, "communicator (rank %d of %d) was finalized", comm->rank, comm->nranks);
    case ncclComm::State::destroyed:
      return fail(ncclInvalidArgument, function, "communicator (rank %d of %d) was destroyed or aborted", comm->rank,
                  comm->nranks);
  }
  return fail(ncclInternalError, function, "communicator in an unknown state");
}

void make_unique_id(ncclUniqueId& id) {
  static std::atomic<std::uint64_t> counter{0};
  const auto now = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  const std::uint64_t clique =
      mix(now ^ (static_cast<std::uint64_t>(getpid()) << 32) ^ mix(counter.fetch_add(1, std::memory_order_relaxed)));
  std::memset(id.internal, 0, sizeof id.internal);
  std::memcpy(id.internal, kIdMagic, sizeof kIdMagic);
  std::memcpy(id.internal + sizeof kIdMagic, &clique, sizeof clique);
}

bool decode_unique_id(const ncclUniqueId& id, std::uint64_t& clique) {
  if (std::memcmp(id.internal, kIdMagic, sizeof kIdMagic) != 0) return false;
  std::memcpy(&clique, id.internal + sizeof kIdMagic, sizeof clique);
  return true;
}

}  // namespace oomguard::sim::nccl
