#include "driver.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <mutex>

#include "log.hpp"
#include "oomguard_sim/sim_api.h"

namespace oomguard::sim {

void write_exit_statistics();  // stats.cpp

namespace {

std::once_flag g_load_once;
Driver* g_driver = nullptr;  // Note [Driver lifetime]: never freed
std::atomic<bool> g_initialized{false};

constexpr std::size_t kSymbolSpace = 256ull << 20;

Stream* make_default_stream(Driver& driver, Device& device, std::uint64_t id) {
  auto* stream = new Stream();
  stream->device = &device;
  stream->context = &device.primary_context;
  stream->id = id;
  stream->is_default = true;
  driver.streams.add(stream);
  return stream;
}

}  // namespace

bool Driver::build(const Config& loaded) {
  config = loaded;
  g_log_level.store(config.log_level);
  if (!config.visibility_note.empty() && logging(1)) log_error("%s", config.visibility_note.c_str());
  for (std::size_t i = 0; i < config.devices.size(); ++i) {
    const SimulatedDevice& simulated = config.devices[i];
    const std::uint64_t total =
        config.memory_override != 0 ? config.memory_override : simulated.model->total_mib << 20;
    auto device = std::make_unique<Device>(static_cast<int>(i), simulated.physical_index, *simulated.model, total);
    if (!device->reserve_address_space()) return false;
    contexts.add(&device->primary_context);
    CUmemPoolProps props{};
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    props.location.id = static_cast<int>(i);
    auto* pool = new MemoryPool(*device, props);
    pools.add(pool);
    device->pools.push_back(pool);
    device->current_pool = pool;
    device->legacy_stream = make_default_stream(*this, *device, 0);
    device->per_thread_stream = make_default_stream(*this, *device, 1);
    devices.push_back(std::move(device));
  }
  void* symbols = ::mmap(nullptr, kSymbolSpace, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (symbols != MAP_FAILED) {
    symbols_begin_ = symbols_next_ = reinterpret_cast<std::uintptr_t>(symbols);
    symbols_end_ = symbols_begin_ + kSymbolSpace;
  }
  if (!config.stats_path.empty()) std::atexit(write_exit_statistics);
  oomguard_sim_log(2, "driver: %zu simulated device(s)", devices.size());
  return true;
}

Driver* Driver::load() {
  std::call_once(g_load_once, [] {
    const ConfigOutcome outcome = load_config([](const char* name) { return std::getenv(name); });
    if (!outcome.error.empty()) {
      log_error("%s", outcome.error.c_str());
      return;
    }
    auto* driver = new Driver();
    if (driver->build(outcome.config)) g_driver = driver;
  });
  return g_driver;
}

Driver* Driver::initialized() { return g_initialized.load(std::memory_order_acquire) ? g_driver : nullptr; }

CUresult Driver::init() {
  Driver* driver = load();
  if (!driver) return CUDA_ERROR_INVALID_VALUE;
  if (driver->devices.empty()) return CUDA_ERROR_NO_DEVICE;
  g_initialized.store(true, std::memory_order_release);
  return CUDA_SUCCESS;
}

void* Driver::symbol_address(const void* host_shadow, std::size_t size) {
  std::lock_guard lock(symbols_mutex_);
  if (auto it = symbols_.find(host_shadow); it != symbols_.end()) return reinterpret_cast<void*>(it->second);
  if (size == 0) return nullptr;
  const std::size_t rounded = round_up(size, 256);
  if (symbols_begin_ == 0 || symbols_next_ + rounded > symbols_end_) return nullptr;
  const std::uintptr_t address = symbols_next_;
  symbols_next_ += rounded;
  symbols_.emplace(host_shadow, address);
  return reinterpret_cast<void*>(address);
}

ThreadState& this_thread() {
  thread_local ThreadState state;
  return state;
}

}  // namespace oomguard::sim
