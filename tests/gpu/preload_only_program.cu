// A CUDA program that is not Python, for `--preload-only` (build with
// -cudart shared, or preload cannot see it). Optionally starts CUPTI memory
// tracking (argv[2] == "cupti") to measure its overhead on the same loop.
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifdef WITH_CUPTI
#include "oomguard/cupti_memory.hpp"
#endif

__global__ void touch(float* p, size_t n) {
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i < n) p[i] += 1.0f;
}

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 200;
#ifdef WITH_CUPTI
  if (argc > 2 && std::strcmp(argv[2], "cupti") == 0) {
    std::printf("%s\n", oomguard::cupti::start_memory_tracking().message.c_str());
  }
#endif
  const size_t n = size_t{64} << 20;  // 256 MiB of floats
  int refused = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) {
    float* p = nullptr;
    const cudaError_t status = cudaMalloc(&p, n * sizeof(float));
    if (status == cudaErrorMemoryAllocation) {
      ++refused;
      cudaGetLastError();
      continue;
    }
    touch<<<static_cast<unsigned>((n + 255) / 256), 256>>>(p, n);
    cudaDeviceSynchronize();
    cudaFree(p);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("iterations=%d\nrefused=%d\nseconds_per_iteration=%.9f\n", iterations, refused, seconds / iterations);
#ifdef WITH_CUPTI
  oomguard::cupti::stop_memory_tracking();
#endif
  return 0;
}
