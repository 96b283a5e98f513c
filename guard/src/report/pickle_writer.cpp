#include "oomguard/guard/report/pickle_writer.hpp"

#include <bit>
#include <cstdint>
#include <cstring>

namespace oomguard::guard::report {
namespace {

constexpr char kProto = '\x80';
constexpr char kStop = '.';
constexpr char kMark = '(';
constexpr char kEmptyDict = '}';
constexpr char kSetItems = 'u';
constexpr char kEmptyList = ']';
constexpr char kAppends = 'e';
constexpr char kShortBinUnicode = '\x8c';
constexpr char kBinUnicode = 'X';
constexpr char kBinInt = 'J';
constexpr char kLong1 = '\x8a';
constexpr char kBinFloat = 'G';
constexpr char kNewTrue = '\x88';
constexpr char kNewFalse = '\x89';
constexpr char kNone = 'N';

void put_le32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put(PickleWriter& w, const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      w.none();
      return;
    case nlohmann::json::value_t::boolean:
      w.boolean(v.get<bool>());
      return;
    case nlohmann::json::value_t::number_integer:
      w.integer(v.get<std::int64_t>());
      return;
    case nlohmann::json::value_t::number_unsigned:
      w.unsigned_integer(v.get<std::uint64_t>());
      return;
    case nlohmann::json::value_t::number_float:
      w.real(v.get<double>());
      return;
    case nlohmann::json::value_t::string:
      w.str(v.get_ref<const std::string&>());
      return;
    case nlohmann::json::value_t::array:
      w.begin_list();
      for (const auto& item : v) put(w, item);
      w.end_list();
      return;
    case nlohmann::json::value_t::object:
      w.begin_dict();
      for (const auto& [key, item] : v.items()) {
        w.key(key);
        put(w, item);
      }
      w.end_dict();
      return;
    case nlohmann::json::value_t::binary:
      break;
  }
  w.str(v.dump());  // binary: not produced by the report writers
}

}  // namespace

PickleWriter::PickleWriter() {
  out_.push_back(kProto);
  out_.push_back(4);
}

void PickleWriter::begin_dict() {
  out_.push_back(kEmptyDict);
  out_.push_back(kMark);
}
void PickleWriter::end_dict() { out_.push_back(kSetItems); }
void PickleWriter::begin_list() {
  out_.push_back(kEmptyList);
  out_.push_back(kMark);
}
void PickleWriter::end_list() { out_.push_back(kAppends); }

void PickleWriter::str(std::string_view s) {
  if (s.size() < 256) {
    out_.push_back(kShortBinUnicode);
    out_.push_back(static_cast<char>(s.size()));
  } else {
    out_.push_back(kBinUnicode);
    put_le32(out_, static_cast<std::uint32_t>(s.size()));
  }
  out_ += s;
}

void PickleWriter::integer(std::int64_t v) {
  if (v >= INT32_MIN && v <= INT32_MAX) {
    out_.push_back(kBinInt);
    put_le32(out_, static_cast<std::uint32_t>(static_cast<std::int32_t>(v)));
    return;
  }
  // LONG1: little-endian two's complement, as few bytes as keep the sign.
  char bytes[8];
  const auto u = static_cast<std::uint64_t>(v);
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((u >> (8 * i)) & 0xff);
  int n = 8;
  while (n > 1) {
    const auto last = static_cast<unsigned char>(bytes[n - 1]);
    const auto prev_sign = static_cast<unsigned char>(bytes[n - 2]) & 0x80;
    if ((last == 0x00 && prev_sign == 0) || (last == 0xff && prev_sign != 0)) --n;
    else break;
  }
  out_.push_back(kLong1);
  out_.push_back(static_cast<char>(n));
  out_.append(bytes, static_cast<std::size_t>(n));
}

void PickleWriter::unsigned_integer(std::uint64_t v) {
  if (v <= static_cast<std::uint64_t>(INT64_MAX)) {
    integer(static_cast<std::int64_t>(v));
    return;
  }
  // Above INT64_MAX: nine bytes, the last 0 to keep it positive.
  out_.push_back(kLong1);
  out_.push_back(9);
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  out_.push_back(0);
}

void PickleWriter::real(double v) {
  out_.push_back(kBinFloat);  // 8 bytes, big-endian
  const auto bits = std::bit_cast<std::uint64_t>(v);
  for (int i = 7; i >= 0; --i) out_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

void PickleWriter::boolean(bool v) { out_.push_back(v ? kNewTrue : kNewFalse); }
void PickleWriter::none() { out_.push_back(kNone); }

std::string PickleWriter::finish() {
  out_.push_back(kStop);
  return std::move(out_);
}

std::string to_pickle(const nlohmann::json& value) {
  PickleWriter w;
  put(w, value);
  return w.finish();
}

}  // namespace oomguard::guard::report
