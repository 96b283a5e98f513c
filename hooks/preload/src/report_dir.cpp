#include "report_dir.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "oomguard/guard/report/report.hpp"
#include "oomguard/guard/report/report_file.hpp"

namespace oomguard::preload {
namespace {

bool process_alive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

pid_t read_owner(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return 0;
  char buf[32] = {};
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  return n > 0 ? static_cast<pid_t>(std::strtol(buf, nullptr, 10)) : 0;
}

bool write_owner(const std::string& path, int flags) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | flags, 0644);
  if (fd < 0) return false;
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), "%d\n", static_cast<int>(getpid()));
  const bool ok = write(fd, buf, static_cast<size_t>(n)) == n;
  close(fd);
  return ok;
}

enum class Claim { claimed, owned_by_other, failed };

Claim try_claim(const std::string& dir) {
  if (!guard::report::prepare_report_dir(dir).empty()) return Claim::failed;
  const std::string owner = dir + "/owner.pid";
  if (write_owner(owner, O_EXCL)) return Claim::claimed;
  if (errno != EEXIST) return Claim::failed;
  const pid_t holder = read_owner(owner);
  if (holder == getpid()) return Claim::claimed;
  if (process_alive(holder)) return Claim::owned_by_other;
  // A previous run's directory: take it over.
  return write_owner(owner, O_TRUNC) ? Claim::claimed : Claim::failed;
}

}  // namespace

std::string requested_report_dir(const PreloadConfig& config) {
  if (!config.report_dir.empty()) return config.report_dir;
  // Note [Report folder names]: the same folder as the Python side's.
  return guard::report::process_report_dir("", config.run_id, config.rank);
}

std::string claim_report_dir(const std::string& requested) {
  switch (try_claim(requested)) {
    case Claim::claimed:
      return requested;
    case Claim::owned_by_other: {
      const std::string own = requested + "/pid" + std::to_string(getpid());
      if (try_claim(own) == Claim::claimed) return own;
      std::fprintf(stderr, "oomguard preload: cannot claim report directory '%s'; no reports from pid %d\n",
                   own.c_str(), static_cast<int>(getpid()));
      return {};
    }
    case Claim::failed:
      break;
  }
  std::fprintf(stderr, "oomguard preload: cannot create report directory '%s' (%s); no reports from pid %d\n",
               requested.c_str(), std::strerror(errno), static_cast<int>(getpid()));
  return {};
}

}  // namespace oomguard::preload
