#include "oomguard/guard/report/timeline.hpp"

#include "oomguard/guard/report/report_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "oomguard/error.hpp"

namespace oomguard::guard::report {
namespace {

bool write_all(int fd, const char* data, std::size_t size) noexcept {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// The cells of one line, without copies.
std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t from = 0;
  for (;;) {
    const std::size_t comma = line.find(',', from);
    out.push_back(line.substr(from, comma == std::string_view::npos ? std::string_view::npos : comma - from));
    if (comma == std::string_view::npos) return out;
    from = comma + 1;
  }
}

// A line that is not a row: why, for the reader's count.
struct NotARow {
  std::string why;
};

template <typename T>
T parse_number(std::string_view cell, const char* column) {
  if (cell.empty()) return T{};
  T value{};
  const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  if (ec != std::errc() || end != cell.data() + cell.size())
    throw NotARow{fmt::format("column {} is \"{}\", not a number", column, cell)};
  return value;
}

double parse_seconds(std::string_view cell) {
  double value = 0;
  const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  if (cell.empty() || ec != std::errc() || end != cell.data() + cell.size() || !std::isfinite(value))
    throw NotARow{fmt::format("time_s \"{}\" is not a number", cell)};
  return value;
}

TimelineRow parse_row(std::string_view line) {
  constexpr std::size_t kColumns = 3 + kNumCategories + 4;
  const auto cells = split(line);
  if (cells.size() != kColumns) throw NotARow{fmt::format("{} columns, expected {}", cells.size(), kColumns)};
  TimelineRow row;
  row.step = parse_number<std::int64_t>(cells[0], "step");
  const auto phase = try_parse_phase(cells[1]);
  if (!phase) throw NotARow{fmt::format("\"{}\" is not a phase", cells[1])};
  row.phase = *phase;
  row.time_s = parse_seconds(cells[2]);
  for (std::size_t c = 0; c < kNumCategories; ++c)
    row.by_category[c] = parse_number<std::int64_t>(cells[3 + c], kCategoryNames[c].data());
  const std::size_t at = 3 + kNumCategories;
  row.allocated = parse_number<std::int64_t>(cells[at], "allocated");
  row.reserved = parse_number<std::int64_t>(cells[at + 1], "reserved");
  row.predicted_peak = parse_number<std::uint64_t>(cells[at + 2], "predicted_peak");
  row.budget = parse_number<std::uint64_t>(cells[at + 3], "budget");
  return row;
}

// The offset just past the last newline in the file's last `window` bytes;
// -1 when there is none there (or the file cannot be read).
off_t end_of_last_line(int fd, off_t size) noexcept {
  constexpr off_t kWindow = 64 * 1024;
  const off_t from = size > kWindow ? size - kWindow : 0;
  char buffer[4096];
  for (off_t chunk_end = size; chunk_end > from;) {
    const off_t chunk_start = std::max<off_t>(from, chunk_end - static_cast<off_t>(sizeof(buffer)));
    const auto length = static_cast<std::size_t>(chunk_end - chunk_start);
    if (::pread(fd, buffer, length, chunk_start) != static_cast<ssize_t>(length)) return -1;
    for (std::size_t i = length; i > 0; --i)
      if (buffer[i - 1] == '\n') return chunk_start + static_cast<off_t>(i);
    chunk_end = chunk_start;
  }
  return -1;
}

// Note [A row is whole or absent]: a file that does not end in a newline
// lost the end of its last row. Cut it to the last newline; where there is
// none near (not a timeline this writer made), end the line so that the
// next row is whole.
void repair_torn_tail(int fd) noexcept {
  struct stat st{};
  if (fstat(fd, &st) != 0 || st.st_size == 0) return;
  char last = 0;
  if (::pread(fd, &last, 1, st.st_size - 1) != 1 || last == '\n') return;
  const off_t keep = end_of_last_line(fd, st.st_size);
  if (keep < 0 || ::ftruncate(fd, keep) != 0) (void)write_all(fd, "\n", 1);
}

}  // namespace

std::string timeline_header() {
  std::string header = "step,phase,time_s";
  for (std::string_view category : kCategoryNames) {
    header += ',';
    header += category;
  }
  header += ",allocated,reserved,predicted_peak,budget\n";
  return header;
}

std::size_t format_timeline_row(const TimelineRow& row, char* buffer, std::size_t size) noexcept {
  auto room = [&](int used) { return size - static_cast<std::size_t>(used); };
  int n = std::snprintf(buffer, size, "%" PRId64 ",%s,%.6f", row.step, name(row.phase).data(), row.time_s);
  for (std::int64_t bytes : row.by_category) n += std::snprintf(buffer + n, room(n), ",%" PRId64, bytes);
  n += std::snprintf(buffer + n, room(n), ",%" PRId64 ",%" PRId64 ",", row.allocated, row.reserved);
  if (row.predicted_peak != 0) n += std::snprintf(buffer + n, room(n), "%" PRIu64, row.predicted_peak);
  n += std::snprintf(buffer + n, room(n), ",");
  if (row.budget != 0) n += std::snprintf(buffer + n, room(n), "%" PRIu64, row.budget);
  n += std::snprintf(buffer + n, room(n), "\n");
  return static_cast<std::size_t>(n) < size ? static_cast<std::size_t>(n) : size - 1;
}

Timeline parse_timeline(const std::string& text, const std::string& what) {
  const std::string header = timeline_header();
  if (text.compare(0, header.size(), header) != 0)
    throw error(fmt::format("{}: the first line is not the timeline header \"{}\"", what,
                            header.substr(0, header.size() - 1)));
  Timeline out;
  const std::string_view all(text);
  std::size_t number = 1;
  for (std::size_t from = header.size(); from < all.size();) {
    ++number;
    std::size_t newline = all.find('\n', from);
    if (newline == std::string_view::npos) newline = all.size();
    const std::string_view line = all.substr(from, newline - from);
    from = newline + 1;
    if (line.empty()) continue;
    try {
      out.rows.push_back(parse_row(line));
    } catch (const NotARow& bad) {
      if (out.skipped_lines++ == 0) out.first_skipped = fmt::format("line {}: {}", number, bad.why);
    }
  }
  return out;
}

Timeline read_timeline(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw error(fmt::format("cannot open \"{}\"", path));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_timeline(text.str(), path);
}

std::vector<TimelineRow> keep_peaks(const std::vector<TimelineRow>& rows, std::size_t points) {
  if (rows.size() <= points || points == 0) return rows;
  double t0 = rows.front().time_s, t1 = t0;
  for (const auto& r : rows) {
    t0 = std::min(t0, r.time_s);
    t1 = std::max(t1, r.time_s);
  }
  const bool by_time = t1 > t0;
  auto part_of = [&](std::size_t i) {
    const double at = by_time ? (rows[i].time_s - t0) / (t1 - t0) : static_cast<double>(i) / static_cast<double>(rows.size());
    return std::min(points - 1, static_cast<std::size_t>(at * static_cast<double>(points)));
  };
  std::vector<std::optional<TimelineRow>> parts(points);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    auto& part = parts[part_of(i)];
    const TimelineRow& row = rows[i];
    if (!part) {
      part = row;
      continue;
    }
    const std::int64_t reserved = std::max(part->reserved, row.reserved);
    const std::uint64_t predicted = std::max(part->predicted_peak, row.predicted_peak);
    if (row.allocated > part->allocated) *part = row;
    part->reserved = reserved;
    part->predicted_peak = predicted;
  }
  std::vector<TimelineRow> out;
  out.reserve(points);
  for (auto& part : parts)
    if (part) out.push_back(*part);
  return out;
}

