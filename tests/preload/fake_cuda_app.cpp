// A CUDA program (against the fake runtime and driver) that the preload tests
// run as a subprocess, with and without LD_PRELOAD. Each mode prints what it
// did as key=value lines, which the tests compare with the reports.
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kMiB = size_t{1} << 20;

#define CHECK(expr)                                                        \
  do {                                                                     \
    const auto status_ = (expr);                                           \
    if (static_cast<int>(status_) != 0) {                                  \
      std::fprintf(stderr, "%s failed: %d\n", #expr, static_cast<int>(status_)); \
      std::exit(3);                                                        \
    }                                                                      \
  } while (0)

using CreateFn = CUresult (*)(CUmemGenericAllocationHandle*, size_t, const CUmemAllocationProp*, unsigned long long);
using MapFn = CUresult (*)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle, unsigned long long);
using UnmapFn = CUresult (*)(CUdeviceptr, size_t);

CUmemAllocationProp device_prop(int device) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  return prop;
}

// Every interposed call once; leaves 17 MiB live, peaks at 23 MiB.
int run_basic() {
  void* a = nullptr;
  void* b = nullptr;
  CHECK(cudaMalloc(&a, 3 * kMiB));
  CHECK(cudaMalloc(&b, 5 * kMiB));
  CHECK(cudaFree(a));
  CUdeviceptr c = 0;
  CHECK(cuMemAlloc_v2(&c, 7 * kMiB));
  void* d = nullptr;
  CHECK(cudaMallocAsync(&d, 2 * kMiB, nullptr));
  CHECK(cudaFreeAsync(d, nullptr));
  void* m = nullptr;
  CHECK(cudaMallocManaged(&m, 1 * kMiB, cudaMemAttachGlobal));

  // The expandable-segments path: driver calls through entry-point pointers.
  void* create = nullptr;
  void* map = nullptr;
  void* unmap = nullptr;
  cudaDriverEntryPointQueryResult found{};
  CHECK(cudaGetDriverEntryPointByVersion("cuMemCreate", &create, 13000, cudaEnableDefault, &found));
  CHECK(cudaGetDriverEntryPointByVersion("cuMemMap", &map, 13000, cudaEnableDefault, &found));
  CHECK(cudaGetDriverEntryPointByVersion("cuMemUnmap", &unmap, 13000, cudaEnableDefault, &found));
  const CUmemAllocationProp prop = device_prop(0);
  CUmemGenericAllocationHandle handle = 0;
  CHECK(reinterpret_cast<CreateFn>(create)(&handle, 4 * kMiB, &prop, 0));
  CHECK(reinterpret_cast<MapFn>(map)(CUdeviceptr{0x7000000}, 4 * kMiB, 0, handle, 0));
  CHECK(reinterpret_cast<UnmapFn>(unmap)(CUdeviceptr{0x7000000}, 4 * kMiB));

  // And the exported VMM symbols.
  CUmemGenericAllocationHandle direct = 0;
  CHECK(cuMemCreate(&direct, 6 * kMiB, &prop, 0));
  CHECK(cuMemRelease(direct));
  std::printf("live_bytes=%zu\npeak_bytes=%zu\n", 17 * kMiB, 23 * kMiB);
  return 0;
}

// 1 MiB cudaMalloc calls until refused; then one driver call, refused too.
int run_until_refused() {
  // Sizes whose admission sum once wrapped and reached the device.
  int huge_granted = 0;
  cudaError_t huge_refusal = cudaSuccess;
  for (size_t huge : {SIZE_MAX, SIZE_MAX - 511}) {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, huge);
    if (e == cudaSuccess) ++huge_granted;
    else huge_refusal = e;
  }
  std::printf("huge_granted=%d\nhuge_error=%d\n", huge_granted, static_cast<int>(huge_refusal));
  int granted = 0;
  cudaError_t refusal = cudaSuccess;
  for (int i = 0; i < 100000; ++i) {
    void* p = nullptr;
    refusal = cudaMalloc(&p, kMiB);
    if (refusal != cudaSuccess) break;
    ++granted;
  }
  CUdeviceptr q = 0;
  const CUresult driver_refusal = cuMemAlloc_v2(&q, kMiB);
  std::printf("granted=%d\nruntime_error=%d\ndriver_error=%d\n", granted, static_cast<int>(refusal),
              static_cast<int>(driver_refusal));
  return 0;
}

