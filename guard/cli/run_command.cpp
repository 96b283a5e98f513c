// `oomguard run [options] -- command ...`: run an unmodified program with
// oomguard in every process it starts, and exit with the program's code.
//
// Note [Two ways in]
// A Python program is handed to `python3 -m oomguard run`, which puts the
// package's sitecustomize on PYTHONPATH so every Python process (torchrun's
// workers too) installs oomguard, and validates the options against every
// layer's keys. Unless --no-preload, LD_PRELOAD also carries
// liboomguard_preload.so, which sees device memory outside PyTorch (CUDA
// context, library workspaces) at segment level; it is inherited through
// fork and exec. A program that is not Python gets only the preload
// (--preload-only). The preload is found next to liboomguard_core.so (where
// the wheel installs both), in the build tree beside it, or through
// OOMGUARD_PRELOAD_LIB.
#include <dlfcn.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "command_registry.hpp"
#include "oomguard/c_api.h"
#include "oomguard/config.hpp"
#include "oomguard/error.hpp"
#include "oomguard/guard/gpu_table.hpp"
#include "oomguard/guard/policy.hpp"

namespace oomguard::cli {
namespace {

namespace fs = std::filesystem;

struct RunArgs {
  std::string budget;
  std::string report_dir;
  std::string mode;
  std::string conf;
  std::string simulate;
  bool simulate_given = false;  // --simulate "" is an error, not "no simulation"
  bool preload_only = false;
  bool no_preload = false;
  std::vector<std::string> command;
};

fs::path core_library_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&oomguard_last_error), &info) == 0 || info.dli_fname == nullptr) return {};
  return fs::path(info.dli_fname).parent_path();
}

fs::path find_preload_library() {
  if (const char* given = std::getenv("OOMGUARD_PRELOAD_LIB"); given != nullptr && *given != '\0') {
    if (!fs::exists(given)) throw config_error(fmt::format("OOMGUARD_PRELOAD_LIB={} does not exist", given));
    return fs::absolute(given);
  }
  const fs::path core = core_library_dir();
  for (const fs::path& candidate :
       {core / "liboomguard_preload.so", core / ".." / "hooks" / "preload" / "liboomguard_preload.so"}) {
    if (fs::exists(candidate)) return fs::canonical(candidate);
  }
  throw config_error(fmt::format(
      "liboomguard_preload.so was not found beside {} (set OOMGUARD_PRELOAD_LIB, or use --no-preload)",
      core.empty() ? std::string("liboomguard_core.so") : core.string()));
}

// ---- The simulated GPU (Note [The simulated environment is built here]) ----

// The stand-ins that replace a library torch (or a CUDA program) links by
// soname: only LD_PRELOAD wins over DT_NEEDED. libcuda.so.1 and
// libnvidia-ml.so.1 are dlopen'ed by name and found through LD_LIBRARY_PATH.
constexpr const char* kPreloadedStandIns[] = {"libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13",
                                              "libnccl.so.2"};
constexpr const char* kDriverStandIn = "libcuda.so.1";
constexpr int kMaxDevicesPerName = 64;  // what the simulated driver accepts

std::string trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return std::string(text);
}

