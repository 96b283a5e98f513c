#include "subprocess.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace oomguard::testing {
namespace {

// Variables of ours that must not leak from the test's own environment.
bool scrubbed(const std::string& entry) {
  for (const char* prefix : {"LD_PRELOAD=", "OOMGUARD_", "RANK=", "FAKE_CUDA_"}) {
    if (entry.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

}  // namespace

Running start(const Launch& launch) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!scrubbed(*e)) env.emplace_back(*e);
  }
  for (const auto& [key, value] : launch.env) env.push_back(key + "=" + value);
  if (launch.preload) env.push_back(std::string("LD_PRELOAD=") + OOMGUARD_PRELOAD_LIBRARY);

  std::vector<std::string> args{OOMGUARD_FAKE_APP};
  args.insert(args.end(), launch.args.begin(), launch.args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out[2];
  if (pipe(out) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    if (launch.merge_stderr) dup2(out[1], STDERR_FILENO);
    close(out[0]);
    close(out[1]);
    if (!launch.working_dir.empty() && chdir(launch.working_dir.c_str()) != 0) _exit(126);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(out[1]);
  return Running{pid, out[0]};
}

Finished wait_for(Running running) {
  Finished result;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(running.stdout_fd, buf, sizeof(buf));
    if (n <= 0) break;
    result.output.append(buf, static_cast<std::size_t>(n));
  }
  close(running.stdout_fd);
  int status = 0;
  waitpid(running.pid, &status, 0);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  return result;
}

bool read_until_line(int fd, const std::string& line) {
  std::string current;
  char c = 0;
  while (read(fd, &c, 1) == 1) {
    if (c != '\n') {
      current += c;
      continue;
    }
    if (current == line) return true;
    current.clear();
  }
  return false;
}

std::map<std::string, std::string> parse_key_values(const std::string& output) {
  std::map<std::string, std::string> out;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

}  // namespace oomguard::testing
