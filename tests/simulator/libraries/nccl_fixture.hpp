// What every NCCL test starts from: the simulated driver initialised and a
// device's primary context current, as torch leaves it before it creates a
// communicator.
#pragma once

#include <cuda.h>
#include <gtest/gtest.h>
#include <nccl.h>

#include <string>

class NcclTest : public ::testing::Test {
 protected:
  void SetUp() override { make_current(0); }

  void TearDown() override {
    for (int i = 0; i < 2; ++i)
      if (retained_[i]) cuDevicePrimaryCtxRelease(devices_[i]);
  }

  void make_current(int ordinal) {
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
    ASSERT_EQ(cuDeviceGet(&devices_[ordinal], ordinal), CUDA_SUCCESS);
    CUcontext context = nullptr;
    ASSERT_EQ(cuDevicePrimaryCtxRetain(&context, devices_[ordinal]), CUDA_SUCCESS);
    retained_[ordinal] = true;
    ASSERT_EQ(cuCtxSetCurrent(context), CUDA_SUCCESS);
  }

  // A communicator of `nranks` in which this process is `rank`.
  static ncclComm_t communicator(int rank = 0, int nranks = 2) {
    ncclUniqueId id;
    EXPECT_EQ(ncclGetUniqueId(&id), ncclSuccess);
    ncclComm_t comm = nullptr;
    EXPECT_EQ(ncclCommInitRank(&comm, nranks, id, rank), ncclSuccess);
    return comm;
  }

  static std::string last_error() { return ncclGetLastError(nullptr); }

 private:
  CUdevice devices_[2] = {0, 0};
  bool retained_[2] = {false, false};
};
