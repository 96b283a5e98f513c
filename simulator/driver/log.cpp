#include "log.hpp"

#include <cstdarg>
#include <cstdio>

#include "oomguard_sim/sim_api.h"

namespace oomguard::sim {

std::atomic<int> g_log_level{1};

namespace {
void write_line(const char* format, va_list arguments) {
  char line[2048];
  std::vsnprintf(line, sizeof line, format, arguments);
  std::fprintf(stderr, "[oomguard-sim] %s\n", line);
}
}  // namespace

void log_error(const char* format, ...) {
  va_list arguments;
  va_start(arguments, format);
  write_line(format, arguments);
  va_end(arguments);
}

}  // namespace oomguard::sim

extern "C" OOMGUARD_SIM_EXPORT int oomguard_sim_log_level(void) { return oomguard::sim::g_log_level.load(); }

extern "C" OOMGUARD_SIM_EXPORT void oomguard_sim_log(int level, const char* format, ...) {
  if (!oomguard::sim::logging(level)) return;
  va_list arguments;
  va_start(arguments, format);
  oomguard::sim::write_line(format, arguments);
  va_end(arguments);
}