std::string gpu_table_names() {
  std::vector<std::string> names;
  for (const guard::GpuSpec& gpu : guard::builtin_gpus()) names.push_back(gpu.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

// One element of a spec: "NAME" or "NxNAME" (spaces allowed around the x), as
// the simulated driver reads OOMGUARD_SIMULATE (simulator/driver/config.cpp).
// Returns the number of devices it names; throws naming what is accepted.
int check_spec_element(const std::string& source, const std::string& spec, std::string_view element_text) {
  const std::string element = trim(element_text);
  auto reject = [&](const std::string& why) -> config_error {
    return config_error(fmt::format(
        "{} '{}': {}; accepted: a GPU table name, N x NAME (e.g. 4xH100-80GB, N from 1 to {}) or a comma list "
        "of those (A100-80GB,L4); table names: {}",
        source, spec, why, kMaxDevicesPerName, gpu_table_names()));
  };
  int count = 1;
  std::string name = element;
  const std::size_t x = element.find_first_of("xX");
  if (x != std::string::npos && x > 0 && element.find_first_not_of("0123456789 ") >= x) {
    const std::string digits = trim(std::string_view(element).substr(0, x));
    int n = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc{} || end != digits.data() + digits.size() || n < 1 || n > kMaxDevicesPerName) {
      throw reject(fmt::format("'{}' is not a device count from 1 to {}", digits, kMaxDevicesPerName));
    }
    count = n;
    name = trim(std::string_view(element).substr(x + 1));
  }
  if (name.empty()) throw reject(fmt::format("'{}' names no GPU", element));
  try {
    guard::find_gpu(name);
  } catch (const config_error&) {
    throw reject(fmt::format("'{}' is not a GPU of the table", name));
  }
  return count;
}

// Checks the whole spec before anything starts; returns the device count.
int check_simulate_spec(const std::string& source, const std::string& spec) {
  if (trim(spec).empty()) {
    throw config_error(fmt::format("{} is empty; accepted: a GPU table name (e.g. A100-80GB), N x NAME "
                                   "(4xH100-80GB) or a comma list (A100-80GB,L4); table names: {}",
                                   source, gpu_table_names()));
  }
  int devices = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = spec.find(',', start);
    devices += check_spec_element(source, spec, std::string_view(spec).substr(start, comma - start));
    if (comma == std::string::npos) return devices;
    start = comma + 1;
  }
}

// Where the stand-ins are: OOMGUARD_SIM_LIB_DIR, beside liboomguard_core.so
// in the wheel (oomguard/simulator/), or the build tree's simulator/lib.
fs::path find_simulator_library_dir() {
  auto complete = [](const fs::path& dir) {
    std::vector<std::string> missing;
    for (const char* name : kPreloadedStandIns)
      if (!fs::exists(dir / name)) missing.emplace_back(name);
    if (!fs::exists(dir / kDriverStandIn)) missing.emplace_back(kDriverStandIn);
    return missing;
  };
  if (const char* given = std::getenv("OOMGUARD_SIM_LIB_DIR"); given != nullptr && *given != '\0') {
    const std::vector<std::string> missing = complete(given);
    if (!missing.empty()) {
      throw config_error(fmt::format("OOMGUARD_SIM_LIB_DIR={} lacks {} (the simulated GPU's libraries)", given,
                                     fmt::join(missing, ", ")));
    }
    return fs::canonical(given);
  }
  const fs::path core = core_library_dir();
  const std::vector<fs::path> candidates = {core / "simulator", core / ".." / "simulator" / "lib"};
  for (const fs::path& candidate : candidates) {
    if (complete(candidate).empty()) return fs::canonical(candidate);
  }
  throw config_error(fmt::format(
      "the simulated GPU's libraries ({}, {}) were not found in {} or {} (build the simulator, or set "
      "OOMGUARD_SIM_LIB_DIR)",
      fmt::join(kPreloadedStandIns, ", "), kDriverStandIn, candidates[0].lexically_normal().string(),
      candidates[1].lexically_normal().string()));
}

