// Collectives and point-to-point operations: validated as real NCCL
// validates them, counted, and then done. Nothing is enqueued: the stream
// has no work ahead of it that a collective could wait for (kernels never
// run) and no data crosses processes (Note [Collectives deliver this rank's
// values]), so an operation is complete the moment it is issued, and events
// recorded after it on the stream are too, exactly as if it had run
// instantly.
#include <cuda.h>
#include <nccl.h>
#include <oomguard_sim/sim_api.h>

#include <cstdint>
#include <limits>
#include <optional>

#include "communicator.hpp"
#include "errors.hpp"
#include "group.hpp"

namespace oomguard::sim::nccl {
namespace {

std::size_t element_size(ncclDataType_t type) {
  switch (type) {
    case ncclInt8: case ncclUint8: case ncclFloat8e4m3: case ncclFloat8e5m2: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
    case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
    default: return 0;
  }
}

bool user_op_exists(ncclComm& comm, ncclRedOp_t op) {
  std::lock_guard guard(comm.ops_lock);
  const auto index = static_cast<std::size_t>(op) - ncclNumOps;
  return index < comm.user_ops.size() && comm.user_ops[index];
}

struct Operation {
  const char* function;
  const void* send;        // nullptr where the operation has no send buffer
  const void* recv;        // nullptr where it has no receive buffer
  std::size_t count;
  ncclDataType_t type;
  // Absent where the operation has none: any int a caller passes, -1
  // included, is checked.
  std::optional<int> op = std::nullopt;    // a reduction's operator
  std::optional<int> root = std::nullopt;  // a rooted operation's root
  std::optional<int> peer = std::nullopt;  // send/recv's peer
  bool send_needed = false;
  bool recv_needed = false;
  // What this rank's receive buffer gets (Note [Collectives deliver this
  // rank's values]): `copies` copies of the send buffer's `count` elements
  // from element `send_offset` on, one after another.
  std::size_t copies = 0;
  std::size_t send_offset = 0;
};

// Note [Collectives deliver this rank's values]
// No bytes cross processes. A collective delivers what it would if every
// rank held this rank's data: an all-gather fills each rank's slot with
// this rank's send buffer, an all-reduce, reduce or all-to-all copies the
// send buffer (not a sum), a reduce-scatter this rank's chunk; a broadcast
// leaves a non-root's buffer as it was. With device memory keeping only
// small copies (Note [Copied values] in the driver), that is exactly what
// DDP's start-up check needs: each rank's parameter shapes all-gathered and
// compared with its own. The copies are device-to-device copies on the
// operation's stream, as the real NCCL's kernels are work on it.
ncclResult_t deliver(const Operation& o, std::size_t element_size, cudaStream_t stream) {
  if (o.copies == 0 || o.count == 0 || o.send == nullptr || o.recv == nullptr) return ncclSuccess;
  const std::size_t bytes = o.count * element_size;
  const auto source = reinterpret_cast<CUdeviceptr>(o.send) + o.send_offset * element_size;
  for (std::size_t i = 0; i < o.copies; ++i) {
    const auto destination = reinterpret_cast<CUdeviceptr>(o.recv) + i * bytes;
    if (destination == source) continue;
    if (const CUresult r = cuMemcpyDtoDAsync(destination, source, bytes, reinterpret_cast<CUstream>(stream));
        r != CUDA_SUCCESS) {
      return fail(ncclUnhandledCudaError, o.function, "cuMemcpyDtoDAsync returned CUresult %d", static_cast<int>(r));
    }
  }
  return ncclSuccess;
}

// The checks real NCCL makes before it enqueues (ArgsCheck in enqueue.cc),
// on what the simulator can know: the communicator, the datatype, the
// operator, the root or peer, the buffers (present when count > 0; not
// whether they are device memory), and the stream.
ncclResult_t issue(ncclComm_t comm, cudaStream_t stream, const Operation& o) {
  if (ncclResult_t r = check_communicator(comm, o.function); r != ncclSuccess) return r;
  const std::size_t size = element_size(o.type);
  if (size == 0) return fail(ncclInvalidArgument, o.function, "datatype %d is not an ncclDataType_t", static_cast<int>(o.type));
  if (o.count > std::numeric_limits<std::size_t>::max() / size)
    return fail(ncclInvalidArgument, o.function, "count %zu of %zu-byte elements overflows", o.count, size);
  if (o.op && (*o.op < 0 || (*o.op >= ncclNumOps && !user_op_exists(*comm, static_cast<ncclRedOp_t>(*o.op)))))
    return fail(ncclInvalidArgument, o.function, "reduction operator %d is neither built in nor created on this communicator",
                *o.op);
  if (o.root && (*o.root < 0 || *o.root >= comm->nranks))
    return fail(ncclInvalidArgument, o.function, "root %d is not in [0, %d)", *o.root, comm->nranks);
  if (o.peer && (*o.peer < 0 || *o.peer >= comm->nranks))
    return fail(ncclInvalidArgument, o.function, "peer %d is not in [0, %d)", *o.peer, comm->nranks);
  if (o.count > 0 && o.send_needed && o.send == nullptr)
    return fail(ncclInvalidArgument, o.function, "sendbuff is NULL for %zu elements", o.count);
  if (o.count > 0 && o.recv_needed && o.recv == nullptr)
    return fail(ncclInvalidArgument, o.function, "recvbuff is NULL for %zu elements", o.count);
  // A stream handle that the driver does not know (destroyed, or never a
  // stream) fails here, as the real kernel launch would fail. Asked with
  // cuStreamIsCapturing, not cuStreamQuery: querying a capturing stream
  // invalidates its capture, and NCCL operations are captured into CUDA
  // graphs (where the real one adds a kernel node; here the graph simply has
  // nothing to replay for it).
  CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
  const CUresult s = cuStreamIsCapturing(reinterpret_cast<CUstream>(stream), &capture);
  if (s != CUDA_SUCCESS)
    return fail(ncclUnhandledCudaError, o.function, "stream %p: cuStreamIsCapturing returned CUresult %d",
                static_cast<void*>(stream), static_cast<int>(s));
  if (capture == CU_STREAM_CAPTURE_STATUS_NONE) {
    if (ncclResult_t r = deliver(o, size, stream); r != ncclSuccess) return r;
  }
  oomguard_sim_count_call("nccl", o.function);
  if (oomguard_sim_log_level() >= 3)
    oomguard_sim_log(3, "nccl: %s rank %d of %d, %zu bytes, stream %p%s", o.function, comm->rank, comm->nranks,
                     o.count * size, static_cast<void*>(stream), group_depth() > 0 ? " (in a group)" : "");
  return ncclSuccess;
}

}  // namespace
}  // namespace oomguard::sim::nccl

