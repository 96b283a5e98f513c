// Helpers libfake_cuda.so exports for libfake_cudart.so and the tests. Their
// names are not CUDA's, so the preload library never interposes them.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {
int fake_device_alloc(void** pointer, std::size_t size);  // 0 on success, 1 when the device is full
void fake_device_free(void* pointer);
int fake_current_device();
void fake_set_current_device(int device);
int fake_device_count();
std::uint64_t fake_device_total_bytes();
std::uint64_t fake_device_used_bytes(int device);
}
