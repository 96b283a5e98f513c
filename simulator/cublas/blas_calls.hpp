// The bridge from blas_noops.cpp, which includes no cuBLAS header (Note
// [No-op entry points]), to the handle check and the call counter.
#pragma once

namespace oomguard::sim::blas {

// A computation that does no work: CUBLAS_STATUS_NOT_INITIALIZED (as an
// int) for a handle that is not live, else counts `function` for the exit
// statistics and returns CUBLAS_STATUS_SUCCESS.
int no_op_call(const char* function, const void* handle);

}  // namespace oomguard::sim::blas
