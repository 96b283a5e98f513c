// The CUDA driver upstream: on a machine without a driver it must say so
// clearly; with one (tests/gpu runs this binary too) it must work.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include "oomguard/cuda_driver_upstream.hpp"
#include "oomguard/error.hpp"

using namespace oomguard;

namespace {
bool driver_loadable() {
  void* handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (handle != nullptr) dlclose(handle);
  return handle != nullptr;
}
}  // namespace

TEST(CudaDriverUpstream, ReportsAMissingDriverOrDeviceClearlyOrWorks) {
  if (!driver_loadable()) {
    try {
      CudaDriverUpstream upstream;
      FAIL() << "constructed without a driver";
    } catch (const upstream_error& e) {
      EXPECT_NE(std::string(e.what()).find("no CUDA driver"), std::string::npos) << e.what();
    }
    return;
  }
  std::unique_ptr<CudaDriverUpstream> upstream;
  try {
    upstream = std::make_unique<CudaDriverUpstream>();
  } catch (const upstream_error& e) {
    // A driver without a usable device must say which step failed.
    const std::string what = e.what();
    EXPECT_TRUE(what.find("cuInit") != std::string::npos || what.find("no device") != std::string::npos) << what;
    return;
  }
  ASSERT_GE(upstream->device_count(), 1);
  const auto info = upstream->memory_info(0);
  EXPECT_GT(info.total_bytes, 0u);
  void* p = upstream->allocate(1 << 20, 0);
  ASSERT_NE(p, nullptr);
  upstream->deallocate(p, 1 << 20, 0);
  EXPECT_THROW(upstream->memory_info(upstream->device_count()), upstream_error);
}
