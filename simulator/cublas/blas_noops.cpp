// Every BLAS computation torch imports from libcublas.so.13
// (blas_no_op_functions.def): checks its handle, counts the call, does
// nothing.
//
// Note [No-op entry points]
// Each is defined without a prototype (this file includes no cuBLAS
// header) and reads only its first argument. Every entry point in the list
// takes the cublasHandle_t first and returns cublasStatus_t, so on x86-64
// the handle arrives in the first argument register whatever the rest of
// the signature is, and the status goes back in the return register. No
// result is written: a GEMM's output stays whatever the (unbacked) device
// memory "holds", and a reduction into a host pointer (cublasSdot with
// CUBLAS_POINTER_MODE_HOST) leaves the host value unchanged; torch uses
// device pointers for those.
#include "blas_calls.hpp"

#define OOMGUARD_SIM_BLAS_NO_OP(name)                                           \
  extern "C" __attribute__((visibility("default"))) int name(const void* handle) { \
    return oomguard::sim::blas::no_op_call(#name, handle);                      \
  }
#include "blas_no_op_functions.def"
#undef OOMGUARD_SIM_BLAS_NO_OP