std::vector<std::string> split_paths(const char* text) {
  std::vector<std::string> parts;
  if (text == nullptr) return parts;
  std::string_view rest(text);
  while (!rest.empty()) {
    const std::size_t colon = rest.find(':');
    const std::string part(rest.substr(0, colon));
    if (!part.empty()) parts.push_back(part);
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return parts;
}

bool is_preloaded_stand_in(const std::string& entry) {
  const std::string name = fs::path(entry).filename().string();
  for (const char* stand_in : kPreloadedStandIns)
    if (name == stand_in) return true;
  return false;
}

// LD_PRELOAD = [preload] + stand-ins + the rest, without stand-ins already
// there (a nested `oomguard run`, or the environment form set by hand): the
// order of Note [The simulated environment is built here] then holds however
// we were started.
void set_preload_order(const std::string& preload, const fs::path& simulator_dir) {
  std::vector<std::string> entries;
  if (!preload.empty()) entries.push_back(preload);
  for (const char* stand_in : kPreloadedStandIns) entries.push_back((simulator_dir / stand_in).string());
  for (const std::string& entry : split_paths(std::getenv("LD_PRELOAD"))) {
    if (entry != preload && !is_preloaded_stand_in(entry)) entries.push_back(entry);
  }
  const std::string joined = fmt::format("{}", fmt::join(entries, ":"));
  setenv("LD_PRELOAD", joined.c_str(), 1);
}

// Where the spec comes from: --simulate, else OOMGUARD_SIMULATE; no source
// when neither is given (the run is not simulated).
struct SimulateRequest {
  std::string source;
  std::string spec;
  bool requested() const { return !source.empty(); }
};

SimulateRequest simulate_request(const RunArgs& args) {
  if (args.simulate_given) return {"--simulate", args.simulate};
  if (const char* env = std::getenv("OOMGUARD_SIMULATE"); env != nullptr) return {"OOMGUARD_SIMULATE", env};
  return {};
}

std::string join_conf(const RunArgs& args) {
  // Options override OOMGUARD_CONF entries of the same key.
  std::vector<ConfEntry> entries;
  if (const char* env = std::getenv("OOMGUARD_CONF")) entries = parse_conf(env);
  auto set = [&](const std::string& key, const std::string& value) {
    for (ConfEntry& e : entries) {
      if (e.key == key) {
        e.value = value;
        return;
      }
    }
    entries.push_back({key, value});
  };
  for (const ConfEntry& e : parse_conf(args.conf, "--conf")) set(e.key, e.value);
  if (!args.budget.empty()) {
    (void)parse_budget(args.budget);  // checked alone: pasted, "1GiB,report_dir:/etc" would set a second key
    set("budget", args.budget);
  }
  if (!args.report_dir.empty()) set("report_dir", fs::absolute(args.report_dir).string());
  if (!args.mode.empty()) set("mode", args.mode);
  guard::check_guard_conf(entries);  // a bad value fails here, before the command runs unguarded
  return oomguard::join_conf(entries);
}

void prepend_env(const char* name, const std::string& value, char separator) {
  const char* old = std::getenv(name);
  const std::string joined = old != nullptr && *old != '\0' ? value + separator + old : value;
  setenv(name, joined.c_str(), 1);
}

// Note [The launcher and its command live and die together]
// Slurm, Docker and Kubernetes send SIGTERM to the process they started,
// which here is `oomguard run`: it used to exit at once and leave the
// training job running, re-parented to init, unsupervised. So SIGTERM and
// SIGHUP are forwarded to the command, and a SIGINT that a process sent
// (kill -INT) too; one from the terminal reaches the command already (it is
// in the same foreground group), so that one is not sent twice. The
// launcher then waits and exits with the command's status, 128 + N for a
// signal N, as shells report it. If the launcher itself is killed (SIGKILL
// cannot be forwarded), the command gets SIGTERM from the kernel
// (PR_SET_PDEATHSIG).
std::atomic<pid_t> g_command_pid{0};

void forward_signal(int sig, siginfo_t* info, void*) {
  const pid_t child = g_command_pid.load(std::memory_order_relaxed);
  if (child <= 0) return;
  if (sig == SIGINT && info != nullptr && info->si_code > 0) return;  // from the terminal: the command has it
  ::kill(child, sig);
}

[[noreturn]] void exec_and_wait(const std::vector<std::string>& command) {
  std::vector<char*> argv;
  for (const std::string& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::cout.flush();
  const pid_t launcher = getpid();
  const pid_t child = fork();
  if (child < 0) throw error(fmt::format("oomguard run: fork failed: {}", std::strerror(errno)));
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != launcher) _exit(128 + SIGTERM);  // the launcher died before prctl took effect
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "oomguard run: cannot run %s: %s\n", argv[0], std::strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  g_command_pid.store(child, std::memory_order_relaxed);
  for (int sig : {SIGTERM, SIGHUP, SIGINT}) {
    struct sigaction action{};
    action.sa_sigaction = &forward_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(sig, &action, nullptr);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  std::exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
}

void run(const RunArgs& args) {
  if (args.command.empty()) throw config_error("oomguard run: no command given: oomguard run [options] -- command ...");
  if (args.preload_only && args.no_preload) throw config_error("oomguard run: --preload-only and --no-preload exclude each other");
  // Everything is checked before the environment changes or anything starts.
  const SimulateRequest simulate = simulate_request(args);
  const bool simulated = simulate.requested();
  const std::string spec = trim(simulate.spec);
  fs::path simulator_dir;
  if (simulated) {
    check_simulate_spec(simulate.source, simulate.spec);
    simulator_dir = find_simulator_library_dir();
  }
  const std::string preload = args.no_preload ? std::string() : find_preload_library().string();
  if (simulated) {
    setenv("OOMGUARD_SIMULATE", spec.c_str(), 1);
    set_preload_order(preload, simulator_dir);
    prepend_env("LD_LIBRARY_PATH", simulator_dir.string(), ':');
  } else if (!preload.empty()) {
    prepend_env("LD_PRELOAD", preload, ':');
  }
  // One run id for every process of the run, so their reports share a root.
  if (std::getenv("OOMGUARD_RUN_ID") == nullptr) {
    const std::string id = fmt::format("{}-{}", static_cast<long>(std::time(nullptr)), static_cast<long>(getpid()));
    setenv("OOMGUARD_RUN_ID", id.c_str(), 1);
  }
  if (args.preload_only) {
    const std::string conf = join_conf(args);
    setenv("OOMGUARD_CONF", conf.c_str(), 1);
    exec_and_wait(args.command);
  }
  // The Python side builds the environment, so the option check covers the
  // keys of every layer.
  const char* python = std::getenv("OOMGUARD_PYTHON");
  std::vector<std::string> command = {python != nullptr ? python : "python3", "-m", "oomguard", "run"};
  if (!args.budget.empty()) command.insert(command.end(), {"--budget", args.budget});
  if (!args.report_dir.empty()) command.insert(command.end(), {"--report-dir", args.report_dir});
  if (!args.mode.empty()) command.insert(command.end(), {"--mode", args.mode});
  if (!args.conf.empty()) command.insert(command.end(), {"--conf", args.conf});
  // The environment is built already; the Python launcher checks it is there
  // for this spec rather than ignoring the option.
  if (simulated) command.insert(command.end(), {"--simulate", spec});
  command.push_back("--");
  command.insert(command.end(), args.command.begin(), args.command.end());
  exec_and_wait(command);
}

void setup(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Run a program with oomguard in every process it starts");
  cmd->add_option("--budget", args->budget, "bytes ('20GiB') or a fraction of the device ('90%')");
  cmd->add_option("--report-dir", args->report_dir, "where timelines and reports go");
  cmd->add_option("--mode", args->mode, "auto, observe, own or cpu")
      ->check(CLI::IsMember({"auto", "observe", "own", "cpu"}));
  cmd->add_option("--conf", args->conf, "more OOMGUARD_CONF entries, key:value,key:value");
  cmd->add_option("--simulate", args->simulate,
                  "run on simulated GPUs (docs/simulator.md): a GPU table name (A100-80GB), N x NAME "
                  "(4xH100-80GB, one per torchrun rank) or a comma list (A100-80GB,L4); kernels are counted, not run. "
                  "Also taken from OOMGUARD_SIMULATE")
      ->each([args](const std::string&) { args->simulate_given = true; });
  cmd->add_flag("--preload-only", args->preload_only, "only LD_PRELOAD (programs that are not Python)");
  cmd->add_flag("--no-preload", args->no_preload, "only the Python package, no LD_PRELOAD");
  cmd->add_option("command", args->command, "the command, after --")->required();
  cmd->callback([args] { run(*args); });
}

const RegisterCommand kRegistered{"run", setup};

}  // namespace
}  // namespace oomguard::cli
