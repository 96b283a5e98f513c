// The per-thread-default-stream variants that nvcc's code calls when built
// with --default-stream per-thread (cuda_runtime_api.h renames the calls
// to *_ptsz, and the synchronous copies and fills to *_ptds): the same
// calls with stream 0 meaning the calling thread's default stream. Since no
// work is ever pending, a synchronous call has the same effect on either
// default stream, so the _ptds forms are the plain ones.
#include "runtime.hpp"

namespace {

cudaStream_t per_thread(cudaStream_t stream) { return stream ? stream : cudaStreamPerThread; }

}  // namespace

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemcpyAsync_ptsz(void* destination, const void* source, std::size_t count,
                                                          cudaMemcpyKind kind, cudaStream_t stream) {
  return cudaMemcpyAsync(destination, source, count, kind, per_thread(stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemcpy2DAsync_ptsz(void* destination, std::size_t destination_pitch,
                                                            const void* source, std::size_t source_pitch,
                                                            std::size_t width, std::size_t height,
                                                            cudaMemcpyKind kind, cudaStream_t stream) {
  return cudaMemcpy2DAsync(destination, destination_pitch, source, source_pitch, width, height, kind,
                           per_thread(stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemsetAsync_ptsz(void* pointer, int value, std::size_t count,
                                                          cudaStream_t stream) {
  return cudaMemsetAsync(pointer, value, count, per_thread(stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemcpy_ptds(void* destination, const void* source, std::size_t count,
                                                     cudaMemcpyKind kind) {
  return cudaMemcpy(destination, source, count, kind);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemset_ptds(void* pointer, int value, std::size_t count) {
  return cudaMemset(pointer, value, count);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMallocAsync_ptsz(void** pointer, std::size_t size, cudaStream_t stream) {
  return cudaMallocAsync(pointer, size, per_thread(stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaFreeAsync_ptsz(void* pointer, cudaStream_t stream) {
  return cudaFreeAsync(pointer, per_thread(stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamSynchronize_ptsz(cudaStream_t stream) {
  return cudaStreamSynchronize(per_thread(stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamQuery_ptsz(cudaStream_t stream) {
  return cudaStreamQuery(per_thread(stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamWaitEvent_ptsz(cudaStream_t stream, cudaEvent_t event,
                                                              unsigned int flags) {
  return cudaStreamWaitEvent(per_thread(stream), event, flags);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaEventRecord_ptsz(cudaEvent_t event, cudaStream_t stream) {
  return cudaEventRecord(event, per_thread(stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaEventRecordWithFlags_ptsz(cudaEvent_t event, cudaStream_t stream,
                                                                   unsigned int flags) {
  return cudaEventRecordWithFlags(event, per_thread(stream), flags);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaLaunchHostFunc_ptsz(cudaStream_t stream, cudaHostFn_t function,
                                                             void* user_data) {
  return cudaLaunchHostFunc(per_thread(stream), function, user_data);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGraphLaunch_ptsz(cudaGraphExec_t exec, cudaStream_t stream) {
  return cudaGraphLaunch(exec, per_thread(stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamBeginCapture_ptsz(cudaStream_t stream, cudaStreamCaptureMode mode) {
  return cudaStreamBeginCapture(per_thread(stream), mode);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamEndCapture_ptsz(cudaStream_t stream, cudaGraph_t* graph) {
  return cudaStreamEndCapture(per_thread(stream), graph);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamIsCapturing_ptsz(cudaStream_t stream,
                                                                cudaStreamCaptureStatus* status) {
  return cudaStreamIsCapturing(per_thread(stream), status);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaLaunchKernelExC_ptsz(const cudaLaunchConfig_t* config, const void* function,
                                                              void** arguments) {
  if (!config) return oomguard::sim::runtime::fail(cudaErrorInvalidValue);
  cudaLaunchConfig_t adjusted = *config;
  adjusted.stream = per_thread(config->stream);
  return cudaLaunchKernelExC(&adjusted, function, arguments);
}
