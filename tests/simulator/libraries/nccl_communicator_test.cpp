// Communicators: creation from a unique id, queries, children, the end of
// their life, and the errors for anything that is not a live communicator.
#include <cstring>

#include "nccl_fixture.hpp"

namespace {

TEST_F(NcclTest, VersionIsTheHeadersTorchWasBuiltWith) {
  int version = 0;
  ASSERT_EQ(ncclGetVersion(&version), ncclSuccess);
  EXPECT_EQ(version, NCCL_VERSION_CODE);
  EXPECT_EQ(ncclGetVersion(nullptr), ncclInvalidArgument);
}

TEST_F(NcclTest, UniqueIdsDiffer) {
  ncclUniqueId a, b;
  ASSERT_EQ(ncclGetUniqueId(&a), ncclSuccess);
  ASSERT_EQ(ncclGetUniqueId(&b), ncclSuccess);
  EXPECT_NE(std::memcmp(a.internal, b.internal, sizeof a.internal), 0);
}

TEST_F(NcclTest, InitRankRecordsRankSizeAndCurrentDevice) {
  make_current(1);
  ncclComm_t comm = communicator(/*rank=*/1, /*nranks=*/4);
  ASSERT_NE(comm, nullptr);
  int value = -1;
  ASSERT_EQ(ncclCommUserRank(comm, &value), ncclSuccess);
  EXPECT_EQ(value, 1);
  ASSERT_EQ(ncclCommCount(comm, &value), ncclSuccess);
  EXPECT_EQ(value, 4);
  ASSERT_EQ(ncclCommCuDevice(comm, &value), ncclSuccess);
  EXPECT_EQ(value, 1);
  EXPECT_EQ(ncclCommDestroy(comm), ncclSuccess);
}

TEST_F(NcclTest, InitRankRefusesBadRanksAndForeignIds) {
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  ncclComm_t comm = reinterpret_cast<ncclComm_t>(0x1);
  EXPECT_EQ(ncclCommInitRank(&comm, 2, id, 2), ncclInvalidArgument);
  EXPECT_EQ(comm, nullptr);
  EXPECT_NE(last_error().find("rank 2 is not in [0, 2)"), std::string::npos) << last_error();
  EXPECT_EQ(ncclCommInitRank(&comm, 0, id, 0), ncclInvalidArgument);
  EXPECT_EQ(ncclCommInitRank(&comm, 2, id, -1), ncclInvalidArgument);
  ncclUniqueId zero;
  std::memset(&zero, 0, sizeof zero);
  EXPECT_EQ(ncclCommInitRank(&comm, 2, zero, 0), ncclInvalidArgument);
  EXPECT_NE(last_error().find("ncclCommInitRank"), std::string::npos) << last_error();
  EXPECT_EQ(ncclCommInitRank(nullptr, 2, id, 0), ncclInvalidArgument);
}

TEST_F(NcclTest, NonBlockingConfigCompletesAtOnce) {
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  ASSERT_EQ(ncclCommInitRankConfig(&comm, 2, id, 0, &config), ncclSuccess);
  ncclResult_t async = ncclInProgress;
  ASSERT_EQ(ncclCommGetAsyncError(comm, &async), ncclSuccess);
  EXPECT_EQ(async, ncclSuccess);
  EXPECT_EQ(ncclCommDestroy(comm), ncclSuccess);
}

TEST_F(NcclTest, ConfigWithoutInitializerIsRefused) {
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  ncclConfig_t config;
  std::memset(&config, 0, sizeof config);
  ncclComm_t comm = nullptr;
  EXPECT_EQ(ncclCommInitRankConfig(&comm, 2, id, 0, &config), ncclInvalidArgument);
  EXPECT_NE(last_error().find("NCCL_CONFIG_INITIALIZER"), std::string::npos) << last_error();
}

TEST_F(NcclTest, ScalableInitUsesTheFirstId) {
  ncclUniqueId ids[2];
  ASSERT_EQ(ncclGetUniqueId(&ids[0]), ncclSuccess);
  ASSERT_EQ(ncclGetUniqueId(&ids[1]), ncclSuccess);
  ncclComm_t comm = nullptr;
  ASSERT_EQ(ncclCommInitRankScalable(&comm, 8, 5, 2, ids, nullptr), ncclSuccess);
  int rank = -1;
  ASSERT_EQ(ncclCommUserRank(comm, &rank), ncclSuccess);
  EXPECT_EQ(rank, 5);
  EXPECT_EQ(ncclCommInitRankScalable(&comm, 8, 5, 0, ids, nullptr), ncclInvalidArgument);
}

TEST_F(NcclTest, InitAllMakesOneRankPerDevice) {
  ncclComm_t comms[2] = {nullptr, nullptr};
  const int devices[2] = {1, 0};
  ASSERT_EQ(ncclCommInitAll(comms, 2, devices), ncclSuccess);
  for (int i = 0; i < 2; ++i) {
    int rank = -1, device = -1, count = -1;
    ASSERT_EQ(ncclCommUserRank(comms[i], &rank), ncclSuccess);
    ASSERT_EQ(ncclCommCuDevice(comms[i], &device), ncclSuccess);
    ASSERT_EQ(ncclCommCount(comms[i], &count), ncclSuccess);
    EXPECT_EQ(rank, i);
    EXPECT_EQ(device, devices[i]);
    EXPECT_EQ(count, 2);
    EXPECT_EQ(ncclCommDestroy(comms[i]), ncclSuccess);
  }
  const int missing[1] = {7};  // two devices are simulated
  EXPECT_EQ(ncclCommInitAll(comms, 1, missing), ncclInvalidArgument);
  EXPECT_NE(last_error().find("device 7 does not exist"), std::string::npos) << last_error();
}

TEST_F(NcclTest, SplitWithoutColorGivesNoCommunicator) {
  ncclComm_t comm = communicator(1, 2);
  ncclComm_t child = reinterpret_cast<ncclComm_t>(0x1);
  ASSERT_EQ(ncclCommSplit(comm, NCCL_SPLIT_NOCOLOR, 1, &child, nullptr), ncclSuccess);
  EXPECT_EQ(child, nullptr);
  ASSERT_EQ(ncclCommSplit(comm, 0, 1, &child, nullptr), ncclSuccess);
  ASSERT_NE(child, nullptr);
  int rank = -1, count = -1;
  ASSERT_EQ(ncclCommUserRank(child, &rank), ncclSuccess);
  ASSERT_EQ(ncclCommCount(child, &count), ncclSuccess);
  EXPECT_EQ(rank, 1);
  EXPECT_EQ(count, 2);
  EXPECT_EQ(ncclCommSplit(comm, -5, 0, &child, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclCommDestroy(child), ncclSuccess);
  EXPECT_EQ(ncclCommDestroy(comm), ncclSuccess);
}

TEST_F(NcclTest, ShrinkRenumbersTheRemainingRanks) {
  ncclComm_t comm = communicator(3, 4);
  int excluded[2] = {0, 2};
  ncclComm_t child = nullptr;
  ASSERT_EQ(ncclCommShrink(comm, excluded, 2, &child, nullptr, NCCL_SHRINK_DEFAULT), ncclSuccess);
  int rank = -1, count = -1;
  ASSERT_EQ(ncclCommUserRank(child, &rank), ncclSuccess);
  ASSERT_EQ(ncclCommCount(child, &count), ncclSuccess);
  EXPECT_EQ(rank, 1);
  EXPECT_EQ(count, 2);
  int self[1] = {3};
  EXPECT_EQ(ncclCommShrink(comm, self, 1, &child, nullptr, NCCL_SHRINK_DEFAULT), ncclInvalidUsage);
  int outside[1] = {4};
  EXPECT_EQ(ncclCommShrink(comm, outside, 1, &child, nullptr, NCCL_SHRINK_DEFAULT), ncclInvalidArgument);
}

TEST_F(NcclTest, FinalizedCommunicatorOnlyAnswersQueriesAndDestroy) {
  ncclComm_t comm = communicator();
  ASSERT_EQ(ncclCommFinalize(comm), ncclSuccess);
  int count = 0;
  EXPECT_EQ(ncclCommCount(comm, &count), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(nullptr, nullptr, 0, ncclFloat, ncclSum, comm, nullptr), ncclInvalidUsage);
  EXPECT_NE(last_error().find("finalized"), std::string::npos) << last_error();
  EXPECT_EQ(ncclCommDestroy(comm), ncclSuccess);
}

TEST_F(NcclTest, DestroyedOrAbortedCommunicatorIsRefused) {
  ncclComm_t comm = communicator();
  ASSERT_EQ(ncclCommDestroy(comm), ncclSuccess);
  int count = 0;
  EXPECT_EQ(ncclCommCount(comm, &count), ncclInvalidArgument);
  EXPECT_NE(last_error().find("destroyed"), std::string::npos) << last_error();
  EXPECT_EQ(ncclCommDestroy(comm), ncclInvalidArgument);  // a second destroy
  ncclComm_t other = communicator();
  ASSERT_EQ(ncclCommAbort(other), ncclSuccess);
  EXPECT_EQ(ncclBroadcast(nullptr, nullptr, 0, ncclInt8, 0, other, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclCommDestroy(nullptr), ncclSuccess);
}

TEST_F(NcclTest, NullOrForeignPointerIsNotACommunicator) {
  int count = 0;
  EXPECT_EQ(ncclCommCount(nullptr, &count), ncclInvalidArgument);
  EXPECT_NE(last_error().find("NULL"), std::string::npos) << last_error();
  alignas(64) unsigned char not_a_communicator[512] = {};
  ncclComm_t fake = reinterpret_cast<ncclComm_t>(not_a_communicator);
  EXPECT_EQ(ncclCommUserRank(fake, &count), ncclInvalidArgument);
  EXPECT_NE(last_error().find("not a communicator"), std::string::npos) << last_error();
  ncclResult_t async;
  EXPECT_EQ(ncclCommGetAsyncError(fake, &async), ncclInvalidArgument);
}

TEST_F(NcclTest, ErrorStringsNameEveryResult) {
  EXPECT_STREQ(ncclGetErrorString(ncclSuccess), "no error");
  EXPECT_NE(std::string(ncclGetErrorString(ncclInvalidUsage)).find("invalid usage"), std::string::npos);
  EXPECT_NE(std::string(ncclGetErrorString(ncclInProgress)).find("in progress"), std::string::npos);
  // A code a newer NCCL might return: read as an int from the wire, not a named enumerator.
  volatile int from_newer_library = 42;
  ncclResult_t unknown;
  std::memcpy(&unknown, const_cast<const int*>(&from_newer_library), sizeof unknown);
  EXPECT_STREQ(ncclGetErrorString(unknown), "unknown result code");
}

}  // namespace
