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
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "command_registry.hpp"
#include "oomguard/c_api.h"
#include "oomguard/config.hpp"
#include "oomguard/error.hpp"

namespace oomguard::cli {
namespace {

namespace fs = std::filesystem;

struct RunArgs {
  std::string budget;
  std::string report_dir;
  std::string mode;
  std::string conf;
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
  if (!args.budget.empty()) set("budget", args.budget);
  if (!args.report_dir.empty()) set("report_dir", fs::absolute(args.report_dir).string());
  if (!args.mode.empty()) set("mode", args.mode);
  std::string out;
  for (const ConfEntry& e : entries) out += (out.empty() ? "" : ",") + e.key + ":" + e.value;
  return out;
}

void prepend_env(const char* name, const std::string& value, char separator) {
  const char* old = std::getenv(name);
  const std::string joined = old != nullptr && *old != '\0' ? value + separator + old : value;
  setenv(name, joined.c_str(), 1);
}

[[noreturn]] void exec_and_wait(const std::vector<std::string>& command) {
  std::vector<char*> argv;
  for (const std::string& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::cout.flush();
  const pid_t child = fork();
  if (child < 0) throw error(fmt::format("oomguard run: fork failed: {}", std::strerror(errno)));
  if (child == 0) {
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "oomguard run: cannot run %s: %s\n", argv[0], std::strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  // The terminal sends Ctrl-C to the child too; we wait for its verdict.
  std::signal(SIGINT, SIG_IGN);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  std::exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
}

void run(const RunArgs& args) {
  if (args.command.empty()) throw config_error("oomguard run: no command given: oomguard run [options] -- command ...");
  if (args.preload_only && args.no_preload) throw config_error("oomguard run: --preload-only and --no-preload exclude each other");
  if (!args.no_preload) prepend_env("LD_PRELOAD", find_preload_library().string(), ':');
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
  command.push_back("--");
  command.insert(command.end(), args.command.begin(), args.command.end());
  exec_and_wait(command);
}

void setup(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Run a program with oomguard in every process it starts");
  cmd->add_option("--budget", args->budget, "bytes ('20GiB') or a fraction of the device ('90%')");
  cmd->add_option("--report-dir", args->report_dir, "where timelines and reports go");
  cmd->add_option("--mode", args->mode, "auto, observe, own or cpu");
  cmd->add_option("--conf", args->conf, "more OOMGUARD_CONF entries, key:value,key:value");
  cmd->add_flag("--preload-only", args->preload_only, "only LD_PRELOAD (programs that are not Python)");
  cmd->add_flag("--no-preload", args->no_preload, "only the Python package, no LD_PRELOAD");
  cmd->add_option("command", args->command, "the command, after --")->required();
  cmd->callback([args] { run(*args); });
}

const RegisterCommand kRegistered{"run", setup};

}  // namespace
}  // namespace oomguard::cli
