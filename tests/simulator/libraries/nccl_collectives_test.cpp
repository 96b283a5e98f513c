// Collectives and point-to-point operations on streams, groups, reduction
// operators, and the memory NCCL allocates or registers.
#include <oomguard_sim/sim_api.h>

#include "nccl_fixture.hpp"

namespace {

class NcclCollectivesTest : public NcclTest {
 protected:
  void SetUp() override {
    NcclTest::SetUp();
    comm_ = communicator(0, 2);
    ASSERT_NE(comm_, nullptr);
    ASSERT_EQ(cuStreamCreate(&stream_, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
    ASSERT_EQ(cuMemAlloc(&send_, kBytes), CUDA_SUCCESS);
    ASSERT_EQ(cuMemAlloc(&recv_, 2 * kBytes), CUDA_SUCCESS);
  }
  void TearDown() override {
    cuMemFree(send_);
    cuMemFree(recv_);
    cuStreamDestroy(stream_);
    ncclCommDestroy(comm_);
    NcclTest::TearDown();
  }

  static constexpr std::size_t kBytes = 1 << 20;
  static constexpr std::size_t kFloats = kBytes / sizeof(float);
  const void* send() const { return reinterpret_cast<const void*>(send_); }
  void* recv() const { return reinterpret_cast<void*>(recv_); }
  cudaStream_t stream() const { return reinterpret_cast<cudaStream_t>(stream_); }

  ncclComm_t comm_ = nullptr;
  CUstream stream_ = nullptr;
  CUdeviceptr send_ = 0, recv_ = 0;
};

TEST_F(NcclCollectivesTest, EveryCollectiveCompletesOnItsStream) {
  EXPECT_EQ(ncclAllReduce(send(), recv(), kFloats, ncclFloat, ncclSum, comm_, stream()), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(recv(), recv(), kFloats, ncclBfloat16, ncclAvg, comm_, stream()), ncclSuccess);  // in place
  EXPECT_EQ(ncclBroadcast(send(), recv(), kFloats, ncclFloat, 1, comm_, stream()), ncclSuccess);
  EXPECT_EQ(ncclBcast(recv(), kFloats, ncclFloat, 0, comm_, stream()), ncclSuccess);
  EXPECT_EQ(ncclReduce(send(), recv(), kFloats, ncclFloat, ncclMax, 1, comm_, stream()), ncclSuccess);
  EXPECT_EQ(ncclAllGather(send(), recv(), kFloats, ncclFloat, comm_, stream()), ncclSuccess);
  EXPECT_EQ(ncclReduceScatter(recv(), recv(), kFloats, ncclFloat, ncclSum, comm_, stream()), ncclSuccess);
  EXPECT_EQ(ncclAlltoAll(send(), recv(), kFloats / 2, ncclFloat, comm_, stream()), ncclSuccess);
  // Work recorded behind them is complete: nothing was left on the stream.
  CUevent done = nullptr;
  ASSERT_EQ(cuEventCreate(&done, CU_EVENT_DEFAULT), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(done, stream_), CUDA_SUCCESS);
  EXPECT_EQ(cuEventQuery(done), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamSynchronize(stream_), CUDA_SUCCESS);
  EXPECT_EQ(cuEventDestroy(done), CUDA_SUCCESS);
}

TEST_F(NcclCollectivesTest, DefaultAndPerThreadStreamsAreStreams) {
  EXPECT_EQ(ncclAllReduce(send(), recv(), kFloats, ncclFloat, ncclSum, comm_, nullptr), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(send(), recv(), kFloats, ncclFloat, ncclSum, comm_,
                          reinterpret_cast<cudaStream_t>(CU_STREAM_PER_THREAD)),
            ncclSuccess);
}

TEST_F(NcclCollectivesTest, DestroyedStreamIsRefused) {
  CUstream gone = nullptr;
  ASSERT_EQ(cuStreamCreate(&gone, CU_STREAM_DEFAULT), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamDestroy(gone), CUDA_SUCCESS);
  EXPECT_EQ(ncclAllReduce(send(), recv(), kFloats, ncclFloat, ncclSum, comm_, reinterpret_cast<cudaStream_t>(gone)),
            ncclUnhandledCudaError);
  EXPECT_NE(last_error().find("cuStreamIsCapturing"), std::string::npos) << last_error();
}

TEST_F(NcclCollectivesTest, ArgumentsAreCheckedAsNcclChecksThem) {
  EXPECT_EQ(ncclAllReduce(nullptr, recv(), kFloats, ncclFloat, ncclSum, comm_, stream()), ncclInvalidArgument);
  EXPECT_NE(last_error().find("sendbuff is NULL"), std::string::npos) << last_error();
  EXPECT_EQ(ncclAllReduce(nullptr, nullptr, 0, ncclFloat, ncclSum, comm_, stream()), ncclSuccess);  // nothing to move
  EXPECT_EQ(ncclAllReduce(send(), recv(), kFloats, static_cast<ncclDataType_t>(ncclNumTypes), ncclSum, comm_,
                          stream()),
            ncclInvalidArgument);
  EXPECT_EQ(ncclAllReduce(send(), recv(), kFloats, ncclFloat, static_cast<ncclRedOp_t>(ncclNumOps), comm_, stream()),
            ncclInvalidArgument);
  EXPECT_EQ(ncclBroadcast(send(), recv(), kFloats, ncclFloat, 2, comm_, stream()), ncclInvalidArgument);
  EXPECT_NE(last_error().find("root 2 is not in [0, 2)"), std::string::npos) << last_error();
  EXPECT_EQ(ncclReduce(send(), recv(), kFloats, ncclFloat, ncclSum, -1, comm_, stream()), ncclInvalidArgument);
  EXPECT_EQ(ncclAllGather(send(), nullptr, kFloats, ncclFloat, comm_, stream()), ncclInvalidArgument);
  // A broadcast reads only the root's send buffer, a reduce writes only the root's receive buffer.
  EXPECT_EQ(ncclBroadcast(nullptr, recv(), kFloats, ncclFloat, 1, comm_, stream()), ncclSuccess);
  EXPECT_EQ(ncclReduce(send(), nullptr, kFloats, ncclFloat, ncclSum, 1, comm_, stream()), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(send(), recv(), kFloats, ncclFloat, ncclSum, nullptr, stream()), ncclInvalidArgument);
}

TEST_F(NcclCollectivesTest, SendAndRecvInAGroup) {
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  EXPECT_EQ(ncclSend(send(), kFloats, ncclFloat, 1, comm_, stream()), ncclSuccess);
  EXPECT_EQ(ncclRecv(recv(), kFloats, ncclFloat, 1, comm_, stream()), ncclSuccess);
  EXPECT_EQ(ncclSend(send(), kFloats, ncclFloat, 0, comm_, stream()), ncclSuccess);  // to itself
  EXPECT_EQ(ncclRecv(recv(), kFloats, ncclFloat, 0, comm_, stream()), ncclSuccess);
  EXPECT_EQ(ncclSend(send(), kFloats, ncclFloat, 2, comm_, stream()), ncclInvalidArgument);
  EXPECT_NE(last_error().find("peer 2 is not in [0, 2)"), std::string::npos) << last_error();
  EXPECT_EQ(ncclRecv(nullptr, kFloats, ncclFloat, 1, comm_, stream()), ncclInvalidArgument);
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess);
}

TEST_F(NcclCollectivesTest, GroupsNestAndAnUnmatchedEndIsAnError) {
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(send(), recv(), kFloats, ncclFloat, ncclSum, comm_, stream()), ncclSuccess);
  EXPECT_EQ(ncclGroupEnd(), ncclSuccess);
  EXPECT_EQ(ncclGroupEnd(), ncclSuccess);
  EXPECT_EQ(ncclGroupEnd(), ncclInvalidUsage);
  EXPECT_NE(last_error().find("no group was started"), std::string::npos) << last_error();
  ncclSimInfo_t info = NCCL_SIM_INFO_INITIALIZER;
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  EXPECT_EQ(ncclAllGather(send(), recv(), kFloats, ncclFloat, comm_, stream()), ncclSuccess);
  EXPECT_EQ(ncclGroupSimulateEnd(&info), ncclSuccess);
  EXPECT_EQ(info.estimatedTime, 0.0f);
  EXPECT_EQ(ncclGroupSimulateEnd(&info), ncclInvalidUsage);  // that group has ended
}

TEST_F(NcclCollectivesTest, PreMulSumOperatorsLiveUntilDestroyed) {
  float scale = 0.5f;
  ncclRedOp_t op;
  ASSERT_EQ(ncclRedOpCreatePreMulSum(&op, &scale, ncclFloat, ncclScalarHostImmediate, comm_), ncclSuccess);
  EXPECT_GE(static_cast<int>(op), static_cast<int>(ncclNumOps));
  EXPECT_EQ(ncclAllReduce(send(), recv(), kFloats, ncclFloat, op, comm_, stream()), ncclSuccess);
  ncclComm_t other = communicator(1, 2);
  EXPECT_EQ(ncclAllReduce(send(), recv(), kFloats, ncclFloat, op, other, stream()), ncclInvalidArgument);
  EXPECT_EQ(ncclRedOpDestroy(op, other), ncclInvalidArgument);
  ASSERT_EQ(ncclRedOpDestroy(op, comm_), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(send(), recv(), kFloats, ncclFloat, op, comm_, stream()), ncclInvalidArgument);
  EXPECT_EQ(ncclRedOpDestroy(op, comm_), ncclInvalidArgument);
  EXPECT_EQ(ncclRedOpDestroy(ncclSum, comm_), ncclInvalidArgument);
  ncclCommDestroy(other);
}

TEST_F(NcclCollectivesTest, MemAllocIsChargedToTheDevice) {
  std::uint64_t before = 0, after = 0, peak = 0, total = 0;
  ASSERT_EQ(oomguard_sim_memory(0, &before, &peak, &total), 0);
  void* buffer = nullptr;
  ASSERT_EQ(ncclMemAlloc(&buffer, 64 << 20), ncclSuccess);
  ASSERT_NE(buffer, nullptr);
  ASSERT_EQ(oomguard_sim_memory(0, &after, &peak, &total), 0);
  EXPECT_EQ(after - before, std::uint64_t{64} << 20);
  ASSERT_EQ(ncclMemFree(buffer), ncclSuccess);
  ASSERT_EQ(oomguard_sim_memory(0, &after, &peak, &total), 0);
  EXPECT_EQ(after, before);
  EXPECT_EQ(ncclMemFree(nullptr), ncclSuccess);
  // More than the device has fails as the driver's allocation fails.
  EXPECT_EQ(ncclMemAlloc(&buffer, std::size_t{1} << 40), ncclUnhandledCudaError);
  EXPECT_EQ(buffer, nullptr);
}

TEST_F(NcclCollectivesTest, RegistrationsBelongToTheirCommunicator) {
  void* handle = nullptr;
  ASSERT_EQ(ncclCommRegister(comm_, recv(), 2 * kBytes, &handle), ncclSuccess);
  ASSERT_NE(handle, nullptr);
  ncclComm_t other = communicator(1, 2);
  EXPECT_EQ(ncclCommDeregister(other, handle), ncclInvalidArgument);
  EXPECT_EQ(ncclCommDeregister(comm_, handle), ncclSuccess);
  unsigned char not_a_handle[64] = {};
  EXPECT_EQ(ncclCommDeregister(comm_, not_a_handle), ncclInvalidArgument);
  ncclWindow_t window = nullptr;
  ASSERT_EQ(ncclCommWindowRegister(comm_, recv(), 2 * kBytes, &window, NCCL_WIN_COLL_SYMMETRIC), ncclSuccess);
  EXPECT_EQ(ncclCommWindowDeregister(comm_, window), ncclSuccess);
  ncclCommDestroy(other);
}

}  // namespace