bool append_timeline_row(int fd, const char* text, std::size_t size) noexcept {
  const ssize_t n = ::write(fd, text, size);
  if (n == static_cast<ssize_t>(size)) return true;
  if (n > 0) {
    // Cut our part back off; the next row then starts a line of its own.
    struct stat st{};
    if (fstat(fd, &st) != 0 || st.st_size < n || ::ftruncate(fd, st.st_size - n) != 0) repair_torn_tail(fd);
  }
  return false;
}

bool TimelineWriter::open(const std::string& dir) noexcept {
  close();
  const std::string path = dir + "/timeline.csv";
  const int fd = open_timeline_file(path);
  if (fd < 0) return false;
  fd_ = fd;
  rows_ = refused_ = 0;  // counts of this file
  return true;
}

int open_timeline_file(const std::string& path) noexcept {
  const int fd = open_report_for_append(path);  // Note [Report files are never followed]
  if (fd < 0) return -1;
  struct stat st{};
  if (fstat(fd, &st) == 0 && st.st_size == 0) {
    const std::string header = timeline_header();
    if (!append_timeline_row(fd, header.data(), header.size())) {
      ::close(fd);  // a full disk: no file is better than one without its header
      return -1;
    }
    return fd;
  }
  repair_torn_tail(fd);
  return fd;
}

void TimelineWriter::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool TimelineWriter::append(const TimelineRow& row) noexcept {
  if (fd_ < 0) return false;
  char buffer[kMaxTimelineRowBytes];
  const std::size_t n = format_timeline_row(row, buffer, sizeof(buffer));
  if (!append_timeline_row(fd_, buffer, n)) {
    ++refused_;
    return false;
  }
  ++rows_;
  return true;
}

}  // namespace oomguard::guard::report
