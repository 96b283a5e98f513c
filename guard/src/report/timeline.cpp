#include "oomguard/guard/report/timeline.hpp"

#include "oomguard/guard/report/report_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cinttypes>
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

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) out.push_back(cell);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

template <typename T>
T parse_number(const std::string& cell, const std::string& what, std::size_t line, const char* column) {
  if (cell.empty()) return T{};
  T value{};
  const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  if (ec != std::errc() || end != cell.data() + cell.size())
    throw error(fmt::format("{} line {}: column {} is \"{}\", not a number", what, line, column, cell));
  return value;
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

std::vector<TimelineRow> parse_timeline(const std::string& text, const std::string& what) {
  std::istringstream in(text);
  std::string line;
  const std::string header = timeline_header();
  if (!std::getline(in, line) || line + "\n" != header)
    throw error(fmt::format("{}: the first line is not the timeline header \"{}\"", what,
                            header.substr(0, header.size() - 1)));
  constexpr std::size_t kColumns = 3 + kNumCategories + 4;
  std::vector<TimelineRow> rows;
  for (std::size_t number = 2; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    const auto cells = split(line);
    if (cells.size() != kColumns)
      throw error(fmt::format("{} line {}: {} columns, expected {}", what, number, cells.size(), kColumns));
    TimelineRow row;
    row.step = parse_number<std::int64_t>(cells[0], what, number, "step");
    const auto phase = try_parse_phase(cells[1]);
    if (!phase) throw error(fmt::format("{} line {}: \"{}\" is not a phase", what, number, cells[1]));
    row.phase = *phase;
    try {
      row.time_s = std::stod(cells[2]);
    } catch (const std::exception&) {
      throw error(fmt::format("{} line {}: time_s \"{}\" is not a number", what, number, cells[2]));
    }
    for (std::size_t c = 0; c < kNumCategories; ++c)
      row.by_category[c] = parse_number<std::int64_t>(cells[3 + c], what, number, kCategoryNames[c].data());
    std::size_t at = 3 + kNumCategories;
    row.allocated = parse_number<std::int64_t>(cells[at], what, number, "allocated");
    row.reserved = parse_number<std::int64_t>(cells[at + 1], what, number, "reserved");
    row.predicted_peak = parse_number<std::uint64_t>(cells[at + 2], what, number, "predicted_peak");
    row.budget = parse_number<std::uint64_t>(cells[at + 3], what, number, "budget");
    rows.push_back(row);
  }
  return rows;
}

std::vector<TimelineRow> read_timeline(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw error(fmt::format("cannot open \"{}\"", path));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_timeline(text.str(), path);
}

bool TimelineWriter::open(const std::string& dir) noexcept {
  close();
  const std::string path = dir + "/timeline.csv";
  const int fd = open_timeline_file(path);
  if (fd < 0) return false;
  fd_ = fd;
  return true;
}

int open_timeline_file(const std::string& path) noexcept {
  const int fd = open_report_for_append(path);  // Note [Report files are never followed]
  if (fd < 0) return -1;
  struct stat st{};
  if (fstat(fd, &st) == 0 && st.st_size == 0) {
    const std::string header = timeline_header();
    write_all(fd, header.data(), header.size());
  }
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
  if (!write_all(fd_, buffer, n)) return false;
  ++rows_;
  return true;
}

}  // namespace oomguard::guard::report
