#include "oomguard/guard/report/report_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

namespace oomguard::guard::report {
namespace {

constexpr mode_t kReportMode = 0644;

bool write_all(int fd, const char* data, std::size_t size) noexcept {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

std::string failed(const char* what, const std::string& path) {
  return std::string("cannot ") + what + " \"" + path + "\": " + std::strerror(errno);
}

}  // namespace

std::string write_report_file(const std::string& path, std::string_view bytes) noexcept {
  try {
    std::vector<char> name(path.begin(), path.end());
    const char suffix[] = ".tmp.XXXXXX";
    name.insert(name.end(), suffix, suffix + sizeof(suffix));  // with its NUL
    const int fd = ::mkostemp(name.data(), O_CLOEXEC);
    const std::string temporary(name.data());
    if (fd < 0) return failed("create a temporary file for", path);
    // mkostemp makes it 0600; a report is for the team that shares the folder.
    const bool written = ::fchmod(fd, kReportMode) == 0 && write_all(fd, bytes.data(), bytes.size());
    const int saved = errno;
    const bool closed = ::close(fd) == 0;
    if (!written || !closed) {
      ::unlink(temporary.c_str());
      errno = written ? errno : saved;
      return failed("write", temporary);
    }
    if (::rename(temporary.c_str(), path.c_str()) != 0) {
      const std::string why = failed("rename a temporary file to", path);
      ::unlink(temporary.c_str());
      return why;
    }
    return "";
  } catch (const std::exception& e) {
    return std::string("cannot write \"") + path + "\": " + e.what();
  }
}

int open_report_for_append(const std::string& path) noexcept {
  // Read as well: a torn tail is found by reading it back (Note [A row is whole or absent]).
  constexpr int kFlags = O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  int fd = ::open(path.c_str(), kFlags, kReportMode);
  struct stat st{};
  if (fd >= 0 && (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
    ::close(fd);
    fd = -1;
    errno = ELOOP;  // handled below as a name that is not a regular file
  }
  if (fd < 0 && (errno == ELOOP || errno == ENXIO || errno == EISDIR)) {
    // A symlink (ELOOP under O_NOFOLLOW), a FIFO without a reader (ENXIO) or
    // another non-regular file: replace the name, never write through it.
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return -1;
    fd = ::open(path.c_str(), kFlags | O_EXCL, kReportMode);
  }
  if (fd < 0) return -1;
  ::fcntl(fd, F_SETFL, O_APPEND);  // O_NONBLOCK was for the open only
  return fd;
}

std::string prepare_report_dir(const std::string& dir) noexcept {
  try {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return "cannot create the report folder \"" + dir + "\": " + ec.message();
    struct stat link{};
    if (::lstat(dir.c_str(), &link) != 0) return failed("examine the report folder", dir);
    if (S_ISLNK(link.st_mode) && link.st_uid != ::geteuid() && link.st_uid != 0)
      return "the report folder \"" + dir + "\" is a symlink owned by another user (uid " +
             std::to_string(link.st_uid) + "); refusing to write through it";
    struct stat target{};
    if (::stat(dir.c_str(), &target) != 0 || !S_ISDIR(target.st_mode))
      return "the report folder \"" + dir + "\" is not a folder";
    return "";
  } catch (const std::exception& e) {
    return "cannot prepare the report folder \"" + dir + "\": " + e.what();
  }
}

}  // namespace oomguard::guard::report