// With a budget: `count` refused 1 MiB requests in a loop past it (a
// program probing the largest batch); forever after "ready" when count is 0.
int run_refusals(long count) {
  std::vector<void*> live;
  for (;;) {
    void* p = nullptr;
    if (cudaMalloc(&p, kMiB) != cudaSuccess) break;
    live.push_back(p);
  }
  std::printf("ready\n");
  std::fflush(stdout);
  long refused = 1;
  for (; count == 0 || refused < count; ++refused) {
    void* p = nullptr;
    if (cudaMalloc(&p, kMiB) == cudaSuccess) return 7;
  }
  std::printf("refused=%ld\n", refused);
  return 0;
}

// `threads` threads, each `iterations` allocations of (thread+1)*4 KiB,
// freeing every even one: the live total is known exactly.
int run_threads(int threads, int iterations) {
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([t, iterations] {
      std::vector<void*> kept;
      for (int i = 0; i < iterations; ++i) {
        void* p = nullptr;
        CHECK(cudaMalloc(&p, static_cast<size_t>(t + 1) * 4096));
        if (i % 2 == 0) {
          CHECK(cudaFree(p));
        } else {
          kept.push_back(p);
        }
      }
    });
  }
  for (auto& thread : pool) thread.join();
  size_t live = 0;
  for (int t = 0; t < threads; ++t) live += static_cast<size_t>(iterations / 2) * static_cast<size_t>(t + 1) * 4096;
  std::printf("live_bytes=%zu\nmallocs=%d\nfrees=%d\n", live, threads * iterations,
              threads * (iterations - iterations / 2));
  return 0;
}

// 1 MiB live, then a child: forked only, or forked and exec'ed as `child`.
int run_fork(bool exec_child) {
  void* p = nullptr;
  CHECK(cudaMalloc(&p, kMiB));
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) return 4;
  if (pid == 0) {
    if (exec_child) {
      char self[] = "/proc/self/exe";
      char mode[] = "child";
      char* argv[] = {self, mode, nullptr};
      execv(self, argv);
      _exit(5);
    }
    void* q = nullptr;
    CHECK(cudaMalloc(&q, 4 * kMiB));
    std::exit(0);  // atexit handlers run: the child's summary
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::printf("child_pid=%d\nchild_status=%d\n", static_cast<int>(pid), status);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 6;
}

int run_child() {
  void* q = nullptr;
  CHECK(cudaMalloc(&q, 2 * kMiB));
  return 0;
}

// Allocate and free forever; print "ready" once some memory is live.
int run_until_killed() {
  std::vector<void*> live;
  for (int i = 0; i < 8; ++i) {
    void* p = nullptr;
    CHECK(cudaMalloc(&p, kMiB));
    live.push_back(p);
  }
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) {
    void* p = nullptr;
    CHECK(cudaMalloc(&p, kMiB));
    CHECK(cudaFree(p));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "basic") return run_basic();
  if (mode == "until-refused") return run_until_refused();
  if (mode == "threads" && argc > 3) return run_threads(std::atoi(argv[2]), std::atoi(argv[3]));
  if (mode == "fork") return run_fork(false);
  if (mode == "fork-exec") return run_fork(true);
  if (mode == "child") return run_child();
  if (mode == "until-killed") return run_until_killed();
  if (mode == "refusals" && argc > 2) return run_refusals(std::atol(argv[2]));
  if (mode == "no-cuda") return 0;
  std::fprintf(stderr,
               "usage: fake_cuda_app MODE; MODE is one of basic, until-refused, threads N ITERATIONS, fork, "
               "fork-exec, child, until-killed, no-cuda\n");
  return 2;
}