using namespace oomguard::sim::nccl;

extern "C" {

OOMGUARD_SIM_EXPORT ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                                               ncclDataType_t type, ncclRedOp_t op, ncclComm_t comm,
                                               cudaStream_t stream) {
  return issue(comm, stream, {.function = __func__, .send = sendbuff, .recv = recvbuff, .count = count, .type = type,
                              .op = op, .send_needed = true, .recv_needed = true, .copies = 1});
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t type,
                                               int root, ncclComm_t comm, cudaStream_t stream) {
  // Only the root's send buffer is read.
  const bool is_root = comm != nullptr && root == comm->rank;
  return issue(comm, stream, {.function = __func__, .send = sendbuff, .recv = recvbuff, .count = count, .type = type,
                              .root = root, .send_needed = is_root, .recv_needed = true,
                              .copies = is_root ? 1u : 0u});
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclBcast(void* buff, size_t count, ncclDataType_t type, int root, ncclComm_t comm,
                                           cudaStream_t stream) {
  return issue(comm, stream, {.function = __func__, .send = buff, .recv = buff, .count = count, .type = type,
                              .root = root, .send_needed = true, .recv_needed = true});
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t type,
                                            ncclRedOp_t op, int root, ncclComm_t comm, cudaStream_t stream) {
  // Only the root's receive buffer is written.
  const bool is_root = comm != nullptr && root == comm->rank;
  return issue(comm, stream, {.function = __func__, .send = sendbuff, .recv = recvbuff, .count = count, .type = type,
                              .op = op, .root = root, .send_needed = true, .recv_needed = is_root,
                              .copies = is_root ? 1u : 0u});
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                                               ncclDataType_t type, ncclComm_t comm, cudaStream_t stream) {
  return issue(comm, stream, {.function = __func__, .send = sendbuff, .recv = recvbuff, .count = sendcount,
                              .type = type, .send_needed = true, .recv_needed = true,
                              .copies = comm != nullptr && comm->nranks > 0 ? static_cast<std::size_t>(comm->nranks) : 0u});
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                                   ncclDataType_t type, ncclRedOp_t op, ncclComm_t comm,
                                                   cudaStream_t stream) {
  return issue(comm, stream, {.function = __func__, .send = sendbuff, .recv = recvbuff, .count = recvcount,
                              .type = type, .op = op, .send_needed = true, .recv_needed = true, .copies = 1,
                              .send_offset = comm != nullptr && comm->rank > 0 ? static_cast<std::size_t>(comm->rank) * recvcount : 0u});
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclAlltoAll(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t type,
                                              ncclComm_t comm, cudaStream_t stream) {
  return issue(comm, stream, {.function = __func__, .send = sendbuff, .recv = recvbuff, .count = count, .type = type,
                              .send_needed = true, .recv_needed = true});
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclGather(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t type,
                                            int root, ncclComm_t comm, cudaStream_t stream) {
  const bool is_root = comm != nullptr && root == comm->rank;
  return issue(comm, stream, {.function = __func__, .send = sendbuff, .recv = recvbuff, .count = count, .type = type,
                              .root = root, .send_needed = true, .recv_needed = is_root});
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclScatter(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t type,
                                             int root, ncclComm_t comm, cudaStream_t stream) {
  const bool is_root = comm != nullptr && root == comm->rank;
  return issue(comm, stream, {.function = __func__, .send = sendbuff, .recv = recvbuff, .count = count, .type = type,
                              .root = root, .send_needed = is_root, .recv_needed = true});
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclSend(const void* sendbuff, size_t count, ncclDataType_t type, int peer,
                                          ncclComm_t comm, cudaStream_t stream) {
  return issue(comm, stream, {.function = __func__, .send = sendbuff, .recv = nullptr, .count = count, .type = type,
                              .peer = peer, .send_needed = true});
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclRecv(void* recvbuff, size_t count, ncclDataType_t type, int peer,
                                          ncclComm_t comm, cudaStream_t stream) {
  return issue(comm, stream, {.function = __func__, .send = nullptr, .recv = recvbuff, .count = count, .type = type,
                              .peer = peer, .recv_needed = true});
}

// User-defined operators: the scalar is never read (nothing is reduced);
// the operator only has to exist until it is destroyed.
OOMGUARD_SIM_EXPORT ncclResult_t ncclRedOpCreatePreMulSum(ncclRedOp_t* op, void* scalar, ncclDataType_t type,
                                                          ncclScalarResidence_t residence, ncclComm_t comm) {
  if (ncclResult_t r = check_communicator(comm, __func__); r != ncclSuccess) return r;
  if (op == nullptr || scalar == nullptr)
    return fail(ncclInvalidArgument, __func__, "op %p, scalar %p: neither may be NULL", static_cast<void*>(op), scalar);
  if (element_size(type) == 0) return fail(ncclInvalidArgument, __func__, "datatype %d is not an ncclDataType_t", type);
  if (residence != ncclScalarDevice && residence != ncclScalarHostImmediate)
    return fail(ncclInvalidArgument, __func__, "residence %d is neither device nor host-immediate", residence);
  std::lock_guard guard(comm->ops_lock);
  std::size_t index = 0;
  while (index < comm->user_ops.size() && comm->user_ops[index]) ++index;  // reuse a destroyed id first
  if (index == comm->user_ops.size()) comm->user_ops.push_back(true);
  comm->user_ops[index] = true;
  *op = static_cast<ncclRedOp_t>(ncclNumOps + static_cast<int>(index));
  return ncclSuccess;
}

OOMGUARD_SIM_EXPORT ncclResult_t ncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm) {
  if (ncclResult_t r = check_communicator(comm, __func__, /*finalized_ok=*/true); r != ncclSuccess) return r;
  std::lock_guard guard(comm->ops_lock);
  const auto index = static_cast<std::size_t>(op) - ncclNumOps;
  if (static_cast<int>(op) < ncclNumOps || index >= comm->user_ops.size() || !comm->user_ops[index])
    return fail(ncclInvalidArgument, __func__, "operator %d was not created by ncclRedOpCreatePreMulSum on this communicator",
                static_cast<int>(op));
  comm->user_ops[index] = false;
  return ncclSuccess;
}

}  // extern "C"
