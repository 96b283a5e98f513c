// Run the fake CUDA program as a child process with a controlled environment.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace oomguard::testing {

struct Launch {
  std::vector<std::string> args;            // after the program path
  std::map<std::string, std::string> env;   // added to a scrubbed copy of ours
  bool preload = true;                      // set LD_PRELOAD to the library under test
  std::string working_dir;                  // empty: ours
  bool merge_stderr = false;                // stderr into `output` too
};

struct Finished {
  int exit_code = -1;    // -1 when killed
  int term_signal = 0;   // the signal that ended it, if any
  std::string output;    // stdout
};

// Start the program; its stdout is readable from `stdout_fd`.
struct Running {
  pid_t pid = -1;
  int stdout_fd = -1;
};
Running start(const Launch& launch);
Finished wait_for(Running running);
inline Finished run(const Launch& launch) { return wait_for(start(launch)); }

// Read the child's stdout up to and including `line`; false at end of output.
bool read_until_line(int fd, const std::string& line);

// key=value lines of a program's output.
std::map<std::string, std::string> parse_key_values(const std::string& output);

}  // namespace oomguard::testing
