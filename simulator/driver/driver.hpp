// The simulated driver's process-wide state: the configuration, the
// devices, and the registries of every kind of handle.
//
// Note [Driver lifetime]
// The state is built once, at the first cuInit (or the first sim_api call
// of a stand-in that needs it), and never destroyed: torch and the
// libraries it loads make CUDA calls from static destructors and atexit
// handlers, in an order nobody controls, and each must still find a
// working driver. The exit statistics are written by an atexit handler
// registered at load, which reads that same never-freed state.
#pragma once

#include <cuda.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "config.hpp"
#include "copied_values.hpp"
#include "device.hpp"
#include "graph.hpp"
#include "handle_registry.hpp"
#include "host_memory.hpp"
#include "kernels.hpp"
#include "memory_pool.hpp"
#include "stream.hpp"

namespace oomguard::sim {

// A cuMemCreate allocation. `references` counts the handle itself (until
// cuMemRelease), each mapping and each cuMemRetainAllocationHandle; the
// bytes go back to the device when it reaches zero, as on a GPU, where
// released memory stays until its last mapping is unmapped. Guarded by the
// device's mutex.
struct PhysicalAllocation {
  Device* device;
  std::size_t size;
  CUmemAllocationProp prop;
  int references = 1;
};

struct Module {
  int device_ordinal;
};

struct Function {
  Module* module;
  KernelRecord* kernel;
  std::atomic<int> max_dynamic_shared{0};
};

class Driver {
 public:
  // The state, built on first use from the environment; nullptr if the
  // configuration is bad (the message has then been printed).
  static Driver* load();
  // The state once cuInit has succeeded; nullptr before (entry points then
  // return CUDA_ERROR_NOT_INITIALIZED, as the real driver does).
  static Driver* initialized();
  // cuInit: loads the state and marks the driver initialized.
  static CUresult init();

  Device* device(int ordinal) const {
    return ordinal >= 0 && ordinal < static_cast<int>(devices.size()) ? devices[static_cast<std::size_t>(ordinal)].get()
                                                                       : nullptr;
  }
  // The device whose address range holds `address`, or nullptr; needs no
  // lock (the ranges never change after start-up).
  Device* device_of(std::uintptr_t address) const {
    for (const auto& d : devices) {
      if (d->owns(address)) return d.get();
    }
    return symbols_owner(address);
  }

  // __device__ variables (oomguard_sim_symbol_address): a small address
  // range of its own, attributed to device 0.
  void* symbol_address(const void* host_shadow, std::size_t size);

  Config config;
  std::vector<std::unique_ptr<Device>> devices;

  HandleRegistry<Context> contexts;
  HandleRegistry<Stream> streams;
  HandleRegistry<Event> events;
  HandleRegistry<MemoryPool> pools;
  HandleRegistry<PhysicalAllocation> physical_allocations;
  HandleRegistry<Graph> graphs;
  HandleRegistry<GraphNode> graph_nodes;
  HandleRegistry<GraphExec> graph_execs;
  HandleRegistry<Module> modules;
  HandleRegistry<Function> functions;

  HostMemory host_memory;
  CopiedValues copied_values;  // Note [Copied values]
  KernelRegistry kernels;
  CallCounter library_calls;
  CallCounter unsupported_calls;

  std::atomic<std::uint64_t> next_stream_id{16};
  std::atomic<std::uint64_t> next_capture_id{1};
  // Captures under way; the capture-mode check reads `active_captures`
  // first, so calls made while nothing is captured cost one atomic load.
  std::atomic<int> active_captures{0};
  std::mutex captures_mutex;
  std::vector<Capture*> captures;  // guarded by captures_mutex

 private:
  Driver() = default;
  bool build(const Config& config);
  Device* symbols_owner(std::uintptr_t address) const {
    return address >= symbols_begin_ && address < symbols_end_ && !devices.empty() ? devices.front().get() : nullptr;
  }

  std::mutex symbols_mutex_;
  std::uintptr_t symbols_begin_ = 0;
  std::uintptr_t symbols_end_ = 0;
  std::uintptr_t symbols_next_ = 0;
  std::unordered_map<const void*, std::uintptr_t> symbols_;  // guarded by symbols_mutex_
};

// Per-thread state: the context stack and the capture mode.
struct ThreadState {
  std::vector<Context*> context_stack;
  CUstreamCaptureMode capture_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
};
ThreadState& this_thread();

}  // namespace oomguard::sim
