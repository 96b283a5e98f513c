// Streams, events and stream capture. Nothing is ever queued: every
// operation has completed by the time its call returns, so a stream is
// always idle, a recorded event is always complete, and a host function is
// run inline. What is modelled is what a program can observe: flags,
// priorities, ids, event timing from the host clock, and capture.
//
// Note [Stream capture]
// cuStreamBeginCapture_v2 gives the stream a Capture: a graph being built,
// an id, a mode and the thread that began it. Work issued to a capturing
// stream becomes nodes of that graph instead of being done (or counted).
// An event recorded on a capturing stream carries the capture's current
// nodes; a stream that waits on it joins the capture (torch's multi-stream
// capture does this). cuStreamEndCapture detaches every stream of the
// capture and hands the graph over.
// The mode rules are the real driver's: while a capture in GLOBAL mode is
// under way anywhere, or this thread has begun a non-RELAXED capture,
// a thread whose own mode (cuThreadExchangeStreamCaptureMode) is not
// RELAXED gets CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED from a "potentially
// unsafe" call (cuMemAlloc, cuMemFree, cuCtxSynchronize, a synchronous
// copy), and the capture it offended is invalidated; torch's allocator
// switches its thread to RELAXED around such calls, exactly because a GPU
// behaves this way.
#pragma once

#include <cuda.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace oomguard::sim {

class Device;
struct Context;
struct Graph;
struct GraphNode;

struct Capture {
  std::uint64_t id = 0;
  Graph* graph = nullptr;
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
  std::thread::id thread;
  std::mutex mutex;  // guards the fields below and the graph's nodes while capturing
  bool invalidated = false;
  bool ended = false;  // its events then stand for completed work
  std::vector<struct Stream*> streams;  // the origin first
};

struct Stream {
  Device* device = nullptr;
  Context* context = nullptr;
  unsigned flags = 0;
  int priority = 0;
  std::uint64_t id = 0;
  bool is_default = false;  // the legacy or per-thread default stream
  std::atomic<Capture*> capture{nullptr};
  // The nodes the next captured operation depends on; guarded by the
  // capture's mutex.
  std::vector<GraphNode*> capture_dependencies;
};

struct Event {
  Device* device = nullptr;
  unsigned flags = 0;
  std::mutex mutex;  // guards the fields below
  bool recorded = false;
  std::chrono::steady_clock::time_point when{};
  // Set when recorded on a capturing stream (Note [Stream capture]).
  Capture* capture = nullptr;
  std::vector<GraphNode*> capture_nodes;
};

}  // namespace oomguard::sim
