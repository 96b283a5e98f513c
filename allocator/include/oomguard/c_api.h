/* The C ABI of oomguard's allocator, loadable by
 * torch.cuda.memory.CUDAPluggableAllocator(path, "oomguard_malloc", "oomguard_free")
 * and usable from any C or C++ program. */
#ifndef OOMGUARD_C_API_H
#define OOMGUARD_C_API_H

#include <stddef.h>
#include <stdint.h>

#if defined(__has_include)
#if __has_include(<driver_types.h>)
#include <driver_types.h>
#define OOMGUARD_HAVE_CUDA_TYPES 1
#endif
#endif
#ifndef OOMGUARD_HAVE_CUDA_TYPES
/* The same declaration as the CUDA runtime's. */
typedef struct CUstream_st* cudaStream_t;
#endif

#define OOMGUARD_API __attribute__((visibility("default")))

#ifdef __cplusplus
extern "C" {
#endif

/* Allocation for torch's pluggable allocator. Returns NULL on out-of-memory
 * or bad input; oomguard_last_error() then says why. */
OOMGUARD_API void* oomguard_malloc(size_t size, int device, cudaStream_t stream);
/* Never fails loudly: a bad free (double, foreign, wrong device or size) is
 * refused, counted, reported on stderr and kept in oomguard_last_error(). */
OOMGUARD_API void oomguard_free(void* ptr, size_t size, int device, cudaStream_t stream);

/* Configure before the first allocation, in OOMGUARD_CONF's key:value
 * grammar. Keys: upstream (cuda|simulated), capacity and devices (simulated),
 * budget (bytes or percent of the device), per_stream_pools (bool),
 * limit_<category> (bytes). Without a call, OOMGUARD_CONF is read on first
 * use (keys of the other layers are left to them). Returns 0, or -1 with
 * oomguard_last_error() set. */
OOMGUARD_API int oomguard_configure(const char* conf);

/* The error of this thread's latest call, "" when it succeeded. */
OOMGUARD_API const char* oomguard_last_error(void);

/* JSON of the allocator and Ledger statistics of one device; writes at most
 * capacity bytes (NUL included) and returns the length the full text needs
 * (excluding NUL), so a caller can size its buffer. */
OOMGUARD_API size_t oomguard_stats_json(int device, char* buffer, size_t capacity);
/* JSON of every device's stats, the live allocations and the recent events. */
OOMGUARD_API size_t oomguard_snapshot_json(char* buffer, size_t capacity);

/* Return cached, fully free segments to the device. */
OOMGUARD_API void oomguard_empty_cache(void);

/* Tags for programs without the Python layer. Return 0, or -1 on an unknown name. */
OOMGUARD_API int oomguard_set_phase(const char* phase);
OOMGUARD_API int oomguard_push_category(const char* category);
OOMGUARD_API void oomguard_pop_category(void);
OOMGUARD_API void oomguard_begin_step(int64_t step);

#ifdef __cplusplus
}
#endif

#endif /* OOMGUARD_C_API_H */
