// oomguard._C: the Python bindings. The only translation unit that includes
// torch/extension.h (it is the heaviest header there is).
#include <torch/extension.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu_allocator.hpp"
#include "guard_bindings.hpp"
#include "observe.hpp"
#include "oomguard/allocator_config.hpp"
#include "oomguard/c_api.h"
#include "oomguard/config.hpp"
#include "oomguard/error.hpp"
#include "oomguard/guard/run_state.hpp"
#include "oomguard/json.hpp"
#include "oomguard/ledger.hpp"
#include "oomguard/tags.hpp"
#include "own.hpp"
#include "pluggable.hpp"
#include "report_bindings.hpp"
#include "stats_view.hpp"
#include "storage_tags.hpp"

namespace py = pybind11;
using namespace oomguard;
using namespace oomguard::torch_hooks;

namespace {

std::vector<std::pair<std::string, std::string>> parse_conf_pairs(const std::string& text, const std::string& source) {
  std::vector<std::pair<std::string, std::string>> out;
  for (ConfEntry& e : parse_conf(text, source)) out.emplace_back(std::move(e.key), std::move(e.value));
  return out;
}

std::string join_conf_pairs(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::vector<ConfEntry> entries;
  for (const auto& [key, value] : pairs) entries.push_back({key, value});
  return join_conf(entries);
}

void check_keys(const std::vector<std::string>& keys, const std::vector<std::string>& accepted,
                const std::string& source) {
  std::vector<ConfEntry> entries;
  for (const std::string& k : keys) entries.push_back({k, ""});
  const std::vector<std::string_view> views(accepted.begin(), accepted.end());
  check_conf_keys(entries, views, source);
}

std::vector<std::string> names_of(auto const& array) { return {array.begin(), array.end()}; }

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "oomguard's torch extension: allocation sources feeding the Ledger, tags and stats.";

  // config_error is a ValueError in Python: it is always bad user input.
  static py::exception<config_error> config_error_type(m, "ConfigError", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const config_error& e) {
      PyErr_SetString(config_error_type.ptr(), e.what());
    }
  });

  // Sources.
  m.def("install_cpu_allocator", &install_cpu_allocator, py::arg("budget_bytes") = 0);
  m.def("cpu_allocator_installed", &cpu_allocator_installed);
  m.def("set_cpu_tracking", &set_cpu_tracking, py::arg("enabled"));
  m.def("cuda_observe_supported", &cuda_observe_supported);
  m.def("attach_cuda_observer", &attach_cuda_observer);
  m.def("cuda_observer_attached", &cuda_observer_attached);
  m.def("core_library_path", &core_library_path);
  m.def("configure_core_allocator", &configure_core_allocator, py::arg("conf"));
  // The functions CUDAPluggableAllocator loads from this extension
  // (pluggable.hpp): own mode's pair and oomguard.own_pool()'s.
  m.def("extension_library_path", &extension_library_path);
  m.def("configure_pool_allocator", &configure_pool_allocator, py::arg("conf"));
  m.def("pool_allocator_configured", &pool_allocator_configured);
  m.def("pool_allocator_stats_json", [](int device) { return to_json(pool_allocator_stats(device)).dump(); },
        py::arg("device") = 0, "The own_pool() allocator's figures for a device, as JSON (zeros before first use).");

  // Tags.
  m.def("set_phase", [](const std::string& phase) {
    const Phase next = parse_phase(phase);
    const bool changed = next != process_phase();
    set_process_phase(next);
    if (changed) timeline_row_if_open();  // timeline.csv: a row per phase change
  });
  m.def("phase", [] { return std::string(name(process_phase())); });
  m.def("set_process_category", [](const std::optional<std::string>& category) {
    set_process_category(category ? std::optional<Category>(parse_category(*category)) : std::nullopt);
  });
  m.def("push_category", [](const std::string& category) {
    if (oomguard_push_category(category.c_str()) != 0) throw config_error(oomguard_last_error());
  });
  m.def("pop_category", &oomguard_pop_category);
  m.def("begin_step", [](std::int64_t step) {
    timeline_row_if_open();  // the closing step's last row
    Ledger::global().begin_step(step);
  });
  m.def("step", &process_step);
  m.def("claim", [](const std::vector<at::Tensor>& tensors, const std::string& category) {
    const ClaimResult r = claim_storages(tensors, parse_category(category));
    return py::make_tuple(r.bytes, r.storages, r.untracked);
  }, py::arg("tensors"), py::arg("category"),
     "Move the distinct storages of `tensors` to `category`; returns (bytes, storages, untracked).");
  m.def("category_of", [](const at::Tensor& tensor) -> std::optional<std::string> {
    if (!tensor.defined() || !tensor.has_storage()) return std::nullopt;
    const auto address = reinterpret_cast<std::uintptr_t>(tensor.storage().data());
    const auto record = Ledger::global().find(address);
    if (!record) return std::nullopt;
    return std::string(name(record->category));
  }, py::arg("tensor"), "The category of the tensor's storage, or None if no source tracks it.");
  m.def("retag", [](std::uintptr_t address, const std::string& category) {
    return Ledger::global().retag(address, parse_category(category));
  }, py::arg("address"), py::arg("category"));

  // Reading.
  m.def("stats_json", &stats_json);
  m.def("device_name", &device_name);

  // Configuration grammar and names, shared with the core.
  m.def("parse_conf", &parse_conf_pairs, py::arg("text"), py::arg("source") = "OOMGUARD_CONF");
  m.def("join_conf", &join_conf_pairs, py::arg("pairs"));
  m.def("check_conf_keys", &check_keys, py::arg("keys"), py::arg("accepted"), py::arg("source") = "OOMGUARD_CONF");
  m.def("parse_bytes", [](const std::string& text, const std::string& what) { return parse_bytes(text, what); },
        py::arg("text"), py::arg("what") = "size");
  m.def("parse_budget", [](const std::string& text) {
    const BudgetSpec spec = parse_budget(text);
    return py::make_tuple(spec.bytes, spec.fraction);
  });
  m.def("resolve_budget", [](const std::string& text, std::uint64_t device_total) {
    return parse_budget(text).resolve(device_total);
  }, py::arg("text"), py::arg("device_total"));
  m.def("current_by_category", [] {
    py::dict out;
    for (const DeviceStats& s : Ledger::global().stats()) {
      py::dict categories;
      for (std::size_t c = 0; c < kNumCategories; ++c) categories[py::str(std::string(kCategoryNames[c]))] = s.current[c];
      out[py::str(device_name(s.device))] = categories;
    }
    return out;
  }, "Current bytes by category per device: cheap enough for every step boundary.");
  m.def("parse_bool", [](const std::string& text, const std::string& what) { return parse_bool(text, what); });
  m.def("validate_allocator_conf", [](const std::string& text) {
    (void)parse_allocator_config(parse_conf(text), /*strict=*/false);
  }, "Raise ConfigError on a bad value of an allocator key.");
  // The guard's run state (guard_add_action, guard_actions, guard_prediction,
  // guard_predictions) is bound in one place: bind_guard (guard_bindings.cpp).
  m.attr("ALLOCATOR_CONF_KEYS") = names_of(kAllocatorConfKeys);
  m.attr("CATEGORIES") = names_of(kCategoryNames);
  m.attr("PHASES") = names_of(kPhaseNames);
  m.attr("CPU_DEVICE") = kCpuDevice;

  bind_reports(m);
  bind_guard(m);
}
