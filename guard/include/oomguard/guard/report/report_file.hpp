// Creating report files in a folder other users may write to.
//
// Note [Report files are never followed]
// A report folder is often shared: a cluster's scratch folder, a team's
// `oomguard-reports/`. Anyone who can write there can plant a symlink at a
// name oomguard is about to write (`summary.json`, `timeline.csv`, the
// temporary a report goes through), and a writer that follows it overwrites
// or appends to the link's target with the victim's permissions: that was
// reproduced with the former predictable temporary `path + ".tmp" + pid`
// opened with truncation, and with `timeline.csv` opened for append. So:
//  * a whole file goes through a temporary that mkostemp creates with
//    O_CREAT|O_EXCL under an unpredictable name in the same folder (O_EXCL
//    refuses any existing name, a symlink included), and is renamed over the
//    final name: rename replaces a symlink there, never follows it. A failed
//    write removes its temporary, so a full disk is not kept full;
//  * an appended file is opened with O_NOFOLLOW; a symlink or anything but
//    a regular file at its name is removed and a new file made with O_EXCL;
//  * a report folder that is a symlink owned by someone else is refused.
#pragma once

#include <string>
#include <string_view>

namespace oomguard::guard::report {

// Write `bytes` as `path`, whole or not at all. "" on success, else what failed.
std::string write_report_file(const std::string& path, std::string_view bytes) noexcept;

// A descriptor (O_WRONLY|O_APPEND|O_CLOEXEC) on the regular file `path`,
// created 0644 if absent; -1 with errno set when it cannot be had.
int open_report_for_append(const std::string& path) noexcept;

// "" when `dir` may hold reports (created if absent: its missing parents
// too), else why not: it is not a folder, or it is a symlink whose owner is
// neither this user nor root.
std::string prepare_report_dir(const std::string& dir) noexcept;

}  // namespace oomguard::guard::report
