// Where this process writes its reports.
//
// Note [One writer per report directory]
// The directory named by OOMGUARD_REPORT_DIR, or the default
// ./oomguard-reports/<run-id>/rank<RANK or 0>/, is inherited by every child:
// forked DataLoader workers, a torchrun launcher and its rank-0 worker, a
// program exec'ed by the one we guard. Two processes appending to one
// timeline would corrupt both, so a process claims the directory by creating
// `owner.pid` with O_EXCL. A process that finds it owned by another live
// process writes into `<dir>/pid<its pid>/` instead; an owner that is no
// longer alive (a previous run) is taken over.
#pragma once

#include <string>

#include "preload_config.hpp"

namespace oomguard::preload {

// The directory the environment names (not yet claimed).
std::string requested_report_dir(const PreloadConfig& config);
// Create and claim a directory for this process, per the Note. Returns the
// claimed path, or an empty string (with one message on stderr) if nothing
// could be created.
std::string claim_report_dir(const std::string& requested);

}  // namespace oomguard::preload
