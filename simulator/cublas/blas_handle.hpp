// A cuBLAS handle (cublasHandle_t) or cuBLASLt handle (cublasLtHandle_t):
// one structure for both, since torch passes its cuBLAS handle to cuBLASLt
// calls (reinterpret_cast, which the real libraries allow).
//
// Note [cuBLAS handles]
// A handle is what a program configures (stream, math mode, pointer mode,
// workspace) and every call checks. The check must be cheap, because it
// guards every GEMM: a handle carries a magic word, and a destroyed handle
// keeps its (small) memory with the word cleared instead of being freed, so
// a call on a destroyed or foreign handle reliably gets
// CUBLAS_STATUS_NOT_INITIALIZED rather than reading freed memory. Programs
// create a handle per thread and device, so what is kept is a few hundred
// bytes per process.
#pragma once

#include <cuda.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace oomguard::sim::blas {

struct BlasHandle {
  static constexpr std::uint64_t kLive = 0x6f6f6d67626c6173ull;  // "oomgblas"

  std::atomic<std::uint64_t> magic{kLive};
  CUstream stream = nullptr;
  int math_mode = 0;     // cublasMath_t
  int pointer_mode = 0;  // cublasPointerMode_t
  int atomics_mode = 0;  // cublasAtomicsMode_t
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
};

// The handle behind `handle` if it is a live one, else nullptr.
inline BlasHandle* live_handle(const void* handle) {
  auto* blas = static_cast<BlasHandle*>(const_cast<void*>(handle));
  return blas && blas->magic.load(std::memory_order_relaxed) == BlasHandle::kLive ? blas : nullptr;
}

// Clears the magic word; the memory is kept (Note [cuBLAS handles]).
inline bool retire_handle(const void* handle) {
  BlasHandle* blas = live_handle(handle);
  if (!blas) return false;
  blas->magic.store(0, std::memory_order_relaxed);
  return true;
}

}  // namespace oomguard::sim::blas
