/* The simulated device's one private seam.
 *
 * libcuda.so.1 (the simulated driver) owns every piece of simulated state:
 * devices, device memory, VMM handles, pools, streams, events, graphs and the
 * kernel registry. The other stand-ins (libcudart.so.13, cuBLAS/cuBLASLt,
 * NCCL, NVML) are thin: they speak the public CUDA driver API (cuda.h) to
 * libcuda.so.1, exactly as the real runtime does, plus the few functions
 * below that the driver API has no word for. Nothing here is part of
 * oomguard's own ABI; nothing in allocator/, guard/, hooks/ or python_shim/
 * links against it.
 *
 * See docs/simulator.md for what is simulated and what differs from a GPU.
 */
#ifndef OOMGUARD_SIM_API_H
#define OOMGUARD_SIM_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OOMGUARD_SIM_EXPORT __attribute__((visibility("default")))

/* Logging: OOMGUARD_SIM_LOG=0 quiet, 1 (default) unsupported calls and
 * capacity refusals, 2 also every allocation, 3 also every launch.
 * Lines go to stderr prefixed "[oomguard-sim] ". */
OOMGUARD_SIM_EXPORT int oomguard_sim_log_level(void);
OOMGUARD_SIM_EXPORT void oomguard_sim_log(int level, const char* format, ...)
    __attribute__((format(printf, 2, 3)));

/* A call the simulator does not provide: logged once per (library, function)
 * at level 1 as "<library>: <function> is not simulated (...)" and counted.
 * The caller then returns that library's "not supported" status. */
OOMGUARD_SIM_EXPORT void oomguard_sim_unsupported(const char* library, const char* function);

/* What each simulated device is (after CUDA_VISIBLE_DEVICES), for the
 * stand-ins that describe devices without a driver call (NVML). */
struct oomguard_sim_device_info {
  char name[256];          /* "NVIDIA A100-SXM4-80GB" */
  char table_name[64];     /* "A100-80GB", the project's GPU table name */
  uint64_t total_bytes;    /* capacity, as cudaMemGetInfo's total */
  uint64_t context_bytes;  /* charged when the primary context is created */
  int compute_major;
  int compute_minor;
  int sm_count;
  int pci_bus;
  int physical_index;      /* index in OOMGUARD_SIMULATE before CUDA_VISIBLE_DEVICES */
  unsigned char uuid[16];
};
OOMGUARD_SIM_EXPORT int oomguard_sim_device_count(void);
/* 0 on success, -1 for an ordinal out of range. The function shares the
 * struct's name, which C++'s -Wshadow reports; callers name the struct as
 * `struct oomguard_sim_device_info`. */
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
OOMGUARD_SIM_EXPORT int oomguard_sim_device_info(int ordinal, struct oomguard_sim_device_info* out);
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
/* Every simulated device, also those CUDA_VISIBLE_DEVICES hides (NVML lists
 * them all, as on a GPU machine): the count of OOMGUARD_SIMULATE's devices,
 * and one by its position there (`physical_index`). The same UUIDs, names
 * and capacities as oomguard_sim_device_info. 0 on success, -1 out of range. */
OOMGUARD_SIM_EXPORT int oomguard_sim_physical_device_count(void);
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
OOMGUARD_SIM_EXPORT int oomguard_sim_physical_device_info(int physical_index, struct oomguard_sim_device_info* out);
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
/* Physical bytes charged on the device now and at most (context, cudaMalloc,
 * cuMemCreate, pools), and its capacity. 0 on success, -1 out of range. */
OOMGUARD_SIM_EXPORT int oomguard_sim_memory(int ordinal, uint64_t* used, uint64_t* peak, uint64_t* total);

/* The byte device-to-host copies write (OOMGUARD_SIM_FILL, default 0). */
OOMGUARD_SIM_EXPORT int oomguard_sim_fill_byte(void);

/* Kernels: registration from __cudaRegisterFunction (host stub -> device
 * name) and launches, counted per kernel; never run. */
OOMGUARD_SIM_EXPORT void oomguard_sim_register_kernel(const void* host_function, const char* device_name);
OOMGUARD_SIM_EXPORT void oomguard_sim_count_launch(const void* host_function);

/* A launch through the runtime (cudaLaunchKernel, __cudaLaunchKernel,
 * cudaLaunchKernelExC) as the driver's cuLaunchKernel does it: checks the
 * block and grid against the current device's limits (CUDA_ERROR_INVALID_VALUE)
 * and the stream handle (CUDA_ERROR_INVALID_HANDLE; NULL, CU_STREAM_LEGACY and
 * CU_STREAM_PER_THREAD are the default streams), records a kernel node if the
 * stream is capturing, and otherwise counts the launch. Returns a CUresult. */
OOMGUARD_SIM_EXPORT int oomguard_sim_launch(const void* host_function, unsigned grid_x, unsigned grid_y,
                                            unsigned grid_z, unsigned block_x, unsigned block_y, unsigned block_z,
                                            size_t shared_bytes, void* stream);

/* Launches counted so far of the kernels named `device_name` (every host
 * stub or CUfunction registered under that name), graph replays included;
 * for tests and the stand-ins' own checks. */
OOMGUARD_SIM_EXPORT uint64_t oomguard_sim_kernel_launches(const char* device_name);

/* A device address for a __device__/__constant__ variable's host shadow
 * (__cudaRegisterVar, cudaGetSymbolAddress); NULL if never registered and
 * size is 0. */
OOMGUARD_SIM_EXPORT void* oomguard_sim_symbol_address(const void* host_shadow, size_t size);

/* Calls of library entry points that do no work (cuBLAS GEMMs, NCCL
 * collectives), counted for the exit statistics (OOMGUARD_SIM_STATS=path). */
OOMGUARD_SIM_EXPORT void oomguard_sim_count_call(const char* library, const char* function);

#ifdef __cplusplus
}
#endif

#endif /* OOMGUARD_SIM_API_H */
