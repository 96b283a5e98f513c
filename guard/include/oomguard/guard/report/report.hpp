// Writing the post-mortem: summary.json, report.html, snapshot.pickle (and
// timeline.csv, appended all along) into one directory.
//
// Note [Reports on the out-of-memory path]
// write_report runs from the allocator's out-of-memory path (the CPU budget
// check, c10's OOM observer) before the error reaches Python: no GIL, no
// Python, no torch call, no device memory; host memory only, through the C++
// heap. Its cost is one copy of the Ledger's live allocations and recent
// events (the ring is bounded) plus three small files, well within 2 s. Each
// file is written to a temporary name and renamed, so a reader never sees a
// half-written one, and a failure of one file does not stop the others.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "oomguard/error.hpp"

namespace oomguard::guard::report {

// Note [Report folder names]
// A process's report folder is <run_dir>/rank<N> (N from RANK, else 0); an
// empty run_dir means ./oomguard-reports/<run id>, the run id from
// OOMGUARD_RUN_ID, else <unix seconds>-<pid>. Python (through
// _C.default_report_dir) and the LD_PRELOAD library both name it with
// report_dir_name, so a Python process under the preload library writes
// both layers' files into one folder. The seconds are taken once per
// process, at the first call of any layer: both layers link this library,
// so they share that moment, and a report written minutes later still goes
// to the folder the timeline was opened in.
std::string report_dir_name(const std::string& run_dir, const std::string& run_id, const std::string& rank,
                            std::int64_t pid, std::int64_t unix_seconds);
// report_dir_name for this process: its pid and the seconds of the Note.
std::string process_report_dir(const std::string& run_dir, const std::string& run_id, const std::string& rank);
// process_report_dir with OOMGUARD_RUN_ID and RANK from the environment.
std::string default_report_dir(const std::string& run_dir = "");

struct ReportResult {
  std::string dir;
  std::vector<std::string> files;   // written
  std::vector<std::string> errors;  // what could not be written, and why
  std::string headline;             // the run's peak in one line (headline.hpp); empty if none
  double seconds = 0;
};

// Write the report into `dir` (created if needed); an empty `dir` means the
// Recorder's directory (or the default). Never throws.
ReportResult write_report(const std::string& dir, const std::string& reason) noexcept;

// An allocation was refused: remember the state and write the report into
// the Recorder's directory, if one is set. Never throws.
void report_out_of_memory(const OomContext& context) noexcept;

}  // namespace oomguard::guard::report
